"""Eval results on the real Dagster graph: the proxy eval of the mix (through Pipes, with the shipped
script) reads curated vs random vs all on the demo's eval set; its check, history and summary; only a
recipe change that changes the mix re-runs it; an external command's metrics are recorded, and a
failed one records nothing."""

import json
import shutil

import polars as pl
import pytest
from dagster import AssetKey, instance_for_test

from curation_assets import registry
from curation_assets.definitions import build_definitions
from curation_assets.defs.keys import asset_key
from curation_assets.defs.local_runner import AutomationState, run_automation, tick
from curation_assets.evaluation.settings import External
from curation_assets.exports.layout import LLAVA_FILE
from curation_assets.local_run import summarize_eval, tick_shard_sensors
from curation_assets.sources import SourceKind
from curation_assets.table_store import TableStore
from curation_assets_tests.helpers import FAST_MODELS, private_copy, smoke_recipe

EVAL_ASSETS = {"caption/proxy_features", "eval/eval_results", "eval/eval_history"}


def ran(runs) -> set[str]:
    return {asset for run in runs for asset in run.assets}


def automate(root, instance, recipe):
    return run_automation(instance, build_definitions(str(root), recipe, **FAST_MODELS), log=lambda _: None)


def edited(recipe, section: str, **changes):
    return recipe.model_copy(update={section: getattr(recipe, section).model_copy(update=changes)})


@pytest.fixture(scope="module")
def eval_template(branches_template, tmp_path_factory):
    """The settled pipeline over every kind, then the smoke recipe with its eval section."""
    base = tmp_path_factory.mktemp("eval")
    root, home = base / "data", base / "home"
    shutil.copytree(branches_template[0], root, symlinks=True)
    shutil.copytree(branches_template[1], home)
    with instance_for_test(temp_dir=str(home)) as instance:
        runs = automate(root, instance, smoke_recipe(evaluation=True))
    assert all(run.success for run in runs), runs
    return root, home, runs


@pytest.fixture
def evaluated(eval_template, tmp_path):
    with private_copy(eval_template[:2], tmp_path) as copy:
        yield copy


def test_adding_eval_sets_runs_only_the_eval(eval_template):
    *_, runs = eval_template
    # The data was settled: features, the eval and its history, nothing else.
    assert ran(runs) == EVAL_ASSETS


def test_the_demo_reads_curated_vs_random_vs_all_with_the_spread(eval_template):
    root, _, _ = eval_template
    store = TableStore(root)
    report = store.read_json(registry.EVAL_RESULTS)
    results = report["results"]["demo"]
    assert {"curated", "random", "all", "curated_shuffled"} <= set(results)
    mixed = store.read(registry.MIX_TABLE).filter(pl.col("kind") == "caption")["sample_id"].n_unique()
    assert report["pools"]["curated"]["pairs_trained"] == mixed  # the mix's caption pairs, each once
    assert report["pools"]["random"]["pairs_trained"] == mixed  # a baseline of equal size
    indexed = store.read(registry.SAMPLES).height
    assert report["pools"]["all"]["pairs_trained"] == indexed  # the whole unfiltered pool
    for pool in ("curated", "random", "all"):
        metric = results[pool]["mean_r@5"]
        assert len(metric["per_seed"]) == len(smoke_recipe(evaluation=True).evaluation.proxy.seeds)
        assert metric["std"] > 0.0  # a spread over seeds, not one number
    # A handful of pairs here (one caption shard): whether the proxy learns is tested on real COCO
    # photos (test_evaluation_real.py) and shown by `make demo`; here, that it is scored and reported.
    assert report["eval_sets"]["demo"]["chance"]["t2i_r@5"] == pytest.approx(5 / 24, abs=1e-6)
    assert "passed" in report["sensitivity"] and report["sensitivity"]["metric"] == "mean_r@5"
    assert report["eval_sets"]["demo"]["images"] == 24 and report["eval_sets"]["demo"]["pairs"] == 48
    assert report["eval_set_files"]["demo"]["path"] == "data:evals/demo_eval.tar"
    # None of the demo's eval pictures is in a training shard.
    assert report["pools"]["unfiltered"]["contamination"]["removed"] == 0
    assert report["pools"]["curated"]["contamination"]["removed"] == 0
    summary = "\n".join(summarize_eval(store))
    assert "curated" in summary and "random" in summary and "all" in summary and "chance" in summary


