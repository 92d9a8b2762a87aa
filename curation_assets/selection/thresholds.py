"""The recipe's filter bounds as numbers: percentile bounds resolved over every shard's scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from curation_assets.selection.filters import ResolvedRule, is_percentile, resolve, rules_of


def percentile_columns(steps: Sequence[Any]) -> set[str]:
    """The score columns whose distribution some bound is a percentile of."""
    return {rule.column for rule in rules_of(steps) if is_percentile(rule.lower) or is_percentile(rule.upper)}


def resolve_thresholds(steps: Sequence[Any], scores: pl.DataFrame | None) -> list[ResolvedRule]:
    """`scores` holds every percentile column over all shards (None when no bound is a percentile).
    Quantiles interpolate linearly; NaN scores take no part."""

    def quantile(column: str, q: float) -> float:
        if scores is None or column not in scores.columns:
            raise ValueError(f"a percentile bound on {column} needs its scores over every shard")
        value = scores[column].drop_nans().quantile(q, "linear")
        # No scores at all (every shard failed or none is indexed yet): the bound is undefined, and
        # NaN keeps nothing rather than letting an unscored row through.
        return float("nan") if value is None else float(value)

    return resolve(rules_of(steps), quantile)


def to_payload(rules: Sequence[ResolvedRule]) -> list[dict[str, Any]]:
    return [rule.__dict__ for rule in rules]


def from_payload(payload: Sequence[dict[str, Any]]) -> list[ResolvedRule]:
    return [ResolvedRule(**rule) for rule in payload]
