"""Selection on the real Dagster graph: thresholds, filters, dedup, and what a recipe edit re-runs."""

import polars as pl
import pytest
import torch
from dagster import AssetCheckSeverity

from curation_assets import registry
from curation_assets.definitions import build_definitions
from curation_assets.defs.stale_runner import StaleStatus, run_until_fresh, stale_status
from curation_assets.models.clip import load_clip
from curation_assets.sources import SourceKind
from curation_assets_tests.helpers import FAST_MODELS, SETTLED_SHARDS, key, read_shards, read_table, smoke_recipe

CAPTION = SourceKind.caption
KEEP = SETTLED_SHARDS
SCORE_TABLES = [spec.name for spec in registry.CAPTION_SCORE_TABLES]
FAST = FAST_MODELS
# The cheap deciding assets; everything else is a model or a score.
DECISIONS = {
    "caption/selection_thresholds",
    "caption/filtered",
    "caption/selected",
    "caption/curated",
    "caption/curated_manifest",
}


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
    assert run_until_fresh(instance, defs, log=lambda _: None) == []  # nothing left out of date

    normalized = read_shards(caption_root, "normalized", KEEP)
    decisions = read_shards(caption_root, "filtered", KEEP)
    assert decisions.height == normalized.height
    # Identical image bytes anywhere in the corpus: exactly one survives dedup (it may still fail a threshold).
    duplicates = read_table(caption_root, "dedup")
    copies = normalized.join(decisions, on="sample_id").join(duplicates, on="sample_id", how="left")
    copies = copies.filter(pl.col("image_sha256").is_duplicated())
    assert copies.height >= 4
    for _, same_bytes in copies.group_by("image_sha256"):
        assert same_bytes["group_id"].null_count() == 0 and same_bytes["group_id"].n_unique() == 1
    groups = normalized.join(decisions, on="sample_id").join(duplicates, on="sample_id")
    for _, group in groups.group_by("group_id"):
        assert group["representative"].sum() == 1  # one survivor per duplicate group...
        assert group["kept"].sum() <= 1  # ...which may still fail a threshold
        losers = group.filter(~pl.col("representative"))
        assert (~losers["kept"]).all() and losers["duplicate_of"].is_not_null().all()


def test_a_threshold_edit_reruns_only_thresholds_and_filters(settled, smoke):
    caption_root, instance = settled
    stricter = with_filters(smoke, [{"image_text_similarity_filter": {"min_score": "p60"}}])
    edited = build_definitions(str(caption_root), stricter, **FAST)
    for shard in KEEP:
        for table in SCORE_TABLES:
            assert stale_status(instance, edited, key(table), shard) == StaleStatus.FRESH, table
        assert stale_status(instance, edited, key("filtered"), shard) == StaleStatus.STALE
    assert stale_status(instance, edited, key("selection_thresholds")) == StaleStatus.STALE
    assert stale_status(instance, edited, key("dedup")) == StaleStatus.FRESH

    runs = run_until_fresh(instance, edited, log=lambda _: None)
    # The filter, and the decisions after it where its output changed; no score, embedding or caption.
    assert {"caption/selection_thresholds", "caption/filtered"} <= assets_run(runs) <= DECISIONS
    decisions = read_shards(caption_root, "filtered", KEEP)
    similarity_drops = decisions.filter(pl.col("drop_rule") == "image_text_similarity_filter").height
    assert 0.5 < similarity_drops / decisions.height < 0.7  # p60 drops about 60%, minus dedup overlap


def test_an_unchanged_rerun_of_the_thresholds_leaves_filters_fresh(settled, smoke):
    caption_root, instance = settled
    defs = build_definitions(str(caption_root), smoke, **FAST)
    defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[key("selection_thresholds")]
    )
    for shard in KEEP:  # same resolved thresholds -> same data version -> nothing to redo
        assert stale_status(instance, defs, key("filtered"), shard) == StaleStatus.FRESH


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
    runs = run_until_fresh(instance, build_definitions(str(caption_root), switched, **FAST), log=lambda _: None)
    ran = assets_run(runs)
    assert {"caption/clip_embeddings", "caption/clip_similarity", "caption/aesthetics", "caption/dedup"} <= ran
    assert not ran & {"caption/itm", "caption/nsfw", "caption/watermark", "caption/image_phash", "caption/text_stats"}


def test_kept_fraction_outside_the_recipe_bounds_warns(settled, smoke):
    caption_root, instance = settled
    strict = smoke.model_copy(update={"checks": type(smoke.checks).model_validate({"kept_fraction": {"min": 0.99}})})
    defs = build_definitions(str(caption_root), strict, **FAST)
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[key("filtered")], partition_key="wds-00000.tar"
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
    runs = run_until_fresh(instance, build_definitions(str(caption_root), with_selectors, **FAST), log=lambda _: None)
    assert assets_run(runs) == {"caption/selected", "caption/curated", "caption/curated_manifest"}
    selected = read_table(caption_root, "selected")
    kept = read_shards(caption_root, "filtered", KEEP)
    assert selected.height == kept["kept"].sum()
    assert 0 < selected["selected"].sum() <= round(round(round(selected.height * 0.8) * 0.5) * 0.5) + 1
    record = instance.get_latest_materialization_event(key("selected"))
    assert record.asset_materialization.metadata["dsir_kl_reduction"].value > 0
