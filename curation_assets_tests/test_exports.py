"""Exports of the mix, read back by our own readers, the webdataset library and Mini-Gemini's loading
code; incremental (nothing rewritten for an unchanged mix) and safe (no half-written file)."""

import hashlib
import io
import json
import os
from pathlib import Path

import polars as pl
import pytest
from PIL import Image
from upath import UPath

from curation_assets.exports import image_store
from curation_assets.exports.data_juicer import EOC_TOKEN, IMAGE_TOKEN
from curation_assets.exports.files import read_manifest, sweep_staging
from curation_assets.exports.layout import LLAVA_FILE, data_juicer_file, export_key
from curation_assets.exports.spec import Exports
from curation_assets.exports.steps import export_mix, export_source_shard, prune_source_shard, prune_store
from curation_assets.mix.draw import mix_pools
from curation_assets.mix.spec import Mix
from curation_assets.normalize import normalize_shard
from curation_assets.readers import ShardFile, Valid, read_shard
from curation_assets.sources import SourceKind

SMALL_SHARDS = Exports(
    webdataset={"samples_per_shard": 8}, interleaved={"samples_per_shard": 4}, text={"samples_per_shard": 3}
)
# Repeats on purpose: a repeated sample is one image in the store and one row per repeat in every export.
SPEC = Mix(budget=70, max_repeat={"interleaved": 2})


@pytest.fixture(scope="module")
def demo_pools(demo_template):
    """Curated pools of every demo shard (all valid rows kept) and the shards they came from."""
    root = UPath(demo_template)
    pools, shards = {}, {}
    for kind in ("caption", "interleaved", "text"):
        frames = []
        for path in sorted((root / "raw" / kind).iterdir(), key=lambda p: p.name):
            if path.is_file():
                shard = ShardFile(SourceKind(kind), path, root)
                shards[(kind, shard.shard_id)] = shard
                frames.append(normalize_shard(shard).valid)
        pools[kind] = pl.concat(frames)
    pools["caption"] = pools["caption"].with_columns(
        pl.lit("original").alias("caption_source"), pl.col("caption").alias("original_caption")
    )
    return pools, shards


def export_everything(pools, shards, mix, out: UPath, spec: Exports = SMALL_SHARDS, scores=None):
    copies = {}
    for (kind, shard_id), shard in shards.items():
        if kind != "text" and mix.filter((pl.col("kind") == kind) & (pl.col("shard_id") == shard_id)).height:
            copies[shard_id] = export_source_shard(shard, pools[kind].filter(pl.col("shard_id") == shard_id), mix, out)
    return copies, export_mix(out, mix, pools, spec, scores)


def caption_scores(pools):
    """A stand-in score column (the image width), to see scores travel into key.json."""
    return pools["caption"].select("sample_id", pl.col("image_width").cast(pl.Float64).alias("clip_similarity"))


@pytest.fixture
def exported(demo_pools, tmp_path):
    pools, shards = demo_pools
    mix = mix_pools(pools, SPEC).frame
    out = UPath(tmp_path / "exports")
    copies, results = export_everything(pools, shards, mix, out, scores=caption_scores(pools))
    return pools, shards, mix, out, copies, results


def expected(pools, mix, kind):
    """What each export must hold for a kind: key -> the pool row of that sample."""
    rows = mix.filter(pl.col("kind") == kind).join(pools[kind], on="sample_id", suffix="_pool")
    return {export_key(row["sample_id"], row["repeat_index"]): row for row in rows.iter_rows(named=True)}


def read_valid(kind: str, root: UPath, relative: str) -> dict[str, Valid]:
    outcomes = list(read_shard(ShardFile(SourceKind(kind), root / relative, root)))
    assert all(isinstance(outcome, Valid) for outcome in outcomes), [o for o in outcomes if not isinstance(o, Valid)]
    return {outcome.key: outcome for outcome in outcomes}


def listed(results, name):
    return [entry["path"] for entry in results[name].manifest["files"]]


def files_and_mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


# --- round trips ------------------------------------------------------------------------------


