"""What the mix asset shows in the UI: target vs realized ratio in samples and tokens, counts and
repeats per kind, and the warnings of short pools."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from curation_assets.mix.budget import Plan
from curation_assets.mix.spec import Mix


@dataclass(frozen=True)
class PoolFigures:
    samples: int
    tokens: int | None  # None when the pool has no token counts
    unscored: int  # samples drawn last for want of a usable weight


def build_report(drawn: dict[str, pl.DataFrame], spec: Mix, plan: Plan, pools: dict[str, PoolFigures]) -> dict:
    """A JSON-ready description of the mix; `drawn`: each kind's rows of the mix (mix schema)."""
    shares = spec.target_shares()
    has_tokens = all(pool.tokens is not None for pool in pools.values()) and not any(
        frame["tokens"].null_count() for frame in drawn.values()
    )
    figures = {}
    for kind, frame in drawn.items():
        # Repeats run 0, 1, ... per sample, so repeat 0 counts the distinct samples: no string hashing.
        by_repeat = frame["repeat_index"].value_counts(sort=False, name="samples").sort("repeat_index")
        figures[kind] = {
            "samples": frame.height,
            "unique_samples": int((frame["repeat_index"] == 0).sum()),
            "tokens": int(frame["tokens"].sum()) if has_tokens else None,
            "samples_by_repeat": {str(r): n for r, n in by_repeat.iter_rows()},
        }
    total_samples = sum(row["samples"] for row in figures.values())
    total_tokens = sum(row["tokens"] for row in figures.values()) if has_tokens else None

    kinds = {}
    for kind, pool in pools.items():
        row = figures[kind]
        kinds[kind] = {
            "target_share": round(shares.get(kind, 0.0), 6),
            "target": plan.targets.get(kind, 0),
            "realized_share_samples": _share(row["samples"], total_samples),
            "realized_share_tokens": _share(row["tokens"], total_tokens),
            "samples": row["samples"],
            "unique_samples": row["unique_samples"],
            "tokens": row["tokens"],
            "pool_samples": pool.samples,
            "pool_tokens": pool.tokens,
            "max_repeat": spec.repeat_limit(kind),
            "repeats_used": len(row["samples_by_repeat"]),
            "samples_by_repeat": row["samples_by_repeat"],
            "weighted_by": spec.weight_column(kind),
            "unscored": pool.unscored,
        }
    return {
        "unit": spec.unit,
        "seed": spec.seed,
        "tolerance": spec.tolerance,
        "budget": {
            "requested": spec.budget,
            "used": plan.total,
            "largest_at_target_ratio": plan.feasible,
            "bounded_by": plan.bounded_by,
            "when_short": spec.when_short,
        },
        "totals": {
            "samples": total_samples,
            "unique_samples": sum(row["unique_samples"] for row in figures.values()),
            "tokens": total_tokens,
        },
        "kinds": kinds,
        "shortfalls": plan.shortfalls,
        "warnings": plan.warnings,
    }


def _share(part: int | None, whole: int | None) -> float | None:
    if part is None or whole is None:
        return None
    return round(part / whole, 6) if whole else 0.0


def report_markdown(report: dict) -> str:
    """The report as a markdown table plus warnings, for the asset's UI metadata."""
    unit, budget = report["unit"], report["budget"]
    if budget["bounded_by"] is None:
        asked = "no mixed kind has a sample"
    elif budget["requested"] is None:
        asked = f"the largest within max_repeat, set by the {budget['bounded_by']} pool"
    else:
        asked = (
            f"requested {budget['requested']:,}; at most {budget['largest_at_target_ratio']:,.0f} keep the ratio, "
            f"set by the {budget['bounded_by']} pool"
        )
    lines = [
        f"Mix counted in **{unit}**: {budget['used']:,.0f} {unit} ({asked}), seed {report['seed']}.",
        "",
        "| kind | target share | realized (samples) | realized (tokens) | samples | unique | tokens | pool | "
        "repeats used / max |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for kind, row in report["kinds"].items():
        tokens_share = "n/a" if row["realized_share_tokens"] is None else f"{row['realized_share_tokens']:.1%}"
        tokens = "n/a" if row["tokens"] is None else f"{row['tokens']:,}"
        lines.append(
            f"| {kind} | {row['target_share']:.1%} | {row['realized_share_samples']:.1%} | {tokens_share} | "
            f"{row['samples']:,} | {row['unique_samples']:,} | {tokens} | {row['pool_samples']:,} | "
            f"{row['repeats_used']} / {row['max_repeat']} |"
        )
    if report["warnings"]:
        lines += ["", "**Warnings**", *(f"- {warning}" for warning in report["warnings"])]
    return "\n".join(lines)
