"""Eval history: every eval materialization records the recipe fingerprint and its metrics as numeric
metadata; these functions flatten a report into that metadata and read a list of such records back
into one table, recipe version by recipe version: which data scored what.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import polars as pl

FINGERPRINT_KEY = "recipe_fingerprint"
SEPARATOR = "/"  # metadata keys: <eval set>/<pool>/<metric> and <eval set>/<pool>/<metric>_std
HISTORY_SCHEMA = {
    "recorded_at": pl.Float64,
    "fingerprint": pl.String,
    "eval_set": pl.String,
    "pool": pl.String,
    "metric": pl.String,
    "mean": pl.Float64,
    "std": pl.Float64,
}


def materialization_metadata(report: Mapping, fingerprint: str) -> dict[str, float | int | str | bool]:
    """Flat metadata for one eval materialization: the fingerprint, every metric's mean and std per
    eval set and pool, pool sizes and contamination counts, and the sensitivity numbers."""
    metadata: dict[str, float | int | str | bool] = {FINGERPRINT_KEY: fingerprint}
    for eval_name, pools in report["results"].items():
        for pool, metrics in pools.items():
            for metric, summary in metrics.items():
                key = SEPARATOR.join((eval_name, pool, metric))
                metadata[key] = round(summary["mean"], 6)
                metadata[f"{key}_std"] = round(summary["std"], 6)
    for pool, info in report["pools"].items():
        if "pairs_trained" in info:
            metadata[f"pairs_trained{SEPARATOR}{pool}"] = int(info["pairs_trained"])
        for count, value in info.get("contamination", {}).items():
            metadata[f"contamination{SEPARATOR}{pool}{SEPARATOR}{count}"] = int(value)
    sensitivity = report.get("sensitivity")
    if sensitivity:
        for name in ("passed", "clean_mean", "shuffled_mean", "margin", "spread"):
            value = sensitivity[name]
            metadata[f"sensitivity{SEPARATOR}{name}"] = value if isinstance(value, bool) else round(float(value), 6)
    metadata["seconds"] = round(float(report["seconds"]["total"]), 3)
    return metadata


def history_rows(recorded_at: float, metadata: Mapping[str, object]) -> list[dict]:
    """Long rows (one per eval set, pool and metric) from one materialization's metadata."""
    fingerprint = str(metadata.get(FINGERPRINT_KEY, "unknown"))
    rows = []
    for key, value in metadata.items():
        parts = key.split(SEPARATOR)
        if len(parts) != 3 or parts[0] in ("contamination", "sensitivity") or parts[2].endswith("_std"):
            continue
        std = metadata.get(f"{key}_std")
        rows.append(
            {
                "recorded_at": float(recorded_at),
                "fingerprint": fingerprint,
                "eval_set": parts[0],
                "pool": parts[1],
                "metric": parts[2],
                "mean": float(value),
                "std": float(std) if std is not None else None,
            }
        )
    return rows


def history_table(records: Iterable[tuple[float, Mapping[str, object]]]) -> pl.DataFrame:
    """All (timestamp, metadata) records as one long table, oldest first."""
    rows = [row for recorded_at, metadata in records for row in history_rows(recorded_at, metadata)]
    return pl.DataFrame(rows, schema=HISTORY_SCHEMA).sort("recorded_at", "eval_set", "pool", "metric")


def history_markdown(table: pl.DataFrame, metric: str = "mean_r@5") -> str:
    """One line per recipe version (its latest eval), one column per eval set and pool:
    'mean ± std' of `metric`. What the eval history view shows."""
    latest = (
        table.filter(pl.col("metric") == metric)
        .sort("recorded_at")
        .group_by("fingerprint", "eval_set", "pool", maintain_order=True)
        .last()
    )
    if latest.is_empty():
        return f"no eval recorded {metric} yet"
    columns = sorted({(e, p) for e, p in latest.select("eval_set", "pool").iter_rows()})
    versions = latest.group_by("fingerprint").agg(pl.col("recorded_at").max()).sort("recorded_at")
    cells = {(r["fingerprint"], r["eval_set"], r["pool"]): r for r in latest.iter_rows(named=True)}
    header = ["recipe", *(f"{e}/{p}" for e, p in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for fingerprint in versions["fingerprint"].to_list():
        row = [fingerprint]
        for eval_set, pool in columns:
            cell = cells.get((fingerprint, eval_set, pool))
            row.append("" if cell is None else f"{cell['mean']:.3f} ± {cell['std'] or 0.0:.3f}")
        lines.append("| " + " | ".join(row) + " |")
    return f"{metric} by recipe version (oldest first)\n\n" + "\n".join(lines)
