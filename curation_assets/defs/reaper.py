"""Runs whose process died (kill -9, a crash of the machine) are marked failed and give back their pool
slots, so they cannot wedge the pipeline.

A killed run stays STARTED in the instance and keeps its `gpu` pool slot: every later run then waits
for that slot forever. Dagster's run monitoring cannot see it with the default (local process) run
launcher, which has no worker health check. Here a run is dead when the process that started it (the
pid on its RUN_START event) no longer exists, or is a newer process that reuses the pid. This only
applies to runs of this machine: the local run launcher's and the in-process runner's.
"""

from __future__ import annotations

from collections.abc import Callable

import psutil
from dagster import DagsterInstance, DagsterRunStatus, DefaultSensorStatus, RunsFilter, SkipReason, sensor

from curation_assets.defs.dagster_compat import DagsterEventType

LIVE = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
# A process created this long after the run started is not the run's process (its pid was reused).
PID_REUSE_SLACK_SECONDS = 1.0


def run_process(instance: DagsterInstance, run_id: str) -> int | None:
    """The pid of the process that started the run (None: it never logged a start)."""
    records = instance.all_logs(run_id, of_type=DagsterEventType.RUN_START)
    return records[0].dagster_event.pid if records and records[0].dagster_event else None


def process_alive(pid: int, started_at: float | None) -> bool:
    try:
        process = psutil.Process(pid)
        created = process.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False
    if process.status() == psutil.STATUS_ZOMBIE:
        return False
    return started_at is None or created <= started_at + PID_REUSE_SLACK_SECONDS


def reap_dead_runs(instance: DagsterInstance, log: Callable[[str], None] = print) -> list[str]:
    """Mark every live-looking run whose process is gone as failed, free its pool slots; returns the run ids."""
    reaped = []
    for record in instance.get_run_records(RunsFilter(statuses=LIVE)):
        run = record.dagster_run
        pid = run_process(instance, run.run_id)
        if pid is None or process_alive(pid, record.start_time):
            continue
        message = (
            f"run {run.run_id} ({run.job_name}) is {run.status.value} but its process {pid} is gone (killed?): "
            "marked failed and its pool slots freed, so later runs are not kept waiting"
        )
        instance.report_run_failed(run, message)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        log(message)
        reaped.append(run.run_id)
    return reaped


@sensor(
    name="reap_dead_runs",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Marks runs whose process died (kill -9, a crash) as failed and frees their pool slots.",
)
def reap_dead_runs_sensor(context):
    launcher = type(context.instance.run_launcher).__name__
    if launcher != "DefaultRunLauncher":
        # Runs of other launchers (Kubernetes) live elsewhere: Dagster's run monitoring watches those.
        return SkipReason(f"runs are launched by {launcher}, not on this machine: run monitoring handles them")
    reaped = reap_dead_runs(context.instance, context.log.warning)
    if not reaped:
        return SkipReason("every started run's process is alive")
    return SkipReason(f"reaped {len(reaped)} dead run(s): {', '.join(reaped)}")
