"""Recaptioning on the real Dagster graph: provenance, the curated pool, and what recipe edits re-run."""

import polars as pl

from curation_assets.definitions import build_definitions
from curation_assets.defs import models as model_resources
from curation_assets.defs.local_runner import run_automation
from curation_assets.sources import SourceKind
from curation_assets_tests.helpers import (
    FAST_MODELS,
    SETTLED_SHARDS,
    caption_score_tables_in_use,
    key,
    read_table,
    smoke_recipe,
)
from curation_assets_tests.staleness import StaleStatus, stale_status

CAPTION = SourceKind.caption
SCORE_TABLES = caption_score_tables_in_use()


def read(root, stage, shard):
    return read_table(root, stage, shard)


def ran(runs):
    return {asset for run in runs for asset in run.assets}


def test_recaptioned_rows_and_the_curated_pool_account_for_every_pair(settled):
    root, _ = settled
    recipe = smoke_recipe()
    for shard in SETTLED_SHARDS:
        recaptioned = read(root, "recaptioned", shard)
        similarity = read(root, "clip_similarity", shard)
        assert recaptioned.height > 0
        # Entrants are exactly the band (the smoke image conditions let these small demo images through).
        in_band = similarity.filter(
            pl.col("clip_similarity").is_between(recipe.recaption.band.min, recipe.recaption.band.max)
        )
        assert set(recaptioned["sample_id"]) <= set(in_band["sample_id"])
        assert recaptioned["captioner"].str.starts_with("transformers:smoke-blip-captioner").all()
        assert (recaptioned["candidates"].list.len() == recipe.models.captioner.num_candidates).all()
        best = recaptioned["candidate_scores"].list.max()
        assert (best - recaptioned["score_after"]).abs().max() < 1e-6  # the chosen caption is the best-scoring one
        # Every kept new caption replaces its pair's caption in the index; the pool is what was selected.
        samples = read_table(root, "sample_index").filter(pl.col("shard_id") == shard)
        rewritten = samples.filter(pl.col("caption_source") == "recaptioned")
        assert set(rewritten["sample_id"]) == set(recaptioned.filter(pl.col("kept"))["sample_id"])
        assert (rewritten["caption"] != rewritten["original_caption"]).all()
        pool = read_table(root, "curated").filter(pl.col("shard_id") == shard)
        selected = read_table(root, "selected").filter(pl.col("selected") & (pl.col("shard_id") == shard))
        assert set(pool["sample_id"]) == set(selected["sample_id"])


def test_changing_the_band_reruns_recaptioning_but_no_scoring(settled):
    root, instance = settled
    recipe = smoke_recipe()
    narrower = recipe.model_copy(
        update={
            "recaption": recipe.recaption.model_copy(
                update={"band": recipe.recaption.band.model_copy(update={"max": 0.0})}
            )
        }
    )
    edited = build_definitions(str(root), narrower, **FAST_MODELS)
    for shard in SETTLED_SHARDS:
        assert stale_status(instance, edited, key("recaptioned"), shard) == StaleStatus.STALE
        for table in SCORE_TABLES:
            assert stale_status(instance, edited, key(table), shard) == StaleStatus.FRESH, table
    runs = run_automation(instance, edited, log=lambda _: None)
    assert "caption/recaptioned" in ran(runs)
    assert not ran(runs) & {f"caption/{table}" for table in SCORE_TABLES}


def test_changing_the_captioner_reruns_only_recaptioning_and_what_follows(settled):
    root, instance = settled
    recipe = smoke_recipe()
    longer = recipe.model_copy(
        update={
            "models": recipe.models.model_copy(
                update={"captioner": recipe.models.captioner.model_copy(update={"max_new_tokens": 20})}
            )
        }
    )
    loads = model_resources.LOADS["captioner"]
    runs = run_automation(instance, build_definitions(str(root), longer, **FAST_MODELS), log=lambda _: None)
    assert "caption/recaptioned" in ran(runs)
    assert not ran(runs) & {f"caption/{table}" for table in SCORE_TABLES}
    recaption_runs = [run for run in runs if "caption/recaptioned" in run.assets]
    assert len(recaption_runs) == 1 and len(recaption_runs[0].partitions) == len(SETTLED_SHARDS)  # one run, all shards
    assert model_resources.LOADS["captioner"] - loads <= 1  # loaded once for the run (or reused in this process)
