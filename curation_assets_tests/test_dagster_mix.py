"""The mix and its exports on the real Dagster graph, over shards of every kind: the ratio, the checks,
exports that read back to exactly the mixed samples, and recipe edits that re-run only the mix and
the exports."""

import hashlib
import json
import os
from pathlib import Path

import polars as pl
import webdataset as wds
from PIL import Image
from upath import UPath

from curation_assets import registry
from curation_assets.definitions import build_definitions
from curation_assets.defs.keys import asset_key
from curation_assets.defs.local_runner import run_automation
from curation_assets.exports.layout import LLAVA_FILE, data_juicer_file
from curation_assets.mix.pools import read_pool
from curation_assets.readers import ShardFile, Valid, read_shard
from curation_assets.sources import SourceKind
from curation_assets.table_store import TableStore
from curation_assets_tests.helpers import FAST_MODELS, smoke_recipe

MIX_ASSETS = {"mix/token_counts", "mix/mix", "mix/exports"}


def ran(runs) -> set[str]:
    return {asset for run in runs for asset in run.assets}


def exports_root(root) -> Path:
    return Path(TableStore(root).folder(registry.EXPORTS).path)


def edited(recipe, section: str, **changes):
    return recipe.model_copy(update={section: getattr(recipe, section).model_copy(update=changes)})


def rerun(root, instance, recipe):
    return run_automation(instance, build_definitions(str(root), recipe, **FAST_MODELS), log=lambda _: None)


def mtimes(folder: Path) -> dict[str, int]:
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}


def test_the_mix_meets_the_ratio_and_its_checks_pass(branches):
    root, instance = branches
    store = TableStore(root)
    mix = store.read(registry.MIX_TABLE)
    report = store.read_json(registry.MIX_REPORT)
    spec = smoke_recipe().mix
    for kind, target in spec.target_shares().items():
        share = mix.filter(pl.col("kind") == kind).height / mix.height
        assert abs(share - target) <= spec.tolerance, kind
        assert report["kinds"][kind]["realized_share_tokens"] is not None  # counted in tokens too
        pool = read_pool(store, SourceKind(kind), [])
        assert set(mix.filter(pl.col("kind") == kind)["sample_id"]) <= set(pool["sample_id"])
        assert mix.filter(pl.col("kind") == kind)["repeat_index"].max() < spec.repeat_limit(kind)
    # The smoke recipe lets documents repeat: some do, and the caption pool is the binding one.
    assert mix["repeat_index"].max() >= 1
    defs = build_definitions(str(root), smoke_recipe(), **FAST_MODELS)
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[asset_key(registry.MIX_TABLE)]
    )
    checks = {evaluation.check_name: evaluation.passed for evaluation in result.get_asset_check_evaluations()}
    assert checks == {
        "ratio_within_tolerance": True,
        "every_sample_from_a_curated_pool": True,
        "repeats_within_max_repeat": True,
    }


def test_exports_read_back_to_exactly_the_mixed_samples(branches):
    root, _ = branches
    store = TableStore(root)
    out = exports_root(root)
    mix = store.read(registry.MIX_TABLE)
    captions = read_pool(store, SourceKind.caption, ["caption", "image_sha256"])
    expected = {
        f"{row['sample_id']}-r{row['repeat_index']}": row
        for row in mix.filter(pl.col("kind") == "caption").join(captions, on="sample_id").iter_rows(named=True)
    }
    assert expected

    # LLaVA json, loaded the way Mini-Gemini's LazySupervisedDataset does it.
    records = json.load(open(out / LLAVA_FILE))
    assert {record["id"] for record in records} == set(expected)
    for record in records:
        want = expected[record["id"]]
        human, gpt = record["conversations"]
        assert human["from"] == "human" and "<image>" in human["value"]
        assert gpt["value"] == want["caption"]
        path = out / record["image"]
        with Image.open(path) as image:
            image.convert("RGB")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == want["image_sha256"]

    # ... and through our own LLaVA reader, as any caption shard.
    outcomes = list(read_shard(ShardFile(SourceKind.caption, UPath(out / LLAVA_FILE), UPath(out))))
    assert all(isinstance(outcome, Valid) for outcome in outcomes), outcomes[:3]
    read_back = {json.loads(o.columns["source_meta"])["id"]: o.columns for o in outcomes}
    assert set(read_back) == set(expected)
    for key, columns in read_back.items():
        assert (columns["caption"], columns["image_sha256"]) == (
            expected[key]["caption"],
            expected[key]["image_sha256"],
        )

    # WebDataset tars read by the webdataset library: every mixed caption once, with its provenance.
    tars = sorted(str(path) for path in (out / "webdataset").glob("*.tar"))
    seen = {}
    for sample in wds.WebDataset(tars, shardshuffle=False):
        meta = json.loads(sample["json"])
        seen[sample["__key__"]] = meta
        assert sample["txt"].decode() == expected[sample["__key__"]]["caption"]
        assert hashlib.sha256(sample["jpg"]).hexdigest() == expected[sample["__key__"]]["image_sha256"]
    assert set(seen) == set(expected)
    assert all(meta["source_shard"] == expected[key]["shard_id"] for key, meta in seen.items())

    # Data-Juicer jsonl and the text shards hold every mixed row of their kinds.
    for kind in ("caption", "interleaved", "text"):
        lines = (out / data_juicer_file(kind)).read_text().splitlines()
        assert len(lines) == mix.filter(pl.col("kind") == kind).height, kind
    texts = [json.loads(line) for path in sorted((out / "text").glob("*.jsonl")) for line in open(path)]
    assert len(texts) == mix.filter(pl.col("kind") == "text").height

    # Every export's manifest matches its files byte for byte.
    for manifest in (out / "manifests").glob("*.json"):
        for entry in json.loads(manifest.read_text())["files"]:
            assert hashlib.sha256((out / entry["path"]).read_bytes()).hexdigest() == entry["sha256"], entry["path"]


