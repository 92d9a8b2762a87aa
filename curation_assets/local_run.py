"""Run the pipeline once, here, the way the daemon would: what `make demo` does.

It evaluates the real new-shard sensors against the local Dagster instance ($DAGSTER_HOME), applies
what they return exactly as the daemon would (register partitions, record data versions), ingests
the requested shards, then ticks the real automation sensor and runs what it requests until it
requests nothing, all in-process, so `make ui` afterwards shows the same instance, runs and
partitions, and the daemon finds nothing left to do.
"""

from __future__ import annotations

import argparse
import os
import sys

import pyarrow.parquet as pq
from dagster import DagsterInstance, DeleteDynamicPartitionsRequest, SensorResult, SkipReason, build_sensor_context

from curation_assets import registry
from curation_assets.defs.dagster_compat import DagsterEventType
from curation_assets.defs.local_runner import RunSummary, run_automation
from curation_assets.defs.resources import DATA_ROOT_ENV
from curation_assets.defs.sensors import NEW_SHARD_SENSORS
from curation_assets.sources import SourceKind
from curation_assets.table_spec import TableSpec
from curation_assets.table_store import TableStore


def local_instance_env(root, home, recipe) -> dict[str, str]:
    """The environment of a local instance over `root` (data) and `home` (DAGSTER_HOME, with the local
    instance settings copied in): what `make demo` / `make ui` set, for the drills, the browser test
    and the screenshots, which run their own copies. Offline: nothing may reach a model hub."""
    import shutil
    from pathlib import Path

    settings = Path(__file__).resolve().parents[1] / "deploy" / "dagster.local.yaml"
    shutil.copy(settings, Path(home) / "dagster.yaml")  # no first-visit modal, run monitoring on
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        DATA_ROOT_ENV: str(root),
        "CURATION_RECIPE": str(recipe),
        "HF_HUB_OFFLINE": "1",
        "DAGSTER_DISABLE_TELEMETRY": "yes",
    }


def apply_sensor_result(instance: DagsterInstance, result: SensorResult) -> None:
    """Do what the sensor daemon does with a result: register and remove partitions, record events."""
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, DeleteDynamicPartitionsRequest):
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
        else:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    for event in result.asset_events or []:
        instance.report_runless_asset_event(event)


def tick_shard_sensors(instance: DagsterInstance, defs, log=print) -> int:
    """Tick every new-shard sensor once, as the daemon would; returns how many ticks saw something."""
    changed = 0
    shard_sensors = {sensor.name for sensor in NEW_SHARD_SENSORS}
    for sensor_def in (sensor for sensor in defs.sensors if sensor.name in shard_sensors):
        # No cursor: the daemon keeps its own. Starting without one costs one re-hash per file, and
        # the data versions recorded in the instance keep unchanged shards from being re-run.
        with build_sensor_context(instance=instance, resources=defs.resources) as context:
            result = sensor_def(context)
            if isinstance(result, SkipReason):
                log(f"[{sensor_def.name}] {result.skip_message}")
                continue
            apply_sensor_result(instance, result)
            changed += 1
    return changed


def failure_report(instance: DagsterInstance, runs: list[RunSummary], tail_lines: int = 6) -> str:
    """Which run, which shard(s), which step, and the error's last lines, for each failed run."""
    lines = []
    for run in (run for run in runs if not run.success):
        where = ", ".join(run.partitions) if run.partitions else "all shards"
        lines.append(f"run {run.run_id} ({where}):")
        for record in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE):
            event = record.dagster_event
            error = event.step_failure_data.error if event.step_failure_data else None
            text = (error.to_string() if error else record.user_message).strip().splitlines()
            lines.append(f"  step {event.step_key}: " + "\n    ".join(text[-tail_lines:]))
    return "\n".join(lines)


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
        tick_shard_sensors(instance, defs)
        runs = run_automation(instance, defs)
        failed = [run for run in runs if not run.success]
        report = failure_report(instance, runs)
    print(f"\nautomation made {len(runs)} runs, {len(failed)} failed")
    print(summarize_outputs(TableStore(os.environ.get(DATA_ROOT_ENV, "data"))))
    if failed:
        print(f"\n{len(failed)} run(s) failed; every other shard went on:\n{report}", file=sys.stderr)
    print(
        "\nOpen the UI on this instance with `make ui`, then http://127.0.0.1:3000 "
        "(Assets -> caption, interleaved or text -> score_analysis for the histograms; sensors new_*_shards "
        "pick up new files)."
    )
    return 1 if failed else 0


