"""Scoring on the real Dagster graph: multi-shard runs, model loads, provenance, staleness by recipe section."""

import polars as pl
import pytest
import torch

from curation_assets import registry
from curation_assets.definitions import build_definitions
from curation_assets.defs import models as model_resources
from curation_assets.defs.local_runner import RANGE_END_TAG, RANGE_START_TAG, run_automation
from curation_assets.local_run import tick_shard_sensors
from curation_assets.models.device import inference_dtype, precision_name
from curation_assets.sources import SourceKind
from curation_assets_tests.helpers import (
    SETTLED_SHARDS,
    caption_score_tables_in_use,
    ingest_registered,
    key,
    read_table,
    smoke_recipe,
)
from curation_assets_tests.staleness import StaleStatus, stale_status

CAPTION = SourceKind.caption
KEEP = ("wds-00000.tar", "dj-00000.jsonl", "llava-00000.json")
# The caption score tables the smoke recipe computes (those something reads).
PER_SHARD_TABLES = caption_score_tables_in_use()
FAST = {"num_workers": 0, "batch_size": 16}


@pytest.fixture
def caption_root(demo_root):
    """The demo corpus cut to three caption shards of different formats, to keep model runs short."""
    for path in (demo_root / "raw" / "caption").iterdir():
        if path.is_file() and path.name not in KEEP:
            path.unlink()
    for kind in ("interleaved", "text"):
        for path in (demo_root / "raw" / kind).iterdir():
            if path.is_file():
                path.unlink()
    return demo_root


@pytest.fixture
def smoke():
    return smoke_recipe()  # without its eval section: test_dagster_eval follows a new shard to the eval


def score_all_in_one_run(instance, defs):
    shards = sorted(instance.get_dynamic_partitions("caption_shards"))
    job = defs.resolve_job_def("score_caption_shards")
    result = job.execute_in_process(instance=instance, tags={RANGE_START_TAG: shards[0], RANGE_END_TAG: shards[-1]})
    assert result.success
    return result


def load_counts():
    return tuple(model_resources.LOADS[name] for name in ("clip", "itm", "watermark"))


def test_ingest_loads_no_model_and_one_scoring_run_loads_each_model_once(instance, caption_root, smoke):
    defs = build_definitions(str(caption_root), smoke, **FAST)
    model_resources._LOADED_IN_THIS_PROCESS.clear()
    before = load_counts()
    tick_shard_sensors(instance, defs, log=lambda _: None)
    ingest_registered(instance, defs)
    assert load_counts() == before  # ingest never touches a model

    result = score_all_in_one_run(instance, defs)
    assert load_counts() == tuple(count + 1 for count in before)  # 3 shards, one load per model

    # One result per shard and table, even from one run over three shards.
    checks = result.get_asset_check_evaluations()
    assert sorted((c.asset_key.path[-1], c.partition) for c in checks) == sorted(
        (table, shard) for table in PER_SHARD_TABLES for shard in KEEP
    )
    assert all(check.passed for check in checks), [c.description for c in checks if not c.passed]

    for shard in KEEP:
        valid_ids = read_table(caption_root, "normalized", shard)["sample_id"]
        for table in PER_SHARD_TABLES:
            frame = read_table(caption_root, table, shard)
            assert frame["sample_id"].to_list() == valid_ids.to_list(), (table, shard)
            assert frame["produced_by"].n_unique() == 1
    embeddings = read_table(caption_root, "clip_embeddings", "wds-00000.tar")
    assert embeddings["produced_by"][0] == "open_clip:smoke-ViT-tiny@random-init-seed0"
    assert not embeddings["scores_meaningful"].any()  # smoke scores say they mean nothing
    assert (embeddings["model_profile"] == "smoke").all()
    nsfw = read_table(caption_root, "nsfw", "wds-00000.tar")
    assert nsfw["scores_meaningful"].all()  # the shipped NSFW model is real in every profile

    # The five image tables come from one step: one read and one decode of each image feed every model.
    image_keys = {key(spec.name) for spec in registry.CAPTION_IMAGE_PASS}
    pass_events = [e for e in result.get_asset_materialization_events() if e.asset_key in image_keys]
    assert {event.step_key for event in pass_events} == {"caption_image_pass"}
    assert len(pass_events) == len(image_keys) * len(KEEP)
    for event in pass_events:
        metadata = event.materialization.metadata
        assert metadata["image_pass"].value == ", ".join(spec.name for spec in registry.CAPTION_IMAGE_PASS)
        assert metadata["decodes_per_image"].value == 1.0, event.partition
        if event.asset_key != key(registry.IMAGE_PHASH.name):  # the precision each model ran at
            assert metadata["precision"].value == (
                "fp32"
                if event.asset_key == key(registry.NSFW.name)
                else precision_name(inference_dtype(torch.device("cpu")))
            )

    events = {event.asset_key: event for event in result.get_asset_materialization_events()}
    metadata = events[key("itm")].materialization.metadata
    assert "carry no meaning" in metadata["warning"].value
    assert metadata["shards_in_run"].value == len(KEEP)


