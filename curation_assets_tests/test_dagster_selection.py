"""Selection on the real Dagster graph: thresholds, filters, dedup, and what a recipe edit re-runs."""

import polars as pl
import pytest
import torch
from dagster import AssetCheckSeverity

from curation_assets.definitions import build_definitions
from curation_assets.defs.local_runner import run_automation
from curation_assets.models.clip import load_clip
from curation_assets.sources import SourceKind
from curation_assets_tests.helpers import (
    FAST_MODELS,
    SETTLED_SHARDS,
    caption_score_tables_in_use,
    key,
    read_shards,
    read_table,
    smoke_recipe,
)
from curation_assets_tests.staleness import StaleStatus, stale_status

CAPTION = SourceKind.caption
KEEP = SETTLED_SHARDS
SCORE_TABLES = caption_score_tables_in_use()
FAST = FAST_MODELS
# The cheap deciding assets; everything else is a model, a score or the index.
DECISIONS = {
    "caption/selection_thresholds",
    "caption/dedup",
    "caption/filtered",
    "caption/selected",
    "caption/curated",
    "caption/score_analysis",
}
# What a new curated pool re-runs downstream: the mix, and its exports.
MIX = {"mix/token_counts", "mix/mix", "mix/exports"}
# Interleaved dedup drops images the curated caption pool holds: a new caption pool re-decides them
# (over no interleaved shard here, in a fraction of a second).
AFTER_CAPTION_POOL = {f"interleaved/{name}" for name in ("dedup", "filtered", "curated", "score_analysis")}
DECISIONS |= AFTER_CAPTION_POOL | MIX


@pytest.fixture
def smoke():
    return smoke_recipe()


def assets_run(runs) -> set[str]:
    return {asset for run in runs for asset in run.assets}


def with_filters(recipe, filters):
    return recipe.model_copy(update={"filters": type(recipe).model_validate({"filters": filters}).filters})


def test_pipeline_settles_and_every_duplicate_image_but_one_is_dropped(settled, smoke):
    caption_root, instance = settled
    defs = build_definitions(str(caption_root), smoke, **FAST)
    assert run_automation(instance, defs, log=lambda _: None) == []  # nothing left to do

    normalized = read_shards(caption_root, "normalized", KEEP)
    decisions = read_table(caption_root, "filtered")
    assert sorted(decisions["sample_id"]) == sorted(normalized["sample_id"])
    # Identical image bytes anywhere in the corpus: one group per image, at most one member kept.
    groups = read_table(caption_root, "dedup")
    copies = normalized.join(groups, on="sample_id", how="left").filter(pl.col("image_sha256").is_duplicated())
    assert copies.height >= 4
    for _, same_bytes in copies.group_by("image_sha256"):
        assert same_bytes["group_id"].null_count() == 0 and same_bytes["group_id"].n_unique() == 1
    for _, group in groups.join(decisions, on="sample_id").group_by("group_id"):
        assert group["kept"].sum() <= 1
        kept = group.filter(pl.col("kept"))["sample_id"].to_list()
        for row in group.filter(~pl.col("kept")).iter_rows(named=True):
            # A member that passed every rule loses only to the one kept; others name their own rule.
            if row["drop_rule"] == "dedup":
                assert kept and row["duplicate_of"] == kept[0]


def test_a_threshold_edit_reruns_only_thresholds_and_decisions(settled, smoke):
    caption_root, instance = settled
    stricter = with_filters(smoke, [{"image_text_similarity_filter": {"min_score": "p60"}}])
    edited = build_definitions(str(caption_root), stricter, **FAST)
    for shard in KEEP:
        for table in SCORE_TABLES:
            assert stale_status(instance, edited, key(table), shard) == StaleStatus.FRESH, table
    assert stale_status(instance, edited, key("selection_thresholds")) == StaleStatus.STALE
    assert stale_status(instance, edited, key("filtered")) == StaleStatus.STALE
    assert stale_status(instance, edited, key("dedup")) == StaleStatus.FRESH

    runs = run_automation(instance, edited, log=lambda _: None)
    # The thresholds, and the decisions after them; no score, embedding, caption or index.
    assert {"caption/selection_thresholds", "caption/filtered"} <= assets_run(runs) <= DECISIONS
    decisions = read_table(caption_root, "filtered")
    similarity_drops = decisions.filter(pl.col("drop_rule") == "image_text_similarity_filter").height
    assert 0.5 < similarity_drops / decisions.height < 0.7  # p60 drops about 60%
    assert run_automation(instance, edited, log=lambda _: None) == []


def test_an_unchanged_rerun_of_the_thresholds_leaves_decisions_fresh(settled, smoke):
    caption_root, instance = settled
    defs = build_definitions(str(caption_root), smoke, **FAST)
    defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[key("selection_thresholds")]
    )
    # Same resolved thresholds -> same data version -> nothing to redo.
    assert stale_status(instance, defs, key("filtered")) == StaleStatus.FRESH
    assert run_automation(instance, defs, log=lambda _: None) == []