def test_features_are_stored_per_shard_with_their_encoders(eval_template):
    root, _, _ = eval_template
    store = TableStore(root)
    index = store.read(registry.SAMPLES, columns=["sample_id", "shard_id"])
    for (shard_id,), rows in index.group_by("shard_id"):
        features = store.read(registry.PROXY_FEATURES, shard_id)
        assert set(rows["sample_id"]) <= set(features["sample_id"])
        assert features.schema["image_feature"].size == 1280  # EfficientNet-Lite0's pooled features
        assert features.schema["text_feature"].size == 384  # MiniLM's sentence embedding
        assert features["produced_by"][0].startswith("efficientnet-lite0")
        assert features["scores_meaningful"].all()


def test_the_metrics_the_check_and_the_history_are_recorded(evaluated):
    root, instance = evaluated
    record = instance.fetch_materializations(asset_key(registry.EVAL_RESULTS), limit=1).records[0]
    metadata = record.asset_materialization.metadata
    assert isinstance(metadata["demo/curated/mean_r@5"].value, float)  # numeric: the UI plots it
    assert metadata["recipe_fingerprint"].value
    check_keys = [
        check
        for check in build_definitions(str(root), smoke_recipe(evaluation=True)).resolve_asset_graph().asset_check_keys
        if check.name == "proxy_sensitivity"
    ]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
    passed = TableStore(root).read_json(registry.EVAL_RESULTS)["sensitivity"]["passed"]
    # The script reported the check; its verdict is the report's (a warning here: 4 curated pairs).
    assert [record.status.value for record in latest.values()] == ["SUCCEEDED" if passed else "FAILED"]
    history = TableStore(root).read(registry.EVAL_HISTORY)
    assert set(history["pool"]) >= {"curated", "random", "all"}
    assert history["fingerprint"].n_unique() == 1


def test_only_a_recipe_change_that_changes_the_mix_reruns_the_eval(evaluated):
    root, instance = evaluated
    recipe = smoke_recipe(evaluation=True)
    # A new tolerance: the mix step re-runs (its code version moved) and draws the same rows.
    same_mix = edited(recipe, "mix", tolerance=recipe.mix.tolerance / 2)
    runs = automate(root, instance, same_mix)
    assert "mix/mix" in ran(runs)
    assert not ran(runs) & {"eval/eval_results", "caption/proxy_features"}
    # A new seed draws another mix: the eval follows, and the history holds both recipe versions.
    runs = automate(root, instance, edited(same_mix, "mix", seed=same_mix.mix.seed + 1))
    assert {"mix/mix", "eval/eval_results", "eval/eval_history"} <= ran(runs)
    assert "caption/proxy_features" not in ran(runs)  # features are per sample, kept
    history = TableStore(root).read(registry.EVAL_HISTORY)
    assert history["fingerprint"].n_unique() == 2


def test_a_new_shard_reaches_the_eval_once_after_the_mix(evaluated):
    root, instance = evaluated
    raw = root / "raw" / "caption"
    shutil.copy(next(iter(sorted(raw.glob("*.tar")))), raw / "wds-00042.tar")
    defs = build_definitions(str(root), smoke_recipe(evaluation=True), **FAST_MODELS)
    tick_shard_sensors(instance, defs, log=lambda _: None)
    runs = run_automation(instance, defs, log=lambda _: None)
    assert all(run.success for run in runs), runs
    # The shard's run computes its features; the eval waits for the mix to finish, then runs once,
    # its history in the same run.
    [shard_run] = [run for run in runs if run.partitions == ["wds-00042.tar"]]
    assert "caption/proxy_features" in shard_run.assets
    [eval_run] = [run for run in runs if "eval/eval_results" in run.assets]
    assert set(eval_run.assets) == {"eval/eval_results", "eval/eval_history"}
    assert runs.index(eval_run) == len(runs) - 1 and "mix/mix" in ran(runs[: runs.index(eval_run)])
    assert run_automation(instance, defs, log=lambda _: None) == []


