"""Run the pipeline once, here, without the daemon: what `make demo` does.

It evaluates the real new-shard sensors against the local Dagster instance ($DAGSTER_HOME), applies
what they return exactly as the daemon would (register partitions, record data versions), ingests
the requested shards, then materializes whatever Dagster reports stale or missing until nothing is,
all in-process, so `make ui` afterwards shows the same instance, runs and partitions.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import pyarrow.parquet as pq
from dagster import DagsterInstance, SensorResult, SkipReason, build_sensor_context

from curation_assets import registry
from curation_assets.defs.resources import DATA_ROOT_ENV
from curation_assets.defs.sensors import NEW_SHARD_SENSORS
from curation_assets.defs.stale_runner import QUIET_RUN_CONFIG, run_until_fresh
from curation_assets.sources import SourceKind
from curation_assets.table_spec import TableSpec
from curation_assets.table_store import TableStore


def apply_sensor_result(instance: DagsterInstance, result: SensorResult) -> None:
    """Do what the sensor daemon does with a result, minus launching runs."""
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    for event in result.asset_events or []:
        instance.report_runless_asset_event(event)


def run_sensors_and_requests(instance: DagsterInstance, defs, log=print) -> dict[str, int]:
    """Tick every new-shard sensor once and run what it requests; returns runs per sensor. Raises if a run fails."""
    runs_by_sensor: dict[str, int] = {}
    shard_sensors = {sensor.name for sensor in NEW_SHARD_SENSORS}
    for sensor_def in (sensor for sensor in defs.sensors if sensor.name in shard_sensors):
        # No cursor: the daemon keeps its own. Starting without one costs one re-hash per file, and
        # the data versions recorded in the instance keep unchanged shards from being re-run.
        with build_sensor_context(instance=instance, resources=defs.resources) as context:
            result = sensor_def(context)
            if isinstance(result, SkipReason):
                log(f"[{sensor_def.name}] {result.skip_message}")
                runs_by_sensor[sensor_def.name] = 0
                continue
            apply_sensor_result(instance, result)
        job = defs.resolve_job_def(sensor_def.job_name)
        for index, request in enumerate(result.run_requests or [], start=1):
            started = time.monotonic()
            outcome = job.execute_in_process(
                partition_key=request.partition_key,
                instance=instance,
                raise_on_error=False,
                run_config=QUIET_RUN_CONFIG,
            )
            status = "ok" if outcome.success else "FAILED"
            seconds = time.monotonic() - started
            log(f"[{job.name}] {index}/{len(result.run_requests)} {request.partition_key}: {status} in {seconds:.1f}s")
            if not outcome.success:
                raise RuntimeError(
                    f"run {outcome.run_id} for shard {request.partition_key} failed; see `make ui` -> Runs"
                )
        runs_by_sensor[sensor_def.name] = len(result.run_requests or [])
    return runs_by_sensor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help=f"data root (default ${DATA_ROOT_ENV} or ./data)")
    args = parser.parse_args(argv)
    if args.data_root:
        os.environ[DATA_ROOT_ENV] = args.data_root
    if not os.environ.get("DAGSTER_HOME"):
        print("DAGSTER_HOME is not set: run through `make demo`, or export DAGSTER_HOME=$PWD/.dagster", file=sys.stderr)
        return 2
    from curation_assets.definitions import defs

    with DagsterInstance.get() as instance:
        runs = run_sensors_and_requests(instance, defs)
        stale_runs = run_until_fresh(instance, defs)
    print(f"\ningested {sum(runs.values())} new or changed shards; {len(stale_runs)} runs brought the rest up to date")
    print(summarize_outputs(TableStore(os.environ.get(DATA_ROOT_ENV, "data"))))
    print(
        "\nOpen the UI on this instance with `make ui`, then http://127.0.0.1:3000 "
        "(Assets -> caption -> score_analysis for the histograms; sensors new_*_shards pick up new files)."
    )
    return 0


def summarize_outputs(store: TableStore) -> str:
    """Rows kept and quarantined per kind, read back from the tables on disk, and where they are."""
    lines = [f"\noutputs under {store.root.root}:"]
    for kind in SourceKind:
        normalized, quarantine = registry.NORMALIZED[kind], registry.QUARANTINE[kind]
        lines.append(
            f"  {kind.value:<12} {_total_rows(store, normalized):>6} valid rows in {store.folder(normalized)}/  "
            f"{_total_rows(store, quarantine):>4} quarantined in {store.folder(quarantine)}/"
        )
    pipeline = [("scored", registry.CLIP_SIMILARITY), ("decided", registry.FILTERED), ("curated", registry.CURATED)]
    counts = ", ".join(f"{_total_rows(store, spec)} {label}" for label, spec in pipeline)
    kept = _count_where(store, registry.FILTERED, "kept")
    rewritten = _count_where(store, registry.RECAPTIONED, "kept")
    lines.append(f"  caption pairs: {counts}; {kept} kept by the filters, {rewritten} recaptioned and kept")
    lines.append(f"  curated caption pool: {store.folder(registry.CURATED)}/")
    lines.append(f"  score quantiles: {store.path(registry.SCORE_ANALYSIS)}")
    return "\n".join(lines)


def _shard_tables(store: TableStore, spec: TableSpec):
    folder = store.folder(spec)
    return [path for path in folder.iterdir() if path.suffix == ".parquet"] if folder.exists() else []


def _count_where(store: TableStore, spec: TableSpec, column: str) -> int:
    return sum(
        int(pq.read_table(path.path, columns=[column])[column].to_numpy().sum()) for path in _shard_tables(store, spec)
    )


def _total_rows(store: TableStore, spec: TableSpec) -> int:
    return sum(pq.ParquetFile(path.path).metadata.num_rows for path in _shard_tables(store, spec))


if __name__ == "__main__":
    sys.exit(main())
