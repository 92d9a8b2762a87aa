"""The mix's asset checks as pure functions: each says passed or not, and why, with numbers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from curation_assets.mix.keys import id_hashes, mix64


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict = field(default_factory=dict)


def ratio_within_tolerance(report: dict) -> CheckOutcome:
    """Every kind's realized share (in the mix's unit) within the recipe's tolerance of its target."""
    unit, tolerance = report["unit"], report["tolerance"]
    gaps = {}
    for kind, row in report["kinds"].items():
        realized = row[f"realized_share_{unit}"]
        gaps[kind] = round(abs((realized or 0.0) - row["target_share"]), 6)
    worst = max(gaps, key=gaps.get, default=None)
    passed = worst is None or gaps[worst] <= tolerance
    if worst is None:
        return CheckOutcome(True, "no kind is mixed", {"gaps": gaps})
    row = report["kinds"][worst]
    verdict = "within" if passed else "outside"
    return CheckOutcome(
        passed,
        f"largest gap: {worst} at {row[f'realized_share_{unit}'] or 0:.2%} of {unit} vs target "
        f"{row['target_share']:.2%} ({gaps[worst]:.2%}), {verdict} the tolerance of {tolerance:.2%}",
        {"gaps": gaps, "tolerance": tolerance, "unit": unit},
    )


def every_sample_from_pool(mix: pl.DataFrame, pools: Mapping[str, pl.DataFrame]) -> CheckOutcome:
    """Every mixed row names a (sample id, shard) that is in its kind's curated pool."""
    stray_rows = []
    for kind in mix["kind"].unique().sort().to_list():
        rows = mix.filter(pl.col("kind") == kind)
        if kind not in pools:
            stray_rows.append(rows)
            continue
        # One 64-bit key per (sample id, shard): an anti join on integers, not on two string columns.
        pool_keys = pl.DataFrame({"_key": _row_keys(pools[kind])})
        keyed = rows.with_columns(pl.Series("_key", _row_keys(rows)))
        stray_rows.append(keyed.join(pool_keys, on="_key", how="anti").drop("_key"))
    stray = pl.concat(stray_rows).select("sample_id", "kind", "shard_id").unique() if stray_rows else mix.clear()
    if stray.height == 0:
        return CheckOutcome(True, f"all {mix.height:,} mixed rows come from a curated pool", {"rows": mix.height})
    examples = stray.sort("sample_id").head(5).to_dicts()
    return CheckOutcome(
        False,
        f"{stray.height:,} mixed samples are in no curated pool of their kind and shard, e.g. {examples}",
        {"strays": stray.height, "examples": examples},
    )


def _row_keys(frame: pl.DataFrame) -> np.ndarray:
    shard = frame["shard_id"].hash().to_numpy()  # polars hash: stable within one process, all a check needs
    return id_hashes(frame["sample_id"]) ^ mix64(shard)


def repeats_within_max(mix: pl.DataFrame, max_repeat: Mapping[str, int]) -> CheckOutcome:
    """No sample appears more than its kind's max_repeat (kinds not named: 1), and its repeat indexes
    run 0, 1, ... without a gap or a duplicate."""
    over, malformed, most, examples = 0, 0, {}, []
    for kind in mix["kind"].unique().sort().to_list():
        rows = mix.filter(pl.col("kind") == kind)
        keys = id_hashes(rows["sample_id"])
        repeats = rows["repeat_index"].to_numpy().astype(np.int64)
        order = np.lexsort((repeats, keys))
        keys, repeats = keys[order], repeats[order]
        # Sorted by sample then repeat, each sample's run must read 0, 1, 2, ...
        starts = np.ones(len(keys), dtype=bool)
        starts[1:] = keys[1:] != keys[:-1]
        expected = np.zeros(len(keys), dtype=np.int64)
        expected[1:] = np.where(starts[1:], 0, repeats[:-1] + 1)
        limit = max_repeat.get(kind, 1)
        beyond = repeats >= limit
        over += int(beyond.sum())
        malformed += int((repeats != expected).sum())
        most[kind] = int(repeats.max() + 1) if len(repeats) else 0
        examples += rows[order[beyond]]["sample_id"].head(3).to_list()
    metadata = {"most_repeats": most, "max_repeat": dict(max_repeat)}
    if not over and not malformed:
        return CheckOutcome(True, f"repeats per kind at most {most} (limits {dict(max_repeat)})", metadata)
    problems = []
    if over:
        problems.append(f"{over:,} rows repeat a sample beyond its kind's max_repeat, e.g. samples {examples[:3]}")
    if malformed:
        problems.append(f"{malformed:,} rows with a duplicate or out-of-sequence repeat index")
    return CheckOutcome(False, "; ".join(problems), {**metadata, "over": over, "malformed": malformed})