def test_editing_the_mix_reruns_only_the_mix_and_the_exports(branches):
    root, instance = branches
    before = TableStore(root).read(registry.MIX_TABLE)
    reseeded = edited(smoke_recipe(), "mix", seed=7)
    runs = rerun(root, instance, reseeded)
    assert ran(runs) == {"mix/mix", "mix/exports"}
    after = TableStore(root).read(registry.MIX_TABLE)
    assert after.height == before.height and set(after["sample_id"]) != set(before["sample_id"])
    # The exports follow the new draw, and images of samples that left the mix are pruned from the store.
    records = json.load(open(exports_root(root) / LLAVA_FILE))
    assert {record["id"].rsplit("-r", 1)[0] for record in records} == set(
        after.filter(pl.col("kind") == "caption")["sample_id"]
    )
    stored = {path.stem for path in (exports_root(root) / "images" / "caption").rglob("*.jpg")}
    assert stored == set(after.filter(pl.col("kind") == "caption")["sample_id"])
    assert rerun(root, instance, reseeded) == []


def test_a_mix_edit_that_draws_the_same_mix_rewrites_no_export(branches):
    root, instance = branches
    before = mtimes(exports_root(root))
    runs = rerun(root, instance, edited(smoke_recipe(), "mix", tolerance=0.05))
    # The exports join the mix's run (automation requests a chain in one tick) and find nothing to do.
    assert {"mix/mix"} <= ran(runs) <= {"mix/mix", "mix/exports"}
    assert mtimes(exports_root(root)) == before


def test_editing_the_exports_reruns_only_the_exports_and_rewrites_only_what_changed(branches):
    root, instance = branches
    out = exports_root(root)
    before = mtimes(out)
    recipe = smoke_recipe()
    smaller = recipe.exports.webdataset.model_copy(update={"samples_per_shard": 5})
    runs = rerun(root, instance, edited(recipe, "exports", webdataset=smaller))
    assert ran(runs) == {"mix/exports"}
    after = mtimes(out)
    tars = sorted(name for name in after if name.startswith("webdataset/"))
    captions = TableStore(root).read(registry.MIX_TABLE).filter(pl.col("kind") == "caption").height
    assert len(tars) == -(-captions // 5)
    # Nothing else was rewritten: same json, jsonl, parquet and images (same modification times).
    untouched = {name for name in before if not name.startswith(("webdataset/", "manifests/", "exports.json"))}
    assert {name: after[name] for name in untouched} == {name: before[name] for name in untouched}


def test_disabling_an_export_removes_its_files(branches):
    root, instance = branches
    out = exports_root(root)
    assert list((out / "webdataset").glob("*.tar"))
    recipe = smoke_recipe()
    off = recipe.exports.webdataset.model_copy(update={"enabled": False})
    runs = rerun(root, instance, edited(recipe, "exports", webdataset=off))
    assert ran(runs) == {"mix/exports"}
    assert not list((out / "webdataset").glob("*.tar"))
    assert not (out / "manifests" / "webdataset.json").exists()
    assert "webdataset" not in json.loads((out / "exports.json").read_text())["exports"]


def test_a_killed_exports_staging_file_is_swept_and_never_read(branches):
    root, instance = branches
    out = exports_root(root)
    leftover = out / "webdataset" / ".caption-000000.tar.abc123.tmp"
    leftover.write_bytes(b"half a tar")
    recipe = smoke_recipe()
    runs = rerun(root, instance, edited(recipe, "exports", shuffle_seed=3))
    assert ran(runs) == {"mix/exports"}
    assert not leftover.exists()
    assert not [name for name in os.listdir(out / "webdataset") if name.endswith(".tmp")]


def test_a_tokenizer_edit_recounts_and_the_mix_follows(branches):
    root, instance = branches
    counts = TableStore(root).read(registry.TOKEN_COUNTS)
    runs = rerun(root, instance, edited(smoke_recipe(), "mix", image_tokens=100, unit="tokens"))
    assert ran(runs) == MIX_ASSETS
    recounted = TableStore(root).read(registry.TOKEN_COUNTS).join(counts, on="sample_id", suffix="_before")
    captions, texts = (recounted.filter(pl.col("kind") == kind) for kind in ("caption", "text"))
    assert (captions["tokens_before"] - captions["tokens"] == 576 - 100).all()  # one image each
    assert (texts["tokens_before"] == texts["tokens"]).all()  # no images: the same counts
    assert TableStore(root).read_json(registry.MIX_REPORT)["unit"] == "tokens"
