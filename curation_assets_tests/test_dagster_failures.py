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

    real_pass = shard_work.COMPUTES_TOGETHER[registry.CAPTION_IMAGE_PASS]

    def breaking_pass(work, due):
        if work.shard_id == BROKEN_SCORING:
            raise RuntimeError("the model choked on this shard")
        return real_pass(work, due)

    monkeypatch.setattr(ingest_module, "normalize_shard", breaking_normalize)
    monkeypatch.setitem(shard_work.COMPUTES_TOGETHER, registry.CAPTION_IMAGE_PASS, breaking_pass)
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


def test_one_poisoned_shard_of_each_kind_and_every_other_shard_reaches_the_curated_pools(
    demo_root, instance, monkeypatch
):
    from curation_assets.sources import SourceKind
    from curation_assets.table_store import TableStore

    healthy = {"caption": "wds-00000.tar", "interleaved": "mmc4-00000.jsonl", "text": "web-00000.jsonl"}
    poisoned = {"caption": "wds-00001.tar", "interleaved": "obelics-00000.parquet", "text": "web-00001.parquet"}
    keep_only(demo_root, (*healthy.values(), *poisoned.values()))

    # Caption and text: ingest breaks; interleaved: a model breaks on the shard's images.
    def breaking_normalize(shard, on_progress=None):
        if shard.shard_id in (poisoned["caption"], poisoned["text"]):
            raise RuntimeError(f"a reader bug met {shard.shard_id}")
        return normalize_shard(shard, on_progress)

    real_pass = shard_work.COMPUTES_TOGETHER[registry.INTERLEAVED_IMAGE_PASS]

    def breaking_pass(work, due):
        if work.shard_id == poisoned["interleaved"]:
            raise RuntimeError("the model choked on this shard's images")
        return real_pass(work, due)

    monkeypatch.setattr(ingest_module, "normalize_shard", breaking_normalize)
    monkeypatch.setitem(shard_work.COMPUTES_TOGETHER, registry.INTERLEAVED_IMAGE_PASS, breaking_pass)
    defs = build_definitions(str(demo_root), smoke_recipe(), **FAST_MODELS)
    tick_shard_sensors(instance, defs, log=lambda _: None)
    runs = run_automation(instance, defs, log=lambda _: None)

    report = failure_report(instance, runs)
    assert poisoned["caption"] in report and poisoned["text"] in report
    store = TableStore(demo_root)
    assert set(read_table(demo_root, "curated")["shard_id"]) == {healthy["caption"]}
    for kind in (SourceKind.interleaved, SourceKind.text):
        pool_spec = registry.table(kind, "curated")
        pool = store.read(pool_spec, healthy[kind.value])
        assert pool.height > 0, kind
        assert not store.exists(pool_spec, poisoned[kind.value]), kind
        indexed = store.read(registry.table(kind, "sample_shards"))["shard_id"].to_list()
        assert indexed == [healthy[kind.value]], kind
        decided = store.read(registry.table(kind, "filtered"))
        assert set(decided["shard_id"]) == {healthy[kind.value]}
    assert run_automation(instance, defs, log=lambda _: None) == []