def test_switching_the_clip_model_reruns_embeddings_and_what_reads_them_only(settled, smoke, tmp_path):
    caption_root, instance = settled

    checkpoint = tmp_path / "other-clip.pt"
    torch.manual_seed(1)  # another set of weights for the same architecture, loaded by path
    other = load_clip(smoke.models.clip, "smoke", device="cpu")
    torch.save({k: torch.randn_like(v) * 0.02 for k, v in other.model.state_dict().items()}, checkpoint)
    switched = smoke.model_copy(
        update={
            "models": smoke.models.model_copy(
                update={"clip": smoke.models.clip.model_copy(update={"checkpoint": str(checkpoint)})}
            )
        }
    )
    runs = run_automation(instance, build_definitions(str(caption_root), switched, **FAST), log=lambda _: None)
    ran = assets_run(runs)
    assert {"caption/clip_embeddings", "caption/clip_similarity", "caption/aesthetics", "caption/dedup"} <= ran
    assert not ran & {"caption/itm", "caption/nsfw", "caption/watermark", "caption/image_phash", "caption/text_stats"}


def test_kept_fraction_outside_the_recipe_bounds_warns(settled, smoke):
    caption_root, instance = settled
    strict = smoke.model_copy(update={"checks": type(smoke.checks).model_validate({"kept_fraction": {"min": 0.99}})})
    defs = build_definitions(str(caption_root), strict, **FAST)
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[key("filtered")]
    )
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["every_row_decided"].passed
    assert not evaluations["kept_fraction_within_bounds"].passed
    assert evaluations["kept_fraction_within_bounds"].severity == AssetCheckSeverity.WARN


def test_adding_selectors_reruns_only_the_selection(settled, smoke, tmp_path):
    caption_root, instance = settled
    target = tmp_path / "target.txt"
    target.write_text("a red circle on a blue background\na red square on a green background\n")
    with_selectors = smoke.model_copy(
        update={
            "selectors": type(smoke.selectors).model_validate(
                {
                    "topk_specified_field_selector": {"field_key": "clip_similarity", "top_ratio": 0.8},
                    "coreset_selector": {"fraction": 0.5, "num_clusters": 4},
                    "dsir_selector": {"target": str(target), "fraction": 0.5, "num_buckets": 1024},
                }
            )
        }
    )
    runs = run_automation(instance, build_definitions(str(caption_root), with_selectors, **FAST), log=lambda _: None)
    assert assets_run(runs) == {"caption/selected", "caption/curated"} | AFTER_CAPTION_POOL | MIX
    selected = read_table(caption_root, "selected")
    kept = read_table(caption_root, "filtered")
    assert selected.height == kept["kept"].sum()
    assert 0 < selected["selected"].sum() <= round(round(round(selected.height * 0.8) * 0.5) * 0.5) + 1
    record = instance.get_latest_materialization_event(key("selected"))
    assert record.asset_materialization.metadata["dsir_kl_reduction"].value > 0


def test_a_group_whose_best_scored_member_fails_a_rule_keeps_the_member_that_passes(settled, smoke):
    """Two copies of one image, a long caption and a short one: the copy with the higher CLIP score
    fails a words rule that the other passes; dedup must keep the other (choosing by score first
    used to drop both)."""
    from curation_assets.demo.many_shards import tiny_image
    from curation_assets.demo.writers import CaptionSample, write_webdataset_tar
    from curation_assets.local_run import tick_shard_sensors

    caption_root, instance = settled
    long, short = " ".join(["word"] * 40), "three short words"
    image = tiny_image(4242)
    write_webdataset_tar(
        caption_root / "raw" / "caption" / "copies.tar", [CaptionSample(image, long), CaptionSample(image, short)]
    )
    # Image dedup only: smoke recaptions are near-identical gibberish that caption MinHash would group
    # with other shards' pairs.
    smoke = smoke.model_copy(update={"dedup": type(smoke.dedup).model_validate({"image_deduplicator": {}})})
    defs = build_definitions(str(caption_root), with_filters(smoke, []), **FAST)
    tick_shard_sensors(instance, defs, log=lambda _: None)
    run_automation(instance, defs, log=lambda _: None)
    pair = read_table(caption_root, "sample_index").filter(pl.col("shard_id") == "copies.tar")
    assert pair.height == 2 and pair["image_sha256"].n_unique() == 1
    best, other = pair.sort("clip_similarity", descending=True).iter_rows(named=True)
    # (A recaption may have replaced either caption: the rule is set on what the index holds.)
    assert best["num_words"] != other["num_words"]
    bound = (
        {"max_num": other["num_words"]} if best["num_words"] > other["num_words"] else {"min_num": other["num_words"]}
    )

    edited = with_filters(smoke, [{"words_num_filter": bound}])
    run_automation(instance, build_definitions(str(caption_root), edited, **FAST), log=lambda _: None)
    decisions = read_table(caption_root, "filtered").filter(pl.col("shard_id") == "copies.tar")
    by_id = {row["sample_id"]: row for row in decisions.iter_rows(named=True)}
    assert by_id[other["sample_id"]]["kept"]
    assert by_id[best["sample_id"]]["drop_rule"] == "words_num_filter"
