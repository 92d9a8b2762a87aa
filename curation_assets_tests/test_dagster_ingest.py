"""The real Dagster graph on generated shards: sensors, partitions, data versions, staleness, checks."""

import os

import polars as pl
import pytest
from dagster import AssetMaterialization, AssetRecordsFilter, SensorResult, SkipReason, build_sensor_context

from curation_assets.definitions import build_definitions
from curation_assets.defs.keys import shard_set_key
from curation_assets.local_run import apply_sensor_result, tick_shard_sensors
from curation_assets.report.format import escape
from curation_assets.sources import SourceKind
from curation_assets.storage import DataRoot, content_hash
from curation_assets_tests.helpers import ingest_registered, key, read_table
from curation_assets_tests.staleness import StaleStatus, stale_status

CAPTION = SourceKind.caption
TEXT = SourceKind.text


@pytest.fixture
def defs(demo_root):
    return build_definitions(str(demo_root))


def tick(instance, defs, kind, cursor=None):
    sensor = defs.resolve_sensor_def(f"new_{kind.value}_shards")
    with build_sensor_context(instance=instance, cursor=cursor, resources=defs.resources) as context:
        result = sensor(context)
        return result, context.cursor


def ingest_everything(instance, defs) -> int:
    tick_shard_sensors(instance, defs, log=lambda _: None)
    return sum(ingest_registered(instance, defs, kind) for kind in SourceKind)


def test_sensor_registers_every_new_shard_with_its_content_hash(instance, defs, demo_root, demo_manifest):
    result, _ = tick(instance, defs, CAPTION)
    assert isinstance(result, SensorResult)
    expected = sorted(name.split("/")[1] for name in demo_manifest if name.startswith("caption/"))
    [add_request] = result.dynamic_partitions_requests
    assert sorted(add_request.partition_keys) == expected
    assert not result.run_requests  # automation ingests what is new or changed
    # The tick says what it saw (the UI shows this message, not "returned an empty result").
    assert f"recorded {len(expected)} new, 0 changed, 0 removed caption shards" in result.skip_reason.skip_message
    versions = {
        event.partition: event.tags["dagster/data_version"]
        for event in result.asset_events
        if isinstance(event, AssetMaterialization)
    }
    assert versions["wds-00000.tar"] == content_hash(DataRoot(demo_root).raw_dir(CAPTION) / "wds-00000.tar")

    apply_sensor_result(instance, result)
    assert sorted(instance.get_dynamic_partitions("caption_shards")) == expected


def test_sensor_skips_unchanged_and_touched_files_and_reversions_edited_ones(instance, defs, demo_root):
    result, cursor = tick(instance, defs, TEXT)
    apply_sensor_result(instance, result)

    again, cursor = tick(instance, defs, TEXT, cursor)
    assert isinstance(again, SkipReason)

    touched = demo_root / "raw" / "text" / "web-00000.jsonl"
    os.utime(touched, (1_000_000_000, 1_000_000_000))  # new mtime, same bytes
    after_touch, cursor = tick(instance, defs, TEXT, cursor)
    assert isinstance(after_touch, SkipReason)
    assert "1 re-hashed" in after_touch.skip_message

    edited = demo_root / "raw" / "text" / "web-00001.parquet"
    frame = pl.read_parquet(edited)
    frame.with_columns(pl.col("text").str.replace("the", "THE")).write_parquet(edited)
    after_edit, cursor = tick(instance, defs, TEXT, cursor)
    assert [event.partition for event in after_edit.asset_events if event.partition] == ["web-00001.parquet"] * 2
    assert after_edit.dynamic_partitions_requests == []  # not new, only changed
    raw_events = [event for event in after_edit.asset_events if event.partition == "web-00001.parquet"]
    observation, materialization = raw_events
    assert observation.tags == materialization.tags
    assert materialization.tags["dagster/data_version"] == content_hash(
        DataRoot(demo_root).raw_dir(TEXT) / "web-00001.parquet"
    )
    # The set of text shards changed too: one version for all of them, which the global tables read.
    set_events = [event for event in after_edit.asset_events if event.asset_key == shard_set_key(TEXT)]
    assert len(set_events) == 2 and set_events[0].tags != {}


def test_a_fresh_cursor_does_not_rerun_shards_already_recorded(instance, defs):
    """The daemon's cursor is only a stat cache; the instance's data versions decide what changed."""
    ingest_everything(instance, defs)
    result, _ = tick(instance, defs, CAPTION, cursor=None)
    assert isinstance(result, SkipReason)


