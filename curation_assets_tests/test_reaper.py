"""A run killed while it holds the gpu pool slot must not wedge every later run."""

import os
import signal
import subprocess
import sys
import textwrap
import time

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from curation_assets.defs.reaper import MAX_DEATHS, process_alive, reap_dead_runs

# A tiny code location: one asset in the gpu pool that sleeps, run in-process like `make demo` runs.
HOLDER = textwrap.dedent(
    """
    import sys, time
    from dagster import DagsterInstance, Definitions, asset

    @asset(pool="gpu")
    def holds_the_gpu():
        print("started", flush=True)
        time.sleep(600)

    defs = Definitions(assets=[holds_the_gpu])
    with DagsterInstance.get() as instance:
        defs.resolve_implicit_global_asset_job_def().execute_in_process(instance=instance)
    """
)


def kill_a_run_holding_the_gpu(env: dict) -> None:
    """Start HOLDER's run and kill -9 its process once the asset runs."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "started"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()


def test_a_killed_run_is_reaped_and_frees_its_pool_slot(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("concurrency:\n  pools:\n    default_limit: 1\ntelemetry:\n  enabled: false\n")
    kill_a_run_holding_the_gpu({**os.environ, "DAGSTER_HOME": str(home)})

    instance = DagsterInstance.from_config(str(home))
    [run] = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
    assert instance.event_log_storage.get_concurrency_info("gpu").active_run_ids == {run.run_id}  # holds the slot

    messages = []
    assert reap_dead_runs(instance, messages.append) == [run.run_id]
    # Canceled, not failed: automation re-runs the work of a killed process (it never retries failures).
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.CANCELED
    assert "process" in messages[0] and "pool slots freed" in messages[0] and "runs its work again" in messages[0]
    assert instance.event_log_storage.get_concurrency_info("gpu").active_run_ids == set()
    assert reap_dead_runs(instance, messages.append) == []  # nothing left to reap


def test_work_whose_process_keeps_dying_is_failed_after_max_deaths(tmp_path):
    """A shard that kills the interpreter every time must not be re-run forever."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    instance = DagsterInstance.from_config(str(home))
    statuses = []
    for _ in range(MAX_DEATHS):
        kill_a_run_holding_the_gpu(env)
        [run_id] = reap_dead_runs(instance, lambda _: None)
        statuses.append(instance.get_run_by_id(run_id).status)
    assert statuses == [DagsterRunStatus.CANCELED] * (MAX_DEATHS - 1) + [DagsterRunStatus.FAILURE]


def test_a_live_process_is_never_reaped_and_a_reused_pid_is():
    assert process_alive(os.getpid(), started_at=time.time())
    # A run that started before this (young) process existed was not started by it: its pid was reused.
    assert not process_alive(os.getpid(), started_at=time.time() - 3600)