def test_llava_json_loads_the_way_mini_gemini_does_and_reads_back(exported):
    pools, _, mix, out, _, _ = exported
    want = expected(pools, mix, "caption")
    # Mini-Gemini's LazySupervisedDataset: json.load the list, open image_folder/image with PIL,
    # and find <image> in the human turn.
    image_folder = str(out)
    records = json.load(open(os.path.join(str(out), LLAVA_FILE)))
    assert sorted(record["id"] for record in records) == sorted(want)
    for record in records:
        human, gpt = record["conversations"]
        assert human["from"] == "human" and "<image>" in human["value"]
        assert gpt["from"] == "gpt" and gpt["value"] == want[record["id"]]["caption"]
        image = Image.open(os.path.join(image_folder, record["image"])).convert("RGB")
        assert image.size == (want[record["id"]]["image_width"], want[record["id"]]["image_height"])
    # ... and through our own LLaVA reader: same captions, same image bytes.
    back = read_valid("caption", out, LLAVA_FILE)
    by_id = {json.loads(v.columns["source_meta"])["id"]: v for v in back.values()}
    assert sorted(by_id) == sorted(want)
    for key, valid in by_id.items():
        assert valid.columns["caption"] == want[key]["caption"]
        assert valid.columns["image_sha256"] == want[key]["image_sha256"]


