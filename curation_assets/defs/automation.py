"""When Dagster's automation re-runs a table by itself: whenever its latest materialization is behind its
inputs or its code version, judged afresh on every tick from what the instance records.

Why not Dagster's edge-triggered conditions (`eager()`, `data_version_changed().since_last_handled()`):
they see a change for one tick and forget it once the asset is next "handled", so an input that
changes while the asset is running is lost when that run completes (the partition then stays stale
for good), and a process that starts without the previous tick's cursor sees no change at all. Here
the answer is recomputed from the instance each tick, so nothing can be lost: a run that finishes
behind its inputs is simply due again.

How "behind" is decided, per asset partition, from the tags Dagster writes on each materialization:
- code version: the `dagster/code_version` tag differs from the asset's current code version;
- an unpartitioned input: its current data version differs from `dagster/input_data_version/<input>`;
- a partitioned input: the input partition was materialized after `dagster/input_event_pointer/<input>`
  (the input's newest storage id when the step started) with a data version other than the one it had
  then, so an identical re-ingest changes nothing. This works at any shard count: it never walks
  the stale-status resolver, which ignores inputs with 100 or more partitions.

The evaluation is plain Python, so the automation sensor runs in the code location
(`use_user_code_server=True`); `make demo` evaluates the same sensor in-process.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    AutomationContext,
    AutomationResult,
    DefaultSensorStatus,
    MetadataValue,
)

from curation_assets.defs.dagster_compat import (
    CODE_VERSION_TAG,
    DATA_VERSION_TAG,
    DagsterEventType,
    input_data_version_tag,
    input_event_pointer_tag,
)
from curation_assets.defs.sensors import SCAN_INTERVAL_SECONDS

MATERIALIZATION = DagsterEventType.ASSET_MATERIALIZATION


def _storage_id(tags: Mapping[str, str], tag: str) -> int:
    value = tags.get(tag, "")
    return int(value) if value.isdigit() else 0


class _LiveCondition(AutomationCondition):
    """A condition read from the instance on every tick (no cursor), named by CONDITION_NAME and
    described by DESCRIPTION in the UI's automation view."""

    CONDITION_NAME = ""
    DESCRIPTION = ""

    @property
    def name(self) -> str:
        return self.CONDITION_NAME

    def get_label(self) -> str | None:
        return self.CONDITION_NAME

    @property
    def description(self) -> str:
        return self.DESCRIPTION

    @property
    def requires_cursor(self) -> bool:
        return False  # stateless: recomputed from the instance every tick


class BehindInputs(_LiveCondition):
    """True for each asset partition whose latest materialization is behind its inputs or code.

    `ignored` inputs moving does not count (see on_new_data's `ignores`)."""

    CONDITION_NAME = "behind_inputs"
    DESCRIPTION = "Latest materialization is behind its inputs' data or its code version"

    def __init__(self, ignored: Iterable[AssetKey] = ()):
        self.ignored = frozenset(ignored)

    def evaluate(self, context: AutomationContext) -> AutomationResult:
        if context.candidate_subset.is_empty:
            return AutomationResult(context, context.get_empty_subset())
        node = context.asset_graph.get(context.key)
        storage = context.asset_graph_view.instance.event_log_storage
        parents = sorted(node.parent_keys - self.ignored)
        if node.partitions_def is None:
            reasons = {None: _behind(context, storage, node, parents)}
        else:
            partitions = list(context.candidate_subset.expensively_compute_partition_keys())
            reasons = dict(zip(partitions, _behind_by_partition(context, storage, node, parents, partitions)))
        behind = {partition: why for partition, why in reasons.items() if why}
        if node.partitions_def is None:
            true_subset = context.candidate_subset if behind else context.get_empty_subset()
        else:
            true_subset = context.asset_graph_view.get_subset_from_partition_keys(
                context.key, node.partitions_def, set(behind)
            )
        summary = "; ".join(f"{p or 'all'}: {', '.join(why)}" for p, why in list(behind.items())[:5])
        return AutomationResult(context, true_subset, metadata={"why": MetadataValue.text(summary or "up to date")})


class MaterializedNow(_LiveCondition):
    """True for each asset partition the event log holds a materialization of, read when evaluated.

    Guards Dagster's `missing()`, which reads the partition status cache: that cache takes the asset's
    latest materialization id from the asset record, then asks the live event log which planned
    partitions are still without a materialization. A partition materialized between the two reads is
    then neither materialized nor in progress, so `missing() & ~in_progress()` requested it again (seen
    under the daemon, under load: a new shard's text_stats and aesthetics ran a second time in a run
    of their own). One indexed query over the partitions `missing()` returned."""

    CONDITION_NAME = "materialized_now"
    DESCRIPTION = "Has a materialization in the event log (read live, not from the status cache)"

    def evaluate(self, context: AutomationContext) -> AutomationResult:
        if context.candidate_subset.is_empty:
            return AutomationResult(context, context.get_empty_subset())
        node = context.asset_graph.get(context.key)
        instance = context.asset_graph_view.instance
        if node.partitions_def is None:
            found = instance.get_latest_materialization_event(node.key) is not None
            return AutomationResult(context, context.candidate_subset if found else context.get_empty_subset())
        partitions = set(context.candidate_subset.expensively_compute_partition_keys())
        materialized = instance.event_log_storage.get_latest_storage_id_by_partition(
            node.key, MATERIALIZATION, partitions
        )
        true_subset = context.asset_graph_view.get_subset_from_partition_keys(
            context.key, node.partitions_def, set(materialized)
        )
        return AutomationResult(context, true_subset)