def test_ingest_writes_tables_and_editing_one_shard_stales_only_its_downstream(
    instance, defs, demo_root, demo_manifest
):
    assert ingest_everything(instance, defs) == len(demo_manifest)

    for shard, expected in demo_manifest.items():
        kind, name = shard.split("/")
        assert read_table(demo_root, "normalized", name, SourceKind(kind)).height == expected["valid"]
        assert read_table(demo_root, "quarantine", name, SourceKind(kind)).height == sum(
            expected["quarantine"].values()
        )

    # Each shard's quarantine page shows examples, every reason of the shard among them.
    for shard, expected in demo_manifest.items():
        kind, name = shard.split("/")
        [record] = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key("quarantine", SourceKind(kind)), asset_partitions=[name]), limit=1
        ).records
        examples = record.asset_materialization.metadata["examples"].value
        for reason in expected["quarantine"]:
            assert f"| {escape(reason)} |" in examples, (shard, reason)

    caption_shards = instance.get_dynamic_partitions("caption_shards")
    for shard in caption_shards:
        assert stale_status(instance, defs, key("normalized"), shard) == StaleStatus.FRESH

    # Touch one shard, edit another; only the edited one's tables go stale.
    os.utime(demo_root / "raw" / "caption" / "wds-00001.tar", (1_000_000_000, 1_000_000_000))
    with open(demo_root / "raw" / "caption" / "dj-00000.jsonl", "ab") as handle:
        handle.write(b'{"text": "<__dj__image> one more line", "images": ["dj-00000_images/000000.jpg"]}\n')
    result, _ = tick(instance, defs, CAPTION)
    apply_sensor_result(instance, result)
    assert [event.partition for event in result.asset_events if event.partition] == ["dj-00000.jsonl"] * 2

    for shard in caption_shards:
        want = StaleStatus.STALE if shard == "dj-00000.jsonl" else StaleStatus.FRESH
        assert stale_status(instance, defs, key("normalized"), shard) == want, shard
        assert stale_status(instance, defs, key("quarantine"), shard) == want, shard
    assert stale_status(instance, defs, key("normalized", TEXT), "web-00000.jsonl") == StaleStatus.FRESH


def ingest_one(instance, defs, kind, shard):
    """Register every shard of `kind`, then run the real ingest job for one of them."""
    result, _ = tick(instance, defs, kind)
    if isinstance(result, SensorResult):
        apply_sensor_result(instance, result)
    job = defs.resolve_job_def(f"ingest_{kind.value}_shards")
    run = job.execute_in_process(instance=instance, partition_key=shard, raise_on_error=False)
    [evaluation] = run.get_asset_check_evaluations()
    assert evaluation.check_name == "rows_accounted_for"
    return evaluation


@pytest.mark.parametrize(
    "shard",
    ["caption/wds-00002.tar", "caption/llava-00000.json", "interleaved/obelics-00000.parquet", "text/web-00000.jsonl"],
)
def test_accounting_check_passes_after_ingest(instance, defs, demo_manifest, shard):
    kind, name = shard.split("/")
    evaluation = ingest_one(instance, defs, SourceKind(kind), name)
    assert evaluation.passed, evaluation.description
    assert evaluation.metadata["rows_in"].value == demo_manifest[shard]["rows"]


def test_accounting_check_fails_when_ingest_loses_a_row(instance, defs, monkeypatch):
    """A buggy stage that drops one quarantined row must be caught by the check, not shipped."""
    from curation_assets.defs import ingest
    from curation_assets.normalize import normalize_shard

    def lossy_normalize(shard, on_progress=None):
        table = normalize_shard(shard, on_progress)
        table.quarantine = table.quarantine.slice(1)
        return table

    monkeypatch.setattr(ingest, "normalize_shard", lossy_normalize)
    evaluation = ingest_one(instance, defs, CAPTION, "wds-00000.tar")
    assert not evaluation.passed
    assert evaluation.metadata["unaccounted"].value == 1
    assert "32 rows in" in evaluation.description


def test_a_deleted_shard_file_removes_its_partition(instance, defs, demo_root):
    ingest_everything(instance, defs)
    (demo_root / "raw" / "text" / "web-00001.parquet").unlink()
    result, _ = tick(instance, defs, TEXT)
    apply_sensor_result(instance, result)
    assert instance.get_dynamic_partitions("text_shards") == ["web-00000.jsonl"]
    assert any(event.asset_key == shard_set_key(TEXT) for event in result.asset_events)