def summarize_outputs(store: TableStore) -> str:
    """Rows kept and quarantined per kind, read back from the tables on disk, and where they are."""
    lines = [f"\noutputs under {store.root.root}:"]
    for kind in SourceKind:
        normalized, quarantine = registry.NORMALIZED[kind], registry.QUARANTINE[kind]
        lines.append(
            f"  {kind.value:<12} {_total_rows(store, normalized):>6} valid rows in {store.folder(normalized)}/  "
            f"{_total_rows(store, quarantine):>4} quarantined in {store.folder(quarantine)}/"
        )
    scored = _total_rows(store, registry.CLIP_SIMILARITY)
    decided, kept = _whole_rows(store, registry.FILTERED, "kept")
    pool, _ = _whole_rows(store, registry.CURATED)
    rewritten = _count_where(store, registry.RECAPTIONED, "kept")
    lines.append(
        f"  caption pairs: {scored} scored, {decided} decided, {kept} kept by the filters, "
        f"{rewritten} recaptioned and kept, {pool} in the curated pool"
    )
    lines.append(f"  curated caption pool: {store.path(registry.CURATED)}")
    for kind in (SourceKind.interleaved, SourceKind.text):
        chain = registry.CHAINS[kind]
        decided, kept = _whole_rows(store, chain.filtered, "kept")
        pool = _total_rows(store, chain.curated)
        images = ""
        if kind is SourceKind.interleaved:
            judged, images_kept = _whole_rows(store, chain.image_decisions, "kept")
            images = f" ({images_kept} of their {judged} images kept)"
        lines.append(
            f"  {kind.value} documents: {decided} decided, {kept} kept{images}, {pool} in the curated pool "
            f"({store.folder(chain.curated)}/<shard>.parquet)"
        )
    analyses = [str(store.path(chain.analysis)) for chain in registry.CHAINS.values()]
    lines.append(f"  score quantiles: {', '.join(analyses)}")
    lines += summarize_mix(store)
    lines += summarize_eval(store)
    return "\n".join(lines)


def summarize_mix(store: TableStore) -> list[str]:
    """The mix (target vs realized shares, short pools) and where each export is."""
    if not store.exists(registry.MIX_REPORT):
        return ["  mix: not made yet (materialize mix/mix)"]
    report = store.read_json(registry.MIX_REPORT)
    unit = report["unit"]
    shares = ", ".join(
        f"{kind} {row[f'realized_share_{unit}'] or 0:.1%} (target {row['target_share']:.1%}, {row['samples']} rows, "
        f"{row['unique_samples']} unique)"
        for kind, row in report["kinds"].items()
    )
    lines = [f"  mix: {report['totals']['samples']} rows in {unit}: {shares}; {store.path(registry.MIX_TABLE)}"]
    lines += [f"    warning: {warning}" for warning in report["warnings"]]
    if not store.exists(registry.EXPORTS):
        return [*lines, "  exports: not made yet (materialize mix/exports)"]
    index = store.read_json(registry.EXPORTS)
    lines.append(f"  exports under {store.folder(registry.EXPORTS)}:")
    for name, export in index["exports"].items():
        files = export["files"]
        shown = files[0] if len(files) == 1 else f"{files[0]} ... ({len(files)} files)"
        lines.append(f"    {name:<12} {export['counts'].get('samples', 0):>5} samples  {shown}")
    return lines


def summarize_eval(store: TableStore) -> list[str]:
    """Curated vs random vs all on each eval set, and the sensitivity verdict (when the recipe evaluates)."""
    from curation_assets.evaluation.report import comparison_lines

    if not store.exists(registry.EVAL_RESULTS):
        return []
    report = store.read_json(registry.EVAL_RESULTS)
    lines = [f"  eval: {line}" for line in comparison_lines(report)]
    sensitivity = report["sensitivity"]
    lines.append(f"    sensitivity {'passed' if sensitivity['passed'] else 'warning'}: {sensitivity['message']}")
    return [*lines, f"    report: {store.path(registry.EVAL_RESULTS)}"]


def _shard_tables(store: TableStore, spec: TableSpec):
    folder = store.folder(spec)
    return [path for path in folder.iterdir() if path.suffix == ".parquet"] if folder.exists() else []


def _count_where(store: TableStore, spec: TableSpec, column: str) -> int:
    return sum(
        int(pq.read_table(path.path, columns=[column])[column].to_numpy().sum()) for path in _shard_tables(store, spec)
    )


def _whole_rows(store: TableStore, spec: TableSpec, true_column: str | None = None) -> tuple[int, int]:
    """Rows of a whole-scope table, and how many have `true_column` set."""
    if not store.exists(spec):
        return 0, 0
    frame = store.read(spec, columns=[true_column] if true_column else None)
    return frame.height, int(frame[true_column].sum()) if true_column else 0


def _total_rows(store: TableStore, spec: TableSpec) -> int:
    return sum(pq.ParquetFile(path.path).metadata.num_rows for path in _shard_tables(store, spec))


if __name__ == "__main__":
    sys.exit(main())
