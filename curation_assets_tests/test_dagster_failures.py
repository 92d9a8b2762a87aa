"""One failure stays one failure: a shard whose ingest or scoring breaks is reported, with its shard, step
and error, and every other shard still reaches the curated pool."""

import polars as pl
from dagster import AssetRecordsFilter

from curation_assets import registry, shard_work
from curation_assets.definitions import build_definitions
from curation_assets.defs import ingest as ingest_module
from curation_assets.defs.local_runner import run_automation
from curation_assets.local_run import failure_report, tick_shard_sensors
from curation_assets.normalize import normalize_shard
from curation_assets_tests.helpers import FAST_MODELS, keep_only, key, read_table, smoke_recipe

SHARDS = ("wds-00000.tar", "wds-00001.tar", "wds-00002.tar", "llava-00000.json")
BROKEN_INGEST, BROKEN_SCORING = "wds-00001.tar", "llava-00000.json"


def test_a_shard_that_breaks_ingest_and_one_that_breaks_scoring_stop_nothing_else(demo_root, instance, monkeypatch):
    keep_only(demo_root, SHARDS)

    def breaking_normalize(shard, on_progress=None):
        if shard.shard_id == BROKEN_INGEST:
            raise RuntimeError("a reader bug met this shard")
        return normalize_shard(shard, on_progress)

    real_clip = shard_work.COMPUTES[registry.CLIP_EMBEDDINGS]

    def breaking_clip(work):
        if work.shard_id == BROKEN_SCORING:
            raise RuntimeError("the model choked on this shard")
        return real_clip(work)

    monkeypatch.setattr(ingest_module, "normalize_shard", breaking_normalize)
    monkeypatch.setitem(shard_work.COMPUTES, registry.CLIP_EMBEDDINGS, breaking_clip)
    defs = build_definitions(str(demo_root), smoke_recipe(), **FAST_MODELS)
    tick_shard_sensors(instance, defs, log=lambda _: None)
    runs = run_automation(instance, defs, log=lambda _: None)

    failed = [run for run in runs if not run.success]
    assert failed, "the broken shards must show as failed runs"
    report = failure_report(instance, runs)
    assert BROKEN_INGEST in report and "a reader bug met this shard" in report
    pool = read_table(demo_root, "curated")
    healthy = set(SHARDS) - {BROKEN_INGEST, BROKEN_SCORING}
    assert set(pool["shard_id"]) == healthy  # every healthy shard reached the pool
    # The scoring failure is reported on its shard: the table's failed_shards metadata and its check.
    [record] = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key("clip_embeddings"), asset_partitions=[BROKEN_SCORING]), limit=1
    ).records
    assert "the model choked on this shard" in record.asset_materialization.metadata["shard_failed"].value
    index = read_table(demo_root, "sample_index")
    assert not index.filter(pl.col("shard_id").is_in([BROKEN_INGEST, BROKEN_SCORING])).height
    # Automation does not retry the failures in a loop: once the healthy shards are done, it is quiet.
    assert run_automation(instance, defs, log=lambda _: None) == []