def test_score_analysis_shows_quantiles_and_histograms(settled):
    caption_root, instance = settled

    record = instance.get_latest_materialization_event(key("score_analysis"))
    metadata = record.asset_materialization.metadata
    assert "| clip_similarity" in metadata["quantiles"].value
    # One entry per score, each with its histogram inline (an SVG short enough to show without a click).
    for columns in registry.analysed_columns(registry.CAPTION).values():
        for column in columns:
            assert "data:image/svg+xml," in metadata[column].value, column
    summary = read_table(caption_root, "score_analysis")
    valid_rows = sum(read_table(caption_root, "normalized", s).height for s in SETTLED_SHARDS)
    assert summary.filter(pl.col("score") == "clip_similarity")["count"].item() == valid_rows


def statuses(instance, defs, shard):
    return {table: stale_status(instance, defs, key(table), shard) for table in PER_SHARD_TABLES}


@pytest.mark.parametrize(
    ("edit", "expected_stale"),
    [
        # A new aesthetics head: only the aesthetics table.
        (
            lambda models: models.model_copy(
                update={"aesthetics": models.aesthetics.model_copy(update={"head": "mlp"})}
            ),
            {"aesthetics"},
        ),
        # Another CLIP model: the embeddings and everything computed from them, nothing else.
        (
            lambda models: models.model_copy(
                update={"clip": models.clip.model_copy(update={"checkpoint": "/elsewhere.pt"})}
            ),
            {"clip_embeddings", "clip_similarity", "aesthetics"},
        ),
    ],
    ids=["aesthetics-model", "clip-model"],
)
def test_changing_one_model_restales_only_what_reads_it(settled, smoke, edit, expected_stale):
    caption_root, instance = settled
    defs = build_definitions(str(caption_root), smoke, **FAST)
    assert set(statuses(instance, defs, "wds-00000.tar").values()) == {StaleStatus.FRESH}

    edited = build_definitions(str(caption_root), smoke.model_copy(update={"models": edit(smoke.models)}), **FAST)
    for shard in SETTLED_SHARDS:
        stale = {table for table, status in statuses(instance, edited, shard).items() if status == StaleStatus.STALE}
        assert stale == expected_stale, shard


def test_a_changed_model_reruns_its_table_alone_in_the_image_pass(settled, smoke):
    caption_root, instance = settled
    models = smoke.models
    watermark = models.watermark.model_copy(update={"image_size": models.watermark.image_size + 32})
    edited = smoke.model_copy(update={"models": models.model_copy(update={"watermark": watermark})})
    before = {spec.name: read_table(caption_root, spec.name, "wds-00000.tar") for spec in registry.CAPTION_IMAGE_PASS}
    runs = run_automation(instance, build_definitions(str(caption_root), edited, **FAST), log=lambda _: None)
    assert all(run.success for run in runs)
    image_tables = {f"caption/{spec.name}" for spec in registry.CAPTION_IMAGE_PASS}
    assert {asset for run in runs for asset in run.assets} & image_tables == {"caption/watermark"}
    record = instance.get_latest_materialization_event(key("watermark"))
    assert record.asset_materialization.metadata["image_pass"].value == "watermark"  # the step computed it alone
    for name, frame in before.items():
        after = read_table(caption_root, name, "wds-00000.tar")
        assert after.equals(frame) != (name == "watermark"), name


