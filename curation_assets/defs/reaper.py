"""Runs whose process died (kill -9, a crash of the machine) are reclaimed: they give back their pool
slots, so they cannot wedge the pipeline, and their work is done again by the next automation tick.

A killed run stays STARTED in the instance and keeps its `gpu` pool slot: every later run then waits
for that slot forever. Dagster's run monitoring cannot see it with the default (local process) run
launcher, which has no worker health check. Here a run is dead when the process that started it (the
pid on its RUN_START event) no longer exists, or is a newer process that reuses the pid. This only
applies to runs of this machine: the local run launcher's and the in-process runner's.

A reclaimed run is marked CANCELED, not FAILURE: automation never retries a failed partition (one bad
shard must stay one failure, not a retry loop), but a killed process says nothing about the data, so
its partitions must be re-run. Work whose process died MAX_DEATHS times (a shard that crashes the
interpreter, say) is marked FAILURE instead, and then waits for new data like any failure.
"""

from __future__ import annotations

from collections.abc import Callable

import psutil
from dagster import DagsterInstance, DagsterRunStatus, DefaultSensorStatus, RunsFilter, SkipReason, sensor

from curation_assets.defs.dagster_compat import DagsterEventType

LIVE = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
# A process created this long after the run started is not the run's process (its pid was reused).
PID_REUSE_SLACK_SECONDS = 1.0
REAPED_TAG = "curation/reaped"
MAX_DEATHS = 3


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


def _work(run) -> str:
    """What a run was doing: its assets and partition (a re-run of the same work has the same)."""
    assets = sorted(key.to_user_string() for key in (run.asset_selection or []))
    partition = run.tags.get("dagster/partition", "") or run.tags.get("dagster/asset_partition_range_start", "")
    return f"{run.job_name}|{','.join(assets)}|{partition}"


def _deaths(instance: DagsterInstance, work: str) -> int:
    """How many earlier runs of the same work were reclaimed after their process died."""
    return sum(1 for earlier in instance.get_runs(RunsFilter(tags={REAPED_TAG: "true"})) if _work(earlier) == work)


def reap_dead_runs(instance: DagsterInstance, log: Callable[[str], None] = print) -> list[str]:
    """Reclaim every live-looking run whose process is gone: free its pool slots and mark it canceled
    (its work is re-run), or failed once the same work died MAX_DEATHS times; returns the run ids."""
    reaped = []
    for record in instance.get_run_records(RunsFilter(statuses=LIVE)):
        run = record.dagster_run
        pid = run_process(instance, run.run_id)
        if pid is None or process_alive(pid, record.start_time):
            continue
        deaths = _deaths(instance, _work(run)) + 1
        instance.add_run_tags(run.run_id, {REAPED_TAG: "true"})
        gone = f"run {run.run_id} ({run.job_name}) is {run.status.value} but its process {pid} is gone (killed?)"
        if deaths < MAX_DEATHS:
            message = f"{gone}: pool slots freed and marked canceled, so automation runs its work again"
            instance.report_run_canceled(run, message)
        else:
            message = (
                f"{gone}, the {deaths}th death of this work: marked failed (no more automatic re-runs; "
                "fix what kills the process, then re-materialize it from the UI)"
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
    description="Reclaims runs whose process died (kill -9, a crash): frees their pool slots and marks them "
    "canceled so their work runs again (failed after repeated deaths).",
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
