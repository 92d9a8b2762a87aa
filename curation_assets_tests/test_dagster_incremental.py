"""Only what is stale re-runs, correctly, at shard counts past Dagster's 100-partition limits, and with
changes that land while a table is running. Driven by the same automation sensor the daemon runs."""

import json
import shutil

import polars as pl
import pytest

from curation_assets import registry
from curation_assets.definitions import build_definitions
from curation_assets.defs import sample_index as samples_module
from curation_assets.defs.keys import asset_key
from curation_assets.defs.local_runner import AutomationState, execute_requests, run_automation, tick
from curation_assets.demo.many_shards import settle, shard_name, write_copying_shard, write_tiny_shards
from curation_assets.local_run import tick_shard_sensors
from curation_assets.table_store import TableStore
from curation_assets_tests.helpers import FAST_MODELS, key, read_table, smoke_recipe
from curation_assets_tests.staleness import StaleStatus, stale_status

SHARDS = 150
# Both tests share one settled copy: on one xdist worker, it is built once (make test runs --dist loadgroup).
pytestmark = pytest.mark.xdist_group("150_shards")
GLOBAL_TABLES = (
    "sample_index",
    "score_analysis",
    "selection_thresholds",
    "dedup",
    "filtered",
    "selected",
    "curated",
)
MIX_TABLES = (registry.TOKEN_COUNTS, registry.MIX_TABLE, registry.EXPORTS)


def plain_recipe():
    """The smoke recipe without percentile bounds, so every pair that is not a duplicate is kept."""
    recipe = smoke_recipe()
    filters = type(recipe).model_validate({"filters": [{"image_shape_filter": {"min_width": 32}}]}).filters
    # Image dedup only: the smoke captioner's random recaptions look alike to caption MinHash and would
    # chain unrelated pairs into one duplicate group.
    dedup = type(recipe.dedup).model_validate({"image_deduplicator": {}})
    return recipe.model_copy(update={"filters": filters, "dedup": dedup})


def quiet(_: str) -> None:
    return None


@pytest.fixture(scope="module")
def many_settled(tmp_path_factory):
    """150 settled tiny caption shards: (data root, Dagster home)."""
    from dagster import instance_for_test

    base = tmp_path_factory.mktemp("many")
    root, home = base / "data", base / "dagster_home"
    write_tiny_shards(root / "raw" / "caption", SHARDS)
    home.mkdir()
    with instance_for_test(temp_dir=str(home)) as instance:
        defs = build_definitions(str(root), plain_recipe(), **FAST_MODELS)
        assert settle(instance, defs) == SHARDS
    return root, home


@pytest.fixture
def many(many_settled, tmp_path):
    from dagster import instance_for_test

    root, home = tmp_path / "data", tmp_path / "dagster_home"
    shutil.copytree(many_settled[0], root)
    shutil.copytree(many_settled[1], home)
    with instance_for_test(temp_dir=str(home)) as instance:
        yield root, instance, build_definitions(str(root), plain_recipe(), **FAST_MODELS)


