"""Materialize exactly what is stale or missing, in dependency order, in this process.

This is what the UI's "Materialize changed and missing" does, made runnable for `make demo`,
the benchmarks and tests: ask Dagster's stale-status resolver (the one behind the UI's badges)
what is out of date, run what is ready, and ask again until nothing is left. A re-run that decides
the same thing returns the same data version, so its downstream stays fresh and the loop stops.
"""

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dagster import AssetKey, DagsterInstance, Definitions

from curation_assets.defs.dagster_compat import CachingStaleStatusResolver, LoadingContextForTest, StaleStatus
from curation_assets.defs.shard_assets import SHARDS_PER_RUN

# The run tags a single-run backfill sets: one run covering a range of partitions.
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
OUT_OF_DATE = (StaleStatus.STALE, StaleStatus.MISSING)


def stale_status(
    instance: DagsterInstance, defs: Definitions, key: AssetKey, partition: str | None = None
) -> StaleStatus:
    """Dagster's own verdict for one asset partition (internal API, wrapped here in one place)."""
    return _resolver(instance, defs).get_status(key, partition)


def _resolver(instance: DagsterInstance, defs: Definitions) -> CachingStaleStatusResolver:
    return CachingStaleStatusResolver(instance, defs.resolve_asset_graph(), LoadingContextForTest(instance))


@dataclass
class RunSummary:
    assets: list[str]
    partitions: list[str]
    seconds: float


def out_of_date(
    instance: DagsterInstance, defs: Definitions, among: set[AssetKey] | None = None
) -> dict[AssetKey, list[str | None]]:
    """Asset partitions that are stale or missing and whose upstream partitions are all up to date,
    looking only at `among` when given (everything else is taken as up to date)."""
    graph = defs.resolve_asset_graph()
    resolver = _resolver(instance, defs)
    partitions_of = {}
    waiting: set[tuple[AssetKey, str | None]] = set()
    ready: dict[AssetKey, list[str | None]] = defaultdict(list)
    for key in graph.toposorted_asset_keys:
        node = graph.get(key)
        if not node.is_materializable or (among is not None and key not in among):
            continue
        partitions_of[key] = (
            sorted(instance.get_dynamic_partitions(node.partitions_def.name)) if node.partitions_def else [None]
        )
        for partition in partitions_of[key]:
            parents = [
                (parent, parent_partition)
                for parent in node.parent_keys
                if parent in partitions_of
                for parent_partition in _parent_partitions(graph, parent, partition, partitions_of[parent])
            ]
            if any(parent in waiting for parent in parents):
                waiting.add((key, partition))
            elif resolver.get_status(key, partition) in OUT_OF_DATE:
                waiting.add((key, partition))
                ready[key].append(partition)
    return dict(ready)


def _downstream_of(graph, keys: Iterable[AssetKey]) -> set[AssetKey]:
    """Every asset below `keys`: the only ones a run of `keys` can have put out of date. Anything
    else out of date was already out of date in the first round, and so ready or below a ready one."""
    found: set[AssetKey] = set()
    frontier = list(keys)
    while frontier:
        for child in graph.get(frontier.pop()).child_keys:
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found


def _parent_partitions(
    graph, parent: AssetKey, partition: str | None, parent_partitions: list[str | None]
) -> Iterable[str | None]:
    if graph.get(parent).partitions_def is None:
        return [None]
    return parent_partitions if partition is None else [partition]


def run_until_fresh(
    instance: DagsterInstance, defs: Definitions, log: Callable[[str], None] = print, max_rounds: int = 25
) -> list[RunSummary]:
    """Run what is out of date until nothing is; returns every run made."""
    graph = defs.resolve_asset_graph()
    job = defs.resolve_implicit_global_asset_job_def()
    runs: list[RunSummary] = []
    among = None  # first round: everything; later rounds: only what lies downstream of what just ran
    for _ in range(max_rounds):
        ready = out_of_date(instance, defs, among)
        if not ready:
            return runs
        among = _downstream_of(graph, ready)
        for assets, partitions, tags in _plan_runs(graph, instance, ready):
            started = time.monotonic()
            outcome = job.execute_in_process(
                instance=instance,
                asset_selection=assets,
                partition_key=partitions[0] if len(partitions) == 1 and partitions[0] is not None else None,
                tags=tags,
                run_config=QUIET_RUN_CONFIG,
                raise_on_error=False,
            )
            summary = RunSummary(
                [a.to_user_string() for a in assets], [p for p in partitions if p], time.monotonic() - started
            )
            runs.append(summary)
            where = (
                f" x {len(summary.partitions)} shard(s) {summary.partitions[0]}..{summary.partitions[-1]}"
                if summary.partitions
                else ""
            )
            status = "ok" if outcome.success else "FAILED"
            log(f"[{status}] {', '.join(summary.assets)}{where} in {summary.seconds:.1f}s")
            if not outcome.success:
                raise RuntimeError(f"run {outcome.run_id} failed; open the UI (`make ui`) -> Runs for its logs")
    raise RuntimeError(f"still out of date after {max_rounds} rounds: {sorted(k.to_user_string() for k in ready)}")


def _plan_runs(graph, instance, ready: dict[AssetKey, list[str | None]]):
    """Group ready asset partitions into runs as Dagster's backfills do: assets sharing partitions
    and backfill policy run together; batched policies get ranges of consecutive shards."""
    groups: dict[tuple, list[AssetKey]] = defaultdict(list)
    for key, partitions in ready.items():
        node = graph.get(key)
        per_run = node.backfill_policy.max_partitions_per_run if node.backfill_policy else 1
        name = node.partitions_def.name if node.partitions_def else None
        groups[(name, tuple(partitions), per_run or SHARDS_PER_RUN)].append(key)
    for (name, partitions, per_run), assets in groups.items():
        if name is None:
            yield assets, [None], {}
            continue
        order = {key: i for i, key in enumerate(sorted(instance.get_dynamic_partitions(name)))}
        for chunk in _consecutive_chunks(sorted(partitions, key=order.__getitem__), order, per_run):
            tags = {RANGE_START_TAG: chunk[0], RANGE_END_TAG: chunk[-1]} if len(chunk) > 1 else {}
            yield assets, chunk, tags


def _consecutive_chunks(partitions: list[str], order: dict[str, int], size: int) -> Iterable[list[str]]:
    """Runs cover ranges, so a chunk holds only partitions that are neighbours in partition order."""
    chunk: list[str] = []
    for partition in partitions:
        if chunk and (len(chunk) == size or order[partition] != order[chunk[-1]] + 1):
            yield chunk
            chunk = []
        chunk.append(partition)
    if chunk:
        yield chunk
