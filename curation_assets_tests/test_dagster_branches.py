"""The text and interleaved branches on the real Dagster graph, over the demo's documents: every
planted defect dropped by its rule, every row decided, the curated pools per shard, and a threshold
edit that re-runs only decisions."""

import json

import polars as pl

from curation_assets import registry
from curation_assets.definitions import build_definitions
from curation_assets.defs.local_runner import run_automation
from curation_assets.sources import SourceKind
from curation_assets.table_store import TableStore
from curation_assets_tests.helpers import BRANCH_DOCUMENT_SHARDS as DOCUMENT_SHARDS
from curation_assets_tests.helpers import FAST_MODELS, smoke_recipe

TEXT, INTERLEAVED = SourceKind.text, SourceKind.interleaved
# Global, model-free tables: all a threshold edit may re-run.
DECISIONS = {
    f"{kind.value}/{name}"
    for kind in (TEXT, INTERLEAVED)
    for name in (
        "selection_thresholds",
        "dedup",
        "filtered",
        "selected",
        "curated",
        "score_analysis",
    )
} | {"mix/token_counts", "mix/mix", "mix/exports"}
TEXT_DROPS = {  # what the default text recipe drops each planted defect for (test_text_branch.py)
    "non_english": {"language_id_score_filter"},
    "repetitive_spam": {"language_id_score_filter"},
    "symbol_noise": {"language_id_score_filter"},
    "too_short": {"text_length_filter"},
    "keyword_list": {"stopwords_filter"},
}


def planted(root, kind: SourceKind) -> dict[str, str]:
    """<shard>/<sample key> -> planted defect, over the kind's shards."""
    manifest = json.loads((root / "demo_manifest.json").read_text())
    return {
        f"{name}/{key}": defect
        for name in DOCUMENT_SHARDS
        if f"{kind.value}/{name}" in manifest
        for defect, keys in manifest[f"{kind.value}/{name}"]["defects"].items()
        for key in keys
    }


def decisions_with_defects(root, kind: SourceKind) -> pl.DataFrame:
    store = TableStore(root)
    keys = pl.concat(
        [
            store.read(registry.NORMALIZED[kind], shard, ["sample_id", "shard_id", "key"])
            for shard in store_shards(root, kind)
        ]
    ).select("sample_id", pl.concat_str("shard_id", pl.lit("/"), "key").alias("key"))
    defects = planted(root, kind)
    return (
        store.read(registry.table(kind, "filtered"))
        .join(keys, on="sample_id")
        .with_columns(pl.col("key").replace_strict(defects, default="").alias("defect"))
    )


def store_shards(root, kind: SourceKind) -> list[str]:
    return sorted(path.stem for path in (root / kind.value / "normalized").glob("*.parquet"))


def test_text_documents_each_planted_defect_dropped_by_its_rule_and_one_copy_of_each_duplicate_kept(branches):
    root, _ = branches
    decided = decisions_with_defects(root, TEXT)
    for defect, rules in TEXT_DROPS.items():
        rows = decided.filter(pl.col("defect") == defect)
        assert rows.height and not rows["kept"].any() and set(rows["drop_rule"]) <= rules, defect
    # Every planted copy is in a duplicate group, and each group keeps one document at most.
    groups = TableStore(root).read(registry.TEXT_DEDUP).join(decided, left_on="member_id", right_on="sample_id")
    copies = decided.filter(pl.col("defect").is_in(["exact_duplicate", "near_duplicate"]))
    assert copies.height == 5 and set(copies["sample_id"]) <= set(groups["member_id"])
    for _, group in groups.group_by("group_id"):
        assert group["kept"].sum() <= 1 and (group["drop_rule"] == "dedup").sum() >= 1
    clean = decided.filter(pl.col("defect") == "")
    # A clean document is kept, or dropped as the copy of a planted duplicate (one copy survives).
    assert clean.height >= 20 and set(clean.filter(~pl.col("kept"))["drop_rule"]) <= {"dedup"}
    # The curated pool: one file per shard, exactly the selected documents, in the canonical layout.
    store = TableStore(root)
    pool = pl.concat([store.read(registry.TEXT_CURATED, shard) for shard in store_shards(root, TEXT)])
    assert set(pool["sample_id"]) == set(decided.filter("kept")["sample_id"])
    assert {"text", "shard_id", "key"} <= set(pool.columns)