def test_at_150_shards_a_new_shard_reaches_every_global_output_and_nothing_else_reruns(many):
    root, instance, defs = many
    assert run_automation(instance, defs, log=quiet) == []
    for table in GLOBAL_TABLES:
        assert stale_status(instance, defs, key(table)) == StaleStatus.FRESH, table

    # Shard 150: its first image is a byte copy of shard 0's first image, its second image is new.
    write_copying_shard(root / "raw" / "caption", SHARDS, copies_of=0)
    tick_shard_sensors(instance, defs, log=quiet)
    # Dagster's stale check sees the new shard through the shard set, not through 151 partitions.
    assert stale_status(instance, defs, key("sample_index")) == StaleStatus.STALE

    runs = run_automation(instance, defs, log=quiet)
    new = shard_name(SHARDS)
    assert [run.partitions for run in runs] == [[new], []]  # the new shard's ingest and tables, then the global run
    assert set(runs[1].assets) >= {f"caption/{table}" for table in GLOBAL_TABLES} | {
        spec.qualified_name for spec in MIX_TABLES
    }
    for table in GLOBAL_TABLES:
        assert stale_status(instance, defs, key(table)) == StaleStatus.FRESH, table
    for spec in MIX_TABLES:
        assert stale_status(instance, defs, asset_key(spec)) == StaleStatus.FRESH, spec.name

    samples = read_table(root, "sample_index")
    assert samples["shard_id"].n_unique() == SHARDS + 1
    fresh, copy = samples.filter(pl.col("shard_id") == new).sort("sample_id")["sample_id"], None
    decisions = read_table(root, "filtered")
    original = samples.filter(pl.col("shard_id") == shard_name(0)).sort("sample_id")["image_sha256"]
    copies = samples.filter(pl.col("image_sha256").is_in(original.implode()))
    groups = read_table(root, "dedup").filter(pl.col("sample_id").is_in(copies["sample_id"].implode()))
    copy = copies.filter(pl.col("shard_id") == new)["sample_id"].item()
    assert groups["group_id"].n_unique() == 1 and copy in groups["sample_id"].to_list()
    kept_copies = decisions.filter(pl.col("sample_id").is_in(groups["sample_id"].implode()) & pl.col("kept"))
    assert kept_copies.height == 1  # the duplicate is dropped wherever it lives
    pool = read_table(root, "curated")
    assert set(fresh.to_list()) - {copy} <= set(pool["sample_id"].to_list())  # the new pair reached the pool
    # ... and the mix (only captions here, so all of the pool) and the LLaVA export.
    mixed = TableStore(root).read(registry.MIX_TABLE)
    assert set(mixed["sample_id"]) == set(pool["sample_id"])
    llava = json.loads((TableStore(root).folder(registry.EXPORTS) / "llava_stage1.json").read_text())
    assert {record["id"].rsplit("-r", 1)[0] for record in llava} == set(pool["sample_id"])

    assert run_automation(instance, defs, log=quiet) == []


def test_a_change_that_lands_while_the_index_runs_is_not_lost(many, monkeypatch):
    """A shard's table is rewritten while the sample index is being built: the index finishes behind
    its inputs, and the next tick runs it again (an edge-triggered condition forgets the change)."""
    root, instance, defs = many
    target = shard_name(7)
    real = samples_module.caption_samples
    landed = []

    def gather_and_meanwhile_rescore(shard, *args, **kwargs):
        if not landed:
            landed.append(shard)
            job = defs.resolve_implicit_global_asset_job_def()
            job.execute_in_process(instance=instance, asset_selection=[key("nsfw")], partition_key=target)
        return real(shard, *args, **kwargs)

    # Something for the index to gather: a new shard, scored.
    write_tiny_shards(root / "raw" / "caption", 1, start=SHARDS + 1)
    tick_shard_sensors(instance, defs, log=quiet)
    state = AutomationState()
    requests = tick(instance, defs, state)
    execute_requests(instance, defs, [r for r in requests if r.partition_key], log=quiet)
    # The global run may come in the same tick (it waits for the shard's run) or the next one.
    global_requests = [r for r in requests if not r.partition_key] or tick(instance, defs, state)
    assert "caption/sample_index" in requested(global_requests)
    monkeypatch.setattr(samples_module, "caption_samples", gather_and_meanwhile_rescore)
    execute_requests(instance, defs, global_requests, log=quiet)
    monkeypatch.setattr(samples_module, "caption_samples", real)
    assert landed

    # nsfw of shard 7 was rewritten after the index started: the index is due again, and only it and
    # what reads it (nsfw's content did not change, so the index's version and all after it hold).
    assert "caption/sample_index" in requested(tick(instance, defs, AutomationState()))
    run_automation(instance, defs, log=quiet, state=state)
    assert tick(instance, defs, state) == []
    for table in GLOBAL_TABLES:
        assert stale_status(instance, defs, key(table)) == StaleStatus.FRESH, table


def requested(requests) -> set[str]:
    return {k.to_user_string() for request in requests for k in (request.asset_selection or [])}
