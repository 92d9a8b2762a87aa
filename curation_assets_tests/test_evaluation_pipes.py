"""The Pipes path end to end: the shipped proxy script run by PipesSubprocessClient from an asset,
its metrics and check recorded; a failing or hanging command fails the asset with its last output
lines and records nothing. The asset here is what the eval_results asset does, made tiny."""

import sys
import textwrap

import numpy as np
import pytest
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Failure,
    PipesSubprocessClient,
    asset,
    materialize,
)

from curation_assets.evaluation.external import failure_message, launcher_command
from curation_assets.evaluation.pipes_proxy import SENSITIVITY_CHECK
from curation_assets.evaluation.pools import concat
from curation_assets.evaluation.settings import Evaluation
from curation_assets.evaluation.synthetic import synthetic_pairs

SETTINGS = {"proxy": {"steps": 100, "batch_size": 64, "seeds": [0, 1, 2], "embed_dim": 32, "learning_rate": 3e-3}}


def eval_results_asset(command, log_path, extras=None, timeout_s=120, tail_lines=5):
    @asset(name="eval_results", check_specs=[AssetCheckSpec(SENSITIVITY_CHECK, asset="eval_results")])
    def eval_results(context: AssetExecutionContext, pipes: PipesSubprocessClient):
        wrapped = launcher_command(command, log_path, timeout_s)
        try:
            invocation = pipes.run(context=context, command=wrapped, extras=extras or {})
        except Exception as error:  # Dagster's DagsterPipesExecutionError is not public API
            raise Failure(description=failure_message(command, log_path, tail_lines)) from error
        return invocation.get_results()

    return eval_results


def _materialize(instance, asset_def):
    return materialize(
        [asset_def], instance=instance, resources={"pipes": PipesSubprocessClient()}, raise_on_error=False
    )


def _materializations(instance):
    return instance.fetch_materializations(AssetKey("eval_results"), limit=10).records


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundles")
    good = synthetic_pairs("good", 150, seed=1, noise=4.0)
    bad = synthetic_pairs("bad", 150, seed=2, noise=4.0)
    bad = type(bad)(
        "bad",
        bad.sample_ids,
        bad.captions,
        bad.image_sha256,
        bad.image_phash,
        bad.images,
        np.roll(bad.texts, 7, axis=0),
    )
    paths = {}
    for name, pairs in {
        "curated": good,
        "unfiltered": concat("unfiltered", [good, bad]),
        "eval": synthetic_pairs("eval", 60, captions_per_image=2, seed=3, noise=4.0),
    }.items():
        paths[name] = str(folder / f"{name}.parquet")
        pairs.to_frame().write_parquet(paths[name])
    return paths


def test_the_shipped_proxy_script_reports_metrics_and_the_check_through_pipes(instance, bundles, tmp_path):
    extras = {
        "pools": {"curated": [bundles["curated"]]},
        "unfiltered": [bundles["unfiltered"]],
        "eval_sets": {"synthetic": [bundles["eval"]]},
        "evaluation": Evaluation.model_validate(SETTINGS).model_dump(mode="json"),
        "fingerprint": "f00dfeed",
        "report_path": str(tmp_path / "report.json"),
    }
    command = [sys.executable, "-m", "curation_assets.evaluation.pipes_proxy"]
    result = _materialize(instance, eval_results_asset(command, tmp_path / "proxy.log", extras))
    assert result.success
    (record,) = _materializations(instance)
    metadata = record.asset_materialization.metadata
    assert metadata["recipe_fingerprint"].value == "f00dfeed"
    curated = metadata["synthetic/curated/mean_r@5"].value
    assert isinstance(curated, float) and curated > metadata["synthetic/random/mean_r@5"].value
    assert metadata["synthetic/all/mean_r@5_std"].value >= 0
    assert metadata["pairs_trained/random"].value == metadata["pairs_trained/curated"].value == 150
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == SENSITIVITY_CHECK and check.passed
    assert check.metadata["margin"].value > check.metadata["spread"].value
    assert (tmp_path / "report.json").exists()


def test_a_failing_command_fails_the_asset_with_its_last_lines_and_records_nothing(instance, tmp_path):
    script = tmp_path / "trainer.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from dagster_pipes import open_dagster_pipes
            with open_dagster_pipes() as pipes:
                for step in range(20):
                    print(f"step {step} loss {1.0 / (step + 1):.3f}", flush=True)
                # Metrics reported before the crash must not become a result.
                pipes.report_asset_materialization(metadata={"textvqa": 0.41})
                print("RuntimeError: CUDA out of memory", flush=True)
                sys.exit(3)
            """
        )
    )
    result = _materialize(instance, eval_results_asset([sys.executable, str(script)], tmp_path / "run.log"))
    assert not result.success
    (failure,) = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    message = str(failure.event_specific_data.error)
    assert "failed with exit code 3" in message
    assert "CUDA out of memory" in message and "step 19" in message
    assert "step 10" not in message  # only the last lines
    assert _materializations(instance) == []


def test_a_hanging_command_is_killed_and_fails_the_asset(instance, tmp_path):
    script = tmp_path / "hangs.py"
    script.write_text("import time\nprint('loading model', flush=True)\ntime.sleep(120)\n")
    asset_def = eval_results_asset([sys.executable, str(script)], tmp_path / "run.log", timeout_s=3)
    result = _materialize(instance, asset_def)
    assert not result.success
    (failure,) = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    message = str(failure.event_specific_data.error)
    assert "timed out and was killed" in message and "loading model" in message
    assert _materializations(instance) == []
