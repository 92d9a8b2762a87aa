"""Run the daemon's automation in this process: evaluate the real automation sensor, execute the runs it
requests, and tick again until it requests nothing.

This is what `make demo`, the benchmarks and the tests use, so they exercise exactly the decisions the
daemon makes under `make ui` (the same sensor, the same conditions, the same run grouping). Requests
for many partitions come as a backfill, as they do from the daemon; here a backfill becomes runs of
up to a backfill policy's size of consecutive shards, as the backfill daemon would split it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dagster import AssetKey, DagsterInstance, Definitions, RunRequest, build_sensor_context

from curation_assets.defs.automation import AUTOMATION_SENSOR
from curation_assets.defs.reaper import reap_dead_runs
from curation_assets.defs.shard_assets import SHARDS_PER_RUN

# The code location as workspace.yaml names it (and pyproject's [tool.dagster]).
LOCATION_NAME = "curation_assets"
CODE_MODULE = "curation_assets.definitions"
REPOSITORY_NAME = "__repository__"  # Dagster's name for the repository of a Definitions object
REPO = Path(__file__).resolve().parents[2]

# The run tags a single-run backfill sets: one run covering a range of partitions.
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class RunSummary:
    assets: list[str]
    partitions: list[str]
    seconds: float
    success: bool
    run_id: str


@dataclass
class AutomationState:
    """The automation sensor's cursor between ticks (the daemon keeps it in the instance)."""

    cursor: str | None = None
    ticks: int = 0


def tick(instance: DagsterInstance, defs: Definitions, state: AutomationState) -> list[RunRequest]:
    """One evaluation of the automation sensor: the run requests the daemon would launch now."""
    sensor = defs.resolve_sensor_def(AUTOMATION_SENSOR.name)
    with build_sensor_context(
        instance=instance, cursor=state.cursor, repository_def=defs.get_repository_def()
    ) as context:
        result = sensor.evaluate_tick(context)
    state.cursor = result.cursor
    state.ticks += 1
    return list(result.run_requests or [])


def run_automation(
    instance: DagsterInstance,
    defs: Definitions,
    log: Callable[[str], None] = print,
    max_ticks: int = 30,
    state: AutomationState | None = None,
) -> list[RunSummary]:
    """Tick and run what each tick requests until a tick requests nothing; returns every run made.
    A failed run is reported and the others go on (automation does not retry it by itself)."""
    state = state or AutomationState()
    reap_dead_runs(instance, log)  # a run killed earlier would otherwise hold its pool slot for good
    runs: list[RunSummary] = []
    for _ in range(max_ticks):
        requests = tick(instance, defs, state)
        if not requests:
            return runs
        runs.extend(execute_requests(instance, defs, requests, log))
    raise RuntimeError(f"automation still requests runs after {max_ticks} ticks; see `make ui` -> Automation")


def execute_requests(
    instance: DagsterInstance, defs: Definitions, requests: Iterable[RunRequest], log: Callable[[str], None] = print
) -> list[RunSummary]:
    """Execute a tick's run requests here, as the daemon would launch them, upstream runs first."""
    job = defs.resolve_implicit_global_asset_job_def()
    runs = []
    for assets, partitions, tags in _plan_runs(defs.resolve_asset_graph(), instance, requests):
        started = time.monotonic()
        with runs_from_location(instance, job.name):
            outcome = job.execute_in_process(
                instance=instance,
                asset_selection=assets,
                partition_key=partitions[0] if len(partitions) == 1 else None,
                tags=tags,
                run_config=QUIET_RUN_CONFIG,
                raise_on_error=False,
            )
        summary = RunSummary(
            sorted(key.to_user_string() for key in assets),
            partitions,
            time.monotonic() - started,
            outcome.success,
            outcome.run_id,
        )
        runs.append(summary)
        where = f" x {len(partitions)} shard(s) {partitions[0]}..{partitions[-1]}" if partitions else ""
        status = "ok" if outcome.success else "FAILED"
        log(f"[{status}] {', '.join(summary.assets)}{where} in {summary.seconds:.1f}s")
    return runs