def _behind(context: AutomationContext, storage, node, parents: list[AssetKey]) -> list[str]:
    """Reasons an unpartitioned asset is behind (empty: up to date or never materialized)."""
    record = context.asset_graph_view.instance.get_latest_materialization_event(node.key)
    if record is None or record.asset_materialization is None:
        return []
    tags = record.asset_materialization.tags or {}
    reasons: list[str] = []
    if node.code_version is not None and tags.get(CODE_VERSION_TAG) != node.code_version:
        reasons.append("code version")
    for parent in parents:
        parent_node = context.asset_graph.get(parent)
        if parent_node.partitions_def is None:
            current = _current_data_version(context, parent)
            if current is not None and tags.get(input_data_version_tag(parent)) != current:
                reasons.append(f"{parent.to_user_string()} changed")
        elif _partitions_changed_after(storage, parent, _storage_id(tags, input_event_pointer_tag(parent)), None):
            reasons.append(f"{parent.to_user_string()} changed")
    return reasons


def _behind_by_partition(
    context: AutomationContext, storage, node, parents: list[AssetKey], partitions: list[str]
) -> list[list[str]]:
    """Reasons each partition of a partitioned asset is behind; its partitioned inputs are the same shard."""
    instance = context.asset_graph_view.instance
    own_ids = storage.get_latest_storage_id_by_partition(node.key, MATERIALIZATION, set(partitions))
    tags_by_id = _materialization_tags(instance, node.key, own_ids.values())
    own = {partition: tags_by_id[storage_id] for partition, storage_id in own_ids.items() if storage_id in tags_by_id}
    reasons: dict[str, list[str]] = {p: [] for p in partitions}
    for partition, tags in own.items():
        if node.code_version is not None and tags.get(CODE_VERSION_TAG) != node.code_version:
            reasons[partition].append("code version")
    for parent in parents:
        if context.asset_graph.get(parent).partitions_def is None:
            current = _current_data_version(context, parent)
            for partition, tags in own.items():
                if current is not None and tags.get(input_data_version_tag(parent)) != current:
                    reasons[partition].append(f"{parent.to_user_string()} changed")
            continue
        pointers = {p: _storage_id(tags, input_event_pointer_tag(parent)) for p, tags in own.items()}
        for partition in _partitions_changed_after_pointers(storage, parent, pointers):
            reasons[partition].append(f"{parent.to_user_string()} changed")
    return [reasons[p] for p in partitions]


# Tags of materialization records by storage id, per event log storage. A record never changes once
# written, so each is read once: a tick then costs what is new since the last one, not a fetch of every
# partition's latest record (1,000 shards x 14 tables per tick, measured as the cost that grew with the
# shard count). Only the data version tag can be queried per partition without fetching records.
# Keyed by the storage's configuration, which names its database: the daemon evaluates each tick with
# a fresh instance object over the same database.
_TAG_CACHES: dict[object, dict[int, Mapping[str, str]]] = {}
_TAG_CACHE_LIMIT = 500_000


def _storage_identity(instance) -> object | None:
    """What names the instance's event log database, or None (an ephemeral instance: not cached)."""
    return instance.get_ref().event_storage_data if instance.is_persistent else None


def _materialization_tags(instance, key: AssetKey, storage_ids: Iterable[int]) -> dict[int, Mapping[str, str]]:
    identity = _storage_identity(instance)
    cache = _TAG_CACHES.setdefault(identity, {}) if identity is not None else {}
    wanted = set(storage_ids)
    missing = [storage_id for storage_id in wanted if storage_id not in cache]
    if missing:
        if len(cache) + len(missing) > _TAG_CACHE_LIMIT:
            cache.clear()
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, storage_ids=missing), limit=len(missing)
        ).records
        for record in records:
            event = record.event_log_entry.asset_materialization
            cache[record.storage_id] = dict(event.tags or {}) if event else {}
    return {storage_id: cache[storage_id] for storage_id in wanted if storage_id in cache}


def _current_data_version(context: AutomationContext, key: AssetKey) -> str | None:
    instance = context.asset_graph_view.instance
    record = instance.get_latest_data_version_record(key, context.asset_graph.get(key).is_external)
    if record is None:
        return None
    event = record.event_log_entry.asset_materialization or record.event_log_entry.asset_observation
    return (event.tags or {}).get(DATA_VERSION_TAG) if event else None