def test_interleaved_images_and_documents_decided_at_two_levels(branches):
    root, _ = branches
    store = TableStore(root)
    decided = decisions_with_defects(root, INTERLEAVED)
    images = store.read(registry.INTERLEAVED_IMAGE_DECISIONS).join(
        decided.select("sample_id", "defect"), on="sample_id"
    )
    broken = images.filter(pl.col("defect") == "all_images_broken")
    assert broken.height and set(broken["drop_rule"]) == {"image_shape_filter"}
    assert decided.filter(pl.col("defect") == "all_images_broken")["drop_rule"].item() == "images_left_filter"
    # A planted copy's image is in a group with its source; one copy at most survives, the others are
    # dropped as duplicates by the method that links them; a copy of a caption pool image never survives.
    groups = store.read(registry.INTERLEAVED_DEDUP).filter(pl.col("level") == "image")
    for defect, method in (
        ("cross_document_duplicate_image", "exact"),
        ("near_duplicate_image", "phash"),
        ("caption_duplicate_image", "exact"),
    ):
        planted_images = images.filter(pl.col("defect") == defect)["image_id"]
        group_ids = groups.filter(pl.col("member_id").is_in(planted_images.implode()))["group_id"].unique()
        assert group_ids.len() >= 1, defect
        members = groups.filter(pl.col("group_id").is_in(group_ids.implode())).join(
            images, left_on="member_id", right_on="image_id"
        )
        assert members["kept"].sum() <= (0 if defect == "caption_duplicate_image" else group_ids.len()), defect
        assert members["method"].str.contains(method).all(), defect
        as_copies = members.filter(pl.col("drop_rule") == "dedup")
        assert as_copies["drop_value"].str.contains(method).all(), defect
        if defect == "caption_duplicate_image":  # judged by its rules first, and a copy of the pair data anyway
            assert members["duplicate_of"].str.starts_with("caption:").all()
    # The near-duplicate document and its source form one group; one of them survives.
    documents = store.read(registry.INTERLEAVED_DEDUP).filter(pl.col("level") == "document")
    copy = decided.filter(pl.col("defect") == "near_duplicate_document")["sample_id"].item()
    [group] = documents.filter(pl.col("member_id") == copy)["group_id"].to_list()
    members = documents.filter(pl.col("group_id") == group).join(decided, left_on="member_id", right_on="sample_id")
    assert members.height == 2 and members["method"].to_list() == ["minhash"] * 2
    # The other is dropped as a duplicate, unless a rule judged first already drops it: smoke CLIP
    # similarities are random, so images_left_filter may (the drop reason is the first failing rule).
    assert members["kept"].sum() == 1
    assert members.filter(~pl.col("kept"))["drop_rule"].item() in ("dedup", "images_left_filter")
    # Text rules: smoke CLIP similarities are random, so images_left_filter (first in order) may drop the
    # document before them; the index shows what the text rule reads.
    index = store.read(registry.INTERLEAVED_SAMPLES).join(decided.select("sample_id", "defect", "kept"), on="sample_id")
    foreign = index.filter(pl.col("defect") == "non_english").row(0, named=True)
    spam = index.filter(pl.col("defect") == "repetitive_spam").row(0, named=True)
    assert foreign["language"] != "en" and not foreign["kept"]
    assert spam["word_repetition_ratio"] > 0.5 and not spam["kept"]
    # Kept documents keep their text, lose only their dropped images, and stay aligned.
    pool = pl.concat([store.read(registry.INTERLEAVED_CURATED, shard) for shard in store_shards(root, INTERLEAVED)])
    assert set(pool["sample_id"]) == set(decided.filter("kept")["sample_id"])
    kept_images = images.filter("kept").group_by("sample_id").len()
    for row in pool.join(kept_images, on="sample_id", how="left").iter_rows(named=True):
        assert row["num_images"] == (row["len"] or 0)
        assert all((text is None) != (image is None) for text, image in zip(row["texts"], row["images"]))


def test_every_branch_check_passed(branches):
    _, instance = branches
    defs = build_definitions(None, smoke_recipe(), **FAST_MODELS)
    checks = [
        key
        for key in defs.resolve_asset_graph().asset_check_keys
        if key.asset_key.path[0] in (TEXT.value, INTERLEAVED.value)
    ]
    names = {key.name for key in checks}
    assert {"every_row_decided", "covers_every_valid_row", "rows_accounted_for"} <= names
    for key in checks:
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key]).get(key)
        assert record is not None, key
        evaluation = record.event.dagster_event.event_specific_data
        assert evaluation.passed, (key, evaluation.description)


def test_a_threshold_edit_reruns_only_the_branch_decisions(branches):
    root, instance = branches
    recipe = smoke_recipe()
    stricter = recipe.model_copy(
        update={
            "text": recipe.text.model_copy(update={"filters": [*recipe.text.filters[:1]]}),
            "interleaved": recipe.interleaved.model_copy(update={"reassign_images": True}),
        }
    )
    runs = run_automation(instance, build_definitions(str(root), stricter, **FAST_MODELS), log=lambda _: None)
    ran = {asset for run in runs for asset in run.assets}
    assert {"text/selection_thresholds", "text/filtered", "interleaved/filtered"} <= ran <= DECISIONS
    decided = decisions_with_defects(root, TEXT)
    assert decided.filter(pl.col("defect") == "too_short")["kept"].all()  # text_length_filter is gone


def test_dsir_over_the_kept_text_documents_reruns_only_the_selection_and_the_pool(branches, tmp_path):
    from curation_assets.recipe import DsirSelector

    root, instance = branches
    target = tmp_path / "target.txt"
    target.write_text("tomatoes basil compost seedlings garden soil watering pruning\n" * 20)
    recipe = smoke_recipe()
    dsir = recipe.text.selectors.model_copy(update={"dsir_selector": DsirSelector(target=str(target), fraction=0.5)})
    edited = recipe.model_copy(update={"text": recipe.text.model_copy(update={"selectors": dsir})})
    runs = run_automation(instance, build_definitions(str(root), edited, **FAST_MODELS), log=lambda _: None)
    assert {asset for run in runs for asset in run.assets} == {
        "text/selected",
        "text/curated",
        "mix/token_counts",
        "mix/mix",
        "mix/exports",
    }
    store = TableStore(root)
    selected = store.read(registry.TEXT_SELECTED)
    kept = store.read(registry.TEXT_FILTERED).filter("kept")
    assert selected.height == kept.height and selected["selected"].sum() == round(0.5 * kept.height)
    assert set(selected.filter(~pl.col("selected"))["dropped_by"]) == {"dsir_selector"}
    pool = pl.concat([store.read(registry.TEXT_CURATED, shard) for shard in store_shards(root, TEXT)])
    assert set(pool["sample_id"]) == set(selected.filter("selected")["sample_id"])
    mixed = store.read(registry.MIX_TABLE).filter(pl.col("kind") == TEXT.value)
    assert mixed.height and set(mixed["sample_id"]) <= set(pool["sample_id"])  # the mix draws the new pool