@contextmanager
def runs_from_location(instance: DagsterInstance, job_name: str) -> Iterator[None]:
    """Runs created meanwhile carry this code location as their origin, as the daemon's do.

    `execute_in_process` records no origin, and the UI leaves runs without one off the Overview
    timeline and the job's run list (after `make demo`, "No runs"). Dagster offers no parameter for
    it, so the instance's run factory is wrapped for the duration: the only change is the origin."""
    from dagster._core.remote_origin import (
        ManagedGrpcPythonEnvCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    location = ManagedGrpcPythonEnvCodeLocationOrigin(
        LoadableTargetOrigin(module_name=CODE_MODULE, working_directory=str(REPO)), location_name=LOCATION_NAME
    )
    origin = RemoteJobOrigin(RemoteRepositoryOrigin(location, REPOSITORY_NAME), job_name)
    create = instance.create_run_for_job

    def create_with_origin(*args, **kwargs):
        kwargs["remote_job_origin"] = kwargs.get("remote_job_origin") or origin
        return create(*args, **kwargs)

    instance.create_run_for_job = create_with_origin
    try:
        yield
    finally:
        del instance.create_run_for_job  # back to the class's method


def _plan_runs(graph, instance: DagsterInstance, requests: Iterable[RunRequest]) -> list[tuple]:
    """(asset keys, partition keys, run tags) per run, as the daemon would launch them, upstream runs
    first (the daemon launches them together; a tick may request a table and its readers at once)."""
    planned = []
    for request in requests:
        if request.asset_graph_subset is not None:
            planned.extend(_backfill_runs(graph, instance, request))
        else:
            partitions = [request.partition_key] if request.partition_key else []
            planned.append((list(request.asset_selection or []), partitions, {}))
    position = {key: i for i, key in enumerate(graph.toposorted_asset_keys)}
    return sorted(planned, key=lambda run: min(position[key] for key in run[0]))


def _backfill_runs(graph, instance: DagsterInstance, request: RunRequest) -> Iterator[tuple]:
    """Split a backfill as the backfill daemon does: assets sharing partitions run together, over
    ranges of at most the backfill policy's size of consecutive partitions."""
    subset = request.asset_graph_subset
    groups: dict[tuple, list[AssetKey]] = defaultdict(list)
    for key in sorted(subset.asset_keys, key=lambda k: k.to_user_string()):
        node = graph.get(key)
        if node.partitions_def is None:
            groups[(None, (), 1)].append(key)
            continue
        partitions = tuple(sorted(subset.get_partitions_subset(key).get_partition_keys()))
        per_run = node.backfill_policy.max_partitions_per_run if node.backfill_policy else 1
        groups[(node.partitions_def.name, partitions, per_run or SHARDS_PER_RUN)].append(key)
    for (name, partitions, per_run), assets in groups.items():
        if name is None:
            yield assets, [], {}
            continue
        order = {key: i for i, key in enumerate(sorted(instance.get_dynamic_partitions(name)))}
        for chunk in consecutive_chunks(sorted(partitions, key=order.__getitem__), order, per_run):
            tags = {RANGE_START_TAG: chunk[0], RANGE_END_TAG: chunk[-1]} if len(chunk) > 1 else {}
            yield assets, chunk, tags


def consecutive_chunks(partitions: list[str], order: dict[str, int], size: int) -> Iterator[list[str]]:
    """Runs cover ranges, so a chunk holds only partitions that are neighbours in partition order."""
    chunk: list[str] = []
    for partition in partitions:
        if chunk and (len(chunk) == size or order[partition] != order[chunk[-1]] + 1):
            yield chunk
            chunk = []
        chunk.append(partition)
    if chunk:
        yield chunk
