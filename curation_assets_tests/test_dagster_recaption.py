"""Recaptioning on the real Dagster graph: provenance, the curated pool, and what recipe edits re-run."""

import polars as pl

from curation_assets import registry
from curation_assets.definitions import build_definitions
from curation_assets.defs import models as model_resources
from curation_assets.defs.local_runner import run_automation
from curation_assets.sources import SourceKind
from curation_assets_tests.helpers import FAST_MODELS, SETTLED_SHARDS, key, read_table, smoke_recipe
from curation_assets_tests.staleness import StaleStatus, stale_status

CAPTION = SourceKind.caption
SCORE_TABLES = [spec.name for spec in registry.CAPTION_SCORE_TABLES]


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


def test_curated_repeat_is_a_mix_weight_that_reruns_only_the_manifest(settled):
    root, instance = settled
    recipe = smoke_recipe()
    twice = recipe.model_copy(update={"curated": recipe.curated.model_copy(update={"repeat": 2})})
    runs = run_automation(instance, build_definitions(str(root), twice, **FAST_MODELS), log=lambda _: None)
    assert ran(runs) == {"caption/curated_manifest"}
    manifest = read_table(root, "curated_manifest")
    assert (manifest["repeat"] == 2).all()
    assert manifest.height == read_table(root, "curated").height


def test_new_captions_pass_the_same_text_filters_as_original_ones(settled):
    """A kept recaption is judged as the pair it now is: a words_num_filter that its new caption
    fails drops the pair, though the original caption would have passed."""
    root, instance = settled
    samples = read_table(root, "sample_index")
    rewritten = samples.filter(pl.col("caption_source") == "recaptioned")
    assert rewritten.height > 0
    target = rewritten.row(0, named=True)
    original_words = len(target["original_caption"].split())
    assert target["num_words"] == len(target["caption"].split()) != original_words
    recipe = smoke_recipe()
    bound = {"max_num": original_words} if target["num_words"] > original_words else {"min_num": original_words}
    edited = recipe.model_copy(
        update={"filters": type(recipe).model_validate({"filters": [{"words_num_filter": bound}]}).filters}
    )
    run_automation(instance, build_definitions(str(root), edited, **FAST_MODELS), log=lambda _: None)
    decision = read_table(root, "filtered").filter(pl.col("sample_id") == target["sample_id"]).row(0, named=True)
    assert not decision["kept"] and decision["drop_rule"] == "words_num_filter"