def _partitions_changed_after(storage, key: AssetKey, pointer: int, partitions: Iterable[str] | None) -> list[str]:
    """Partitions of `key` materialized after storage id `pointer` with a data version other than the
    one they had at `pointer`."""
    latest = storage.get_latest_storage_id_by_partition(
        key, MATERIALIZATION, set(partitions) if partitions is not None else None, after_cursor=pointer
    )
    if not latest:
        return []
    now = storage.get_latest_tags_by_partition(key, MATERIALIZATION, [DATA_VERSION_TAG], asset_partitions=list(latest))
    before = storage.get_latest_tags_by_partition(
        key, MATERIALIZATION, [DATA_VERSION_TAG], asset_partitions=list(latest), before_cursor=pointer + 1
    )
    return [
        p
        for p in latest
        if now.get(p, {}).get(DATA_VERSION_TAG) != before.get(p, {}).get(DATA_VERSION_TAG) or p not in before
    ]


def _partitions_changed_after_pointers(storage, key: AssetKey, pointers: Mapping[str, int]) -> list[str]:
    """Of these partitions, those whose input partition in `key` changed after each one's own pointer."""
    if not pointers:
        return []
    lowest = min(pointers.values())
    latest = storage.get_latest_storage_id_by_partition(key, MATERIALIZATION, set(pointers), after_cursor=lowest)
    candidates = [p for p, storage_id in latest.items() if storage_id > pointers[p]]
    changed = []
    for pointer in sorted({pointers[p] for p in candidates}):
        same_pointer = [p for p in candidates if pointers[p] == pointer]
        changed += _partitions_changed_after(storage, key, pointer, same_pointer)
    return changed


def failed_upstream(depth: int = 4) -> AutomationCondition:
    """True for an asset partition whose last run failed, or whose inputs' did, up to `depth` levels up:
    a shard whose ingest failed leaves its score tables missing without a failure of their own."""
    condition = AutomationCondition.execution_failed()
    for _ in range(depth):
        condition = AutomationCondition.execution_failed() | AutomationCondition.any_deps_match(condition)
    return condition


def on_new_data(
    reads_every_shard: bool = False, joins_runs: bool = True, ignores: Iterable[AssetKey] = ()
) -> AutomationCondition:
    """Run a table when it is missing or behind its inputs or code, once nothing it reads is missing or
    running. Tables whose inputs will be requested in the same tick join that run, so a new shard's
    tables go in one run and the global decisions in one more. A failed run is not retried until an
    input updates again (no retry loop).

    `reads_every_shard`: a global table does not wait for a shard whose tables are missing because
    its run failed; it goes on without that shard (one failure stays one failure), and reports it.

    `joins_runs=False`: the table never joins a run requested for its inputs; it waits until they are
    done and runs only if their data then moved. For costly tables (the eval) downstream of
    content-versioned ones, which a re-run often leaves unchanged.

    `ignores`: inputs whose moving does not make the table due by itself (it still waits for them),
    because they settle before the inputs that matter. A new shard's eval features are written by the
    shard's run, long before the global run moves the mix: under the daemon, an eval behind them alone
    started on the old mix while the new shard was still being scored."""
    missing = (AutomationCondition.missing() & ~MaterializedNow()).with_label("missing")
    due = (missing | BehindInputs(ignores)) & ~AutomationCondition.execution_failed()
    # After a failure, new data in an input is worth one more try (an identical re-run of it is not).
    # Only after a failure: for any other table BehindInputs already says when an input moved, and an
    # edge remembered "since last requested" would fire again after a run that already read the new
    # data (seen under the daemon: a second run of caption/aesthetics for a new shard).
    new_input = AutomationCondition.any_deps_match(
        AutomationCondition.data_version_changed() & ~AutomationCondition.executed_with_root_target()
    )
    retry = AutomationCondition.execution_failed() & new_input.since(AutomationCondition.newly_requested())
    if reads_every_shard:
        waiting = AutomationCondition.any_deps_match(
            AutomationCondition.missing() & ~AutomationCondition.will_be_requested() & ~failed_upstream()
        ).with_label("any_deps_missing_not_failed")
    else:
        waiting = AutomationCondition.any_deps_missing()
    joining = AutomationCondition.any_deps_match(AutomationCondition.will_be_requested())
    return (
        ((due | retry | joining) if joins_runs else (due | retry) & ~joining)
        & ~waiting
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label("on_new_data")


# Dagster's default automation sensor starts stopped and cannot evaluate Python conditions; this one
# runs in the code location as soon as `make ui` starts, so new shards ingested by the sensors are
# scored and the global assets follow without a click.
AUTOMATION_SENSOR = AutomationConditionSensorDefinition(
    "curation_automation",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=SCAN_INTERVAL_SECONDS,
    use_user_code_server=True,
    description="Materializes what on_new_data asks for: new or changed shards' tables, then the global assets.",
)