def test_automation_scores_a_new_shard_alone_and_ignores_an_unchanged_reingest(instance, caption_root, smoke):
    """What the automation sensor requests, tick by tick: the same sensor the daemon evaluates."""
    import shutil

    from curation_assets.defs.local_runner import AutomationState, execute_requests, run_automation, tick

    defs = build_definitions(str(caption_root), smoke, **FAST)
    tick_shard_sensors(instance, defs, log=lambda _: None)
    run_automation(instance, defs, log=lambda _: None)
    state = AutomationState()
    assert tick(instance, defs, state) == []

    # Re-ingest an unchanged shard: a new materialization, the same data version, nothing to redo.
    defs.resolve_job_def("ingest_caption_shards").execute_in_process(instance=instance, partition_key="wds-00000.tar")
    assert tick(instance, defs, state) == []

    # A new shard: one run ingests and scores it alone; one more run refreshes the global assets over
    # every shard (it joins the same tick, after the shard's run).
    raw = caption_root / "raw" / "caption"
    shutil.copy(raw / "wds-00000.tar", raw / "wds-00009.tar")
    tick_shard_sensors(instance, defs, log=lambda _: None)
    requests = tick(instance, defs, state)
    [per_shard] = [request for request in requests if request.partition_key]
    assert per_shard.partition_key == "wds-00009.tar"
    selected = {k.to_user_string() for k in per_shard.asset_selection}
    assert selected >= {"caption/normalized", *(f"caption/{t}" for t in PER_SHARD_TABLES)}
    runs = execute_requests(instance, defs, requests, log=lambda _: None)
    runs += run_automation(instance, defs, log=lambda _: None, state=state)
    assert [run.partitions for run in runs] == [["wds-00009.tar"], []]
    assert {"caption/sample_index", "caption/dedup", "caption/filtered", "caption/curated"} <= set(runs[1].assets)
    assert tick(instance, defs, state) == []
    # Runs made here carry the code location, as the daemon's do: the UI's timeline shows only those.
    for run in runs:
        origin = instance.get_run_by_id(run.run_id).remote_job_origin
        assert origin is not None and origin.repository_origin.get_label() == "__repository__@curation_assets"


def test_the_automation_sensor_runs_by_default():
    """Dagster's own default automation sensor starts stopped; without ours nothing would score new shards."""
    from dagster import DefaultSensorStatus

    defs = build_definitions("unused-root", smoke_recipe())
    sensor = defs.resolve_sensor_def("curation_automation")
    assert sensor.default_status == DefaultSensorStatus.RUNNING


def test_ticks_while_a_new_shard_runs_never_request_its_tables_again(instance, caption_root, smoke, monkeypatch):
    """The daemon ticks every 30 s while a shard's run goes on; a tick after one of its tables is done
    (and before the run ends) must not request that table again (seen under `make drill`: a second run
    of caption/aesthetics for the new shard)."""
    import shutil

    from curation_assets import shard_work
    from curation_assets.defs.local_runner import AutomationState, execute_requests, run_automation, tick

    defs = build_definitions(str(caption_root), smoke, **FAST)
    tick_shard_sensors(instance, defs, log=lambda _: None)
    run_automation(instance, defs, log=lambda _: None)
    state = AutomationState()
    raw = caption_root / "raw" / "caption"
    shutil.copy(raw / "wds-00000.tar", raw / "wds-00009.tar")
    tick_shard_sensors(instance, defs, log=lambda _: None)
    [per_shard] = [request for request in tick(instance, defs, state) if request.partition_key]

    mid_run: list[str] = []
    for spec, compute in list(shard_work.COMPUTES.items()):

        def ticking(work, compute=compute):
            # A tick between two steps of the run: every earlier step's table is materialized by now.
            for request in tick(instance, defs, state):
                if request.partition_key == "wds-00009.tar":
                    mid_run.extend(k.to_user_string() for k in request.asset_selection)
            return compute(work)

        monkeypatch.setitem(shard_work.COMPUTES, spec, ticking)
    ticking_defs = build_definitions(str(caption_root), smoke, **FAST)  # assets bind their computation when built
    [run] = execute_requests(instance, ticking_defs, [per_shard], log=lambda _: None)
    assert run.success
    assert mid_run == []


def test_a_partition_the_status_cache_misreads_as_missing_is_not_requested_again(settled, smoke, monkeypatch):
    """Dagster's partition status cache can read a partition materialized during a tick as neither
    materialized nor in progress (automation.MaterializedNow says how); under the daemon that re-ran a
    new shard's tables. Here the cache misreads every partition of one table as missing: the live
    check must keep a settled pipeline from running anything."""
    from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView

    from curation_assets.defs.local_runner import AutomationState, tick

    caption_root, instance = settled
    defs = build_definitions(str(caption_root), smoke, **FAST)
    assert tick(instance, defs, AutomationState()) == []

    misread = key("text_stats")
    cached = AssetGraphView._compute_missing_asset_subset

    async def misread_as_missing(self, asset, from_subset):
        return from_subset if asset == misread else await cached(self, asset, from_subset)

    monkeypatch.setattr(AssetGraphView, "_compute_missing_asset_subset", misread_as_missing)
    assert tick(instance, defs, AutomationState()) == []