def test_a_shards_features_alone_do_not_start_the_eval(evaluated):
    """Under the daemon a shard's run writes its eval features long before the global run moves the
    mix; a tick in between must not start the eval on the old mix."""
    root, instance = evaluated
    raw = root / "raw" / "caption"
    shutil.copy(next(iter(sorted(raw.glob("*.tar")))), raw / "wds-00043.tar")
    defs = build_definitions(str(root), smoke_recipe(evaluation=True), **FAST_MODELS)
    tick_shard_sensors(instance, defs, log=lambda _: None)
    early = [registry.NORMALIZED[SourceKind.caption], registry.QUARANTINE[SourceKind.caption], registry.PROXY_FEATURES]
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, partition_key="wds-00043.tar", asset_selection=[asset_key(spec) for spec in early]
    )
    assert result.success
    requested = {
        key.to_user_string() for request in tick(instance, defs, AutomationState()) for key in request.asset_selection
    }
    assert "caption/clip_embeddings" in requested  # the shard's scoring is still to do
    assert "eval/eval_results" not in requested


def external_recipe(fail_after=None):
    recipe = smoke_recipe(evaluation=True)
    command = "{python} -m curation_assets_tests.external_trainer --llava {llava_json} --images {image_folder} "
    command += "--out {output_dir} --check trained_on_the_export" + (
        f" --fail-after {fail_after}" if fail_after else ""
    )
    external = External(command=command, tail_lines=3, checks=["trained_on_the_export"])
    return recipe.model_copy(update={"evaluation": recipe.evaluation.model_copy(update={"external": external})})


def test_an_external_command_reports_metrics_through_pipes(evaluated):
    root, instance = evaluated
    runs = automate(root, instance, external_recipe())
    assert {"eval/external_results", "eval/eval_history"} <= ran(runs)
    assert "eval/eval_results" not in ran(runs)  # the external command is not the proxy's business
    store = TableStore(root)
    recorded = store.read_json(registry.EXTERNAL_RESULTS)
    llava = json.loads((store.folder(registry.EXPORTS) / LLAVA_FILE).read_text())
    assert recorded["metrics"]["textvqa/external/accuracy"] == pytest.approx(round(len(llava) / (len(llava) + 10), 4))
    history = store.read(registry.EVAL_HISTORY)
    assert history.filter(pl.col("pool") == "external")["eval_set"].to_list() == ["textvqa"]
    # The check the command reported through dagster-pipes is recorded on the asset.
    [check_key] = [
        check
        for check in build_definitions(str(root), external_recipe()).resolve_asset_graph().asset_check_keys
        if check.name == "trained_on_the_export"
    ]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key([check_key])
    assert latest[check_key].status.value == ("SUCCEEDED" if len(llava) >= 2 else "FAILED")


def test_a_failed_external_command_fails_with_its_last_lines_and_records_nothing(evaluated):
    root, instance = evaluated
    defs = build_definitions(str(root), external_recipe(fail_after=3), **FAST_MODELS)
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[asset_key(registry.EXTERNAL_RESULTS)], raise_on_error=False
    )
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    message = str(failure.step_failure_data.error)
    assert "failed with exit code 3" in message and "no result was recorded" in message
    assert "CUDA out of memory (simulated)" in message and "step 3:" in message
    assert "step 1:" not in message  # only the last tail_lines lines
    assert not TableStore(root).exists(registry.EXTERNAL_RESULTS)
    assert not instance.fetch_materializations(AssetKey(["eval", "external_results"]), limit=1).records