def test_webdataset_tars_read_back_by_our_reader_and_the_webdataset_library(exported):
    pools, _, mix, out, _, results = exported
    want = expected(pools, mix, "caption")
    tars = listed(results, "webdataset")
    assert len(tars) == -(-len(want) // 8)
    seen = {}
    for tar in tars:
        seen.update(read_valid("caption", out, tar))
    assert sorted(seen) == sorted(want)
    for key, valid in seen.items():
        assert valid.columns["caption"] == want[key]["caption"]
        assert valid.columns["image_sha256"] == want[key]["image_sha256"]
        meta = json.loads(valid.columns["source_meta"])
        assert meta["source_shard"] == want[key]["shard_id"] and meta["sha256"] == want[key]["image_sha256"]
        assert meta["clip_similarity"] == want[key]["image_width"]  # the score frame, as provenance

    import webdataset as wds

    samples = list(wds.WebDataset([str(out / tar) for tar in tars], shardshuffle=False))
    assert sorted(sample["__key__"] for sample in samples) == sorted(want)
    for sample in samples:
        image = next(sample[ext] for ext in ("jpg", "png", "webp") if ext in sample)
        assert hashlib.sha256(image).hexdigest() == want[sample["__key__"]]["image_sha256"]
        assert sample["txt"].decode() == want[sample["__key__"]]["caption"]
        assert json.loads(sample["json"])["repeat_index"] == want[sample["__key__"]]["repeat_index"]


def test_interleaved_parquet_and_text_shards_read_back(exported):
    pools, _, mix, out, _, results = exported
    want = expected(pools, mix, "interleaved")
    assert any(row["repeat_index"] == 1 for row in want.values())  # repeats are exported as rows
    documents = {}
    for shard in listed(results, "interleaved"):
        for valid in read_valid("interleaved", out, shard).values():
            documents[json.loads(valid.columns["source_meta"])["id"]] = valid
    assert sorted(documents) == sorted(want)
    for key, valid in documents.items():
        assert valid.columns["texts"] == want[key]["texts"]
        shas = [image["sha256"] if image else None for image in valid.columns["images"]]
        assert shas == [image["sha256"] if image else None for image in want[key]["images"]]

    want = expected(pools, mix, "text")
    texts = {}
    for shard in listed(results, "text"):
        for valid in read_valid("text", out, shard).values():
            texts[json.loads(valid.columns["source_meta"])["id"]] = valid.columns["text"]
    assert texts == {key: row["text"] for key, row in want.items()}


def test_data_juicer_jsonl_reads_back_per_kind(exported):
    pools, _, mix, out, _, _ = exported
    want = expected(pools, mix, "caption")
    back = {
        json.loads(v.columns["source_meta"])["id"]: v
        for v in read_valid("caption", out, data_juicer_file("caption")).values()
    }
    assert {k: (v.columns["caption"], v.columns["image_sha256"]) for k, v in back.items()} == {
        k: (row["caption"], row["image_sha256"]) for k, row in want.items()
    }
    want = expected(pools, mix, "text")
    back = {
        json.loads(v.columns["source_meta"])["id"]: v.columns["text"]
        for v in read_valid("text", out, data_juicer_file("text")).values()
    }
    assert back == {key: row["text"] for key, row in want.items()}

    want = expected(pools, mix, "interleaved")
    lines = [json.loads(line) for line in (out / data_juicer_file("interleaved")).read_text().splitlines()]
    assert sorted(line["id"] for line in lines) == sorted(want)
    for line in lines:
        row = want[line["id"]]
        images = [image for image in row["images"] if image is not None]
        assert line["text"].count(IMAGE_TOKEN) == len(images) == len(line["images"])
        assert line["text"].endswith(EOC_TOKEN)
        shas = [hashlib.sha256((out / path).read_bytes()).hexdigest() for path in line["images"]]
        assert shas == [image["sha256"] for image in images]
        plain = line["text"].replace(IMAGE_TOKEN, " ").replace(EOC_TOKEN, " ")
        assert plain.split() == " ".join(t for t in row["texts"] if t is not None).split()


def test_manifests_count_and_checksum_every_file(exported):
    _, _, mix, out, _, results = exported
    assert results["llava"].manifest["counts"]["samples"] == mix.filter(pl.col("kind") == "caption").height
    assert results["data_juicer"].manifest["counts"]["samples"] == mix.height
    for name, result in results.items():
        assert read_manifest(out, name) == result.manifest
        for entry in result.manifest["files"]:
            data = (out / entry["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["num_bytes"]
        assert sum(entry["samples"] for entry in result.manifest["files"]) == result.manifest["counts"]["samples"]


def test_samples_are_shuffled_across_shards_by_the_seed(exported, demo_pools):
    _, _, mix, out, _, results = exported
    sources = []
    for tar in listed(results, "webdataset"):
        sources.append(
            {json.loads(v.columns["source_meta"])["source_shard"] for v in read_valid("caption", out, tar).values()}
        )
    assert all(len(shard_sources) >= 2 for shard_sources in sources[:-1])  # every full tar mixes sources
    pools, shards = demo_pools
    reseeded = UPath(out.parent / "reseeded")
    _, other = export_everything(pools, shards, mix, reseeded, SMALL_SHARDS.model_copy(update={"shuffle_seed": 1}))
    first = [r["id"] for r in json.loads((out / LLAVA_FILE).read_text())]
    second = [r["id"] for r in json.loads((reseeded / LLAVA_FILE).read_text())]
    assert sorted(first) == sorted(second) and first != second


# --- incremental and safe ---------------------------------------------------------------------


def test_an_unchanged_mix_rewrites_nothing_and_reads_no_source_shard(exported, monkeypatch):
    pools, shards, mix, out, copies, _ = exported
    # Each image copied once, whatever the repeats of its sample.
    assert sum(copy.copied for copy in copies.values()) == sum(p.is_file() for p in Path(str(out), "images").rglob("*"))
    before = files_and_mtimes(Path(str(out)))

    def no_reading(*args, **kwargs):
        raise AssertionError("a source shard was read")

    monkeypatch.setattr(image_store, "fetch_image_bytes", no_reading)
    copies, results = export_everything(pools, shards, mix, out, scores=caption_scores(pools))
    assert all(copy.copied == 0 for copy in copies.values())
    assert all(not r.written and not r.removed and not r.manifest_written for r in results.values())
    assert files_and_mtimes(Path(str(out))) == before


def test_a_smaller_mix_rewrites_what_changed_and_prunes_images_after(exported):
    pools, shards, mix, out, _, results = exported
    dropped = mix.filter(pl.col("kind") == "caption")["sample_id"][0]
    smaller = mix.filter(pl.col("sample_id") != dropped)
    _, again = export_everything(pools, shards, smaller, out, scores=caption_scores(pools))
    assert again["llava"].written == [LLAVA_FILE]
    assert not again["text"].written and not again["interleaved"].written  # other kinds: untouched
    assert len(again["webdataset"].manifest["files"]) <= len(results["webdataset"].manifest["files"])
    image = next(out.glob(f"images/caption/*/{dropped}.*"))  # still there until the prune step
    shard_id = mix.filter(pl.col("sample_id") == dropped)["shard_id"][0]
    assert prune_source_shard(out, "caption", shard_id, smaller) == 1
    assert not image.exists()
    assert all(isinstance(o, Valid) for o in read_shard(ShardFile(SourceKind.caption, out / LLAVA_FILE, out)))


def test_new_scores_rewrite_the_tars_and_nothing_else(exported):
    pools, shards, mix, out, _, results = exported
    rescored = caption_scores(pools).with_columns(pl.col("clip_similarity") + 1)
    _, again = export_everything(pools, shards, mix, out, scores=rescored)
    assert again["webdataset"].written == listed(results, "webdataset")  # key.json carries the scores
    assert all(not again[name].written for name in ("llava", "interleaved", "text", "data_juicer"))


def test_a_killed_export_leaves_whole_files_and_the_next_run_finishes(exported, monkeypatch):
    pools, shards, mix, out, _, results = exported
    tars = listed(results, "webdataset")
    reordered = SMALL_SHARDS.model_copy(update={"shuffle_seed": 7})  # every tar must be rewritten
    from curation_assets.exports import webdataset_tar

    real_reader = webdataset_tar._Reader
    calls = {"count": 0}

    class Dying(real_reader):
        def __init__(self, data):
            calls["count"] += 1
            if calls["count"] == 3 * 8 + 4:  # inside the second tar
                raise KeyboardInterrupt("killed")
            super().__init__(data)

    monkeypatch.setattr(webdataset_tar, "_Reader", Dying)
    with pytest.raises(KeyboardInterrupt):
        export_everything(pools, shards, mix, out, reordered)
    monkeypatch.setattr(webdataset_tar, "_Reader", real_reader)
    assert not [p for p in Path(str(out)).rglob("*.tmp")]  # staging removed
    assert read_manifest(out, "webdataset") == results["webdataset"].manifest  # manifest not yet moved on
    for tar in tars:  # every tar on disk is whole: the first one new, the rest as before
        assert all(isinstance(o, Valid) for o in read_shard(ShardFile(SourceKind.caption, out / tar, out)))
    _, finished = export_everything(pools, shards, mix, out, reordered)
    assert finished["webdataset"].written == tars
    for entry in finished["webdataset"].manifest["files"]:
        assert hashlib.sha256((out / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]


def test_a_source_shard_that_changed_since_ingest_is_refused(demo_pools, tmp_path):
    pools, shards = demo_pools
    mix = mix_pools(pools, SPEC).frame
    shard_id = mix.filter(pl.col("kind") == "caption")["shard_id"][0]
    pool = pools["caption"].filter(pl.col("shard_id") == shard_id).with_columns(pl.lit("0" * 64).alias("image_sha256"))
    with pytest.raises(ValueError, match="changed since ingest"):
        export_source_shard(shards[("caption", shard_id)], pool, mix, UPath(tmp_path / "out"))


def test_missing_store_images_are_named_not_skipped(demo_pools, tmp_path):
    pools, _ = demo_pools
    mix = mix_pools(pools, SPEC).frame
    with pytest.raises(ValueError, match="image store"):
        export_mix(UPath(tmp_path / "empty"), mix, pools, SMALL_SHARDS)


def test_image_files_keep_their_format_and_bytes(exported):
    _, _, _, out, _, _ = exported
    for path in (p for p in Path(str(out), "images").rglob("*") if p.is_file()):
        with Image.open(io.BytesIO(path.read_bytes())) as image:
            assert {"jpeg": "jpg", "tiff": "tif"}.get(image.format.lower(), image.format.lower()) == path.suffix[1:]


def test_a_shard_that_left_the_mix_loses_its_images_and_an_export_that_stops_is_retired(exported):
    pools, shards, mix, out, _, _ = exported
    gone = mix.filter(pl.col("kind") == "caption")["shard_id"][0]
    stored = list(out.glob(f"images/caption/{gone}.d/*"))
    assert stored
    without = mix.filter(pl.col("shard_id") != gone)
    text_only = Exports(
        webdataset={"enabled": False}, llava={"enabled": False}, interleaved={"enabled": False}, text={"enabled": True}
    )
    results = export_mix(out, without, pools, text_only)
    assert set(results) == {"text", "data_juicer"}
    for name in ("webdataset", "llava", "interleaved"):
        assert read_manifest(out, name) is None
    assert not list(out.glob("webdataset/*.tar")) and not (out / LLAVA_FILE).exists()
    pruned = prune_store(out, without)
    assert pruned["caption"] == len(stored)
    assert not any(path.exists() for path in stored)


def test_staging_files_of_a_killed_export_are_swept(exported):
    out = exported[3]
    leftovers = [out / "webdataset" / ".caption-000001.tar.x1.tmp", out / "images" / "caption" / ".a.jpg.9.tmp"]
    for path in leftovers:
        path.write_bytes(b"partial")
    swept = sweep_staging(out)
    assert sorted(swept) == sorted(str(path.relative_to(out)) for path in leftovers)
    assert not any(path.exists() for path in leftovers)
    assert (out / LLAVA_FILE).exists()  # finished files are never touched
