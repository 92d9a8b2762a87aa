"""One panel per score: its histogram with the recipe's bounds, what each bound drops, its quantiles.

A bound's drops are counted two ways, because both answer a curator's question: on its own (how many
samples this bound alone would remove: what loosening it could win back) and first-failing in recipe
order (what caption/filtered credits to it: a sample failing several rules is credited to the first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from curation_assets.report.format import INLINE_LIMIT, escape, number, share, svg_image
from curation_assets.report.histogram import Bound, histogram_svg
from curation_assets.selection.filters import ResolvedRule

PANEL_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# Fewer bars, then no shading: how a panel with many bounds still fits under the inline limit.
_FALLBACKS = ((30, True), (24, True), (20, False), (12, False))


def rule_bounds(rule: ResolvedRule) -> list[Bound]:
    bounds = []
    if rule.lower is not None:
        bounds.append(Bound(rule.lower, "lower"))
    if rule.upper is not None:
        bounds.append(Bound(rule.upper, "upper", rule.upper_inclusive))
    return bounds


def bound_fails(bound: Bound, column: str) -> pl.Expr:
    """True where a (present) value is beyond the bound, exactly as ResolvedRule.failing compares."""
    value = pl.col(column)
    if bound.side == "lower":
        return value < bound.value
    return value > bound.value if bound.inclusive else value >= bound.value


def missing(column: str, dtype: pl.DataType) -> pl.Expr:
    value = pl.col(column)
    return value.is_null() | value.is_nan() if dtype.is_float() else value.is_null()


def first_failing(samples: pl.DataFrame, rules: Sequence[ResolvedRule]) -> pl.Series:
    """Per sample, the position of the first rule it fails (recipe order), or null: the same test
    and order as filters.decide, so the counts match what caption/filtered records."""
    absent = sorted({rule.column for rule in rules} - set(samples.columns))
    if absent:
        raise ValueError(f"the samples lack columns the rules read: {', '.join(absent)}")
    if not rules:
        return pl.Series("first_rule", [None] * samples.height, dtype=pl.Int32)
    firsts = [
        pl.when(rule.failing(samples.schema[rule.column].is_float())).then(pl.lit(i, pl.Int32))
        for i, rule in enumerate(rules)
    ]
    return samples.select(pl.coalesce(firsts).alias("first_rule")).to_series()


def score_panels(samples: pl.DataFrame, columns: Sequence[str], rules: Sequence[ResolvedRule]) -> dict[str, str]:
    """column -> markdown: an inline SVG histogram with every bound on that column drawn, one line per
    bound ("≥0.28 (image_text_similarity_filter) drops 12 of 400 (3.0 %) on its own; first to fail
    for 9"), the missing values that fail it, and the quantile row. `samples` holds every column in
    `columns` and every column a rule reads. Each panel is kept under format.INLINE_LIMIT when it can
    be, so Dagster shows it on the asset page without a click."""
    first = first_failing(samples, rules)
    total = samples.height
    panels = {}
    for column in columns:
        on_column = [(i, rule) for i, rule in enumerate(rules) if rule.column == column]
        lines = [
            _bound_line(samples, first, i, rule, bound, total) for i, rule in on_column for bound in rule_bounds(rule)
        ]
        lines += [_allowed_line(samples, first, i, rule, total) for i, rule in on_column if rule.allowed is not None]
        if on_column:
            lines += _missing_line(samples, column, first, [i for i, _ in on_column], total)
        else:
            lines.append("no recipe bound on this score")
        lines.append(_quantile_line(samples[column]))
        bounds = [bound for _, rule in on_column for bound in rule_bounds(rule)]
        panels[column] = _fit(column, samples[column], bounds, lines)
    return panels


def _fit(column: str, values: pl.Series, bounds: list[Bound], lines: list[str]) -> str:
    numbers = values.cast(pl.Float64).to_numpy() if values.dtype.is_numeric() else np.empty(0)
    text = "\n\n".join(lines)
    panel = ""
    for bins, shade in _FALLBACKS:
        panel = f"{svg_image(histogram_svg(numbers, bounds, bins, shade), f'{column} histogram')}\n\n{text}"
        if len(panel) < INLINE_LIMIT:
            break
    return panel


def _bound_line(
    samples: pl.DataFrame, first: pl.Series, index: int, rule: ResolvedRule, bound: Bound, total: int
) -> str:
    fails = samples.select(bound_fails(bound, rule.column).fill_null(False)).to_series()
    alone = int(fails.sum())
    credited = int((fails & (first == index).fill_null(False)).sum())
    return (
        f"**{escape(bound.label)}** `{rule.op}` drops **{alone:,}** ({share(alone, total)}) on its own; "
        f"first to fail for {credited:,}"
    )


def _allowed_line(samples: pl.DataFrame, first: pl.Series, index: int, rule: ResolvedRule, total: int) -> str:
    fails = samples.select(~pl.col(rule.column).is_in(list(rule.allowed)).fill_null(False)).to_series()
    alone = int(fails.sum())
    credited = int((fails & (first == index).fill_null(False)).sum())
    allowed = ", ".join(rule.allowed)
    return (
        f"**only {escape(allowed)}** `{rule.op}` drops **{alone:,}** ({share(alone, total)}) on its own; "
        f"first to fail for {credited:,}"
    )


def _missing_line(samples: pl.DataFrame, column: str, first: pl.Series, indexes: list[int], total: int) -> list[str]:
    absent = samples.select(missing(column, samples.schema[column])).to_series()
    count = int(absent.sum())
    if not count:
        return []
    credited = int((absent & first.is_in(indexes).fill_null(False)).sum())
    return [f"{count:,} missing values fail it ({share(count, total)}); first to fail for {credited:,}"]


def _quantile_line(values: pl.Series) -> str:
    numbers = values.cast(pl.Float64).fill_nan(None).drop_nulls() if values.dtype.is_numeric() else pl.Series([])
    if numbers.is_empty():
        return f"n 0 of {values.len():,}: no values"
    quantiles = " · ".join(f"q{round(q * 100):02d} {number(numbers.quantile(q, 'linear'))}" for q in PANEL_QUANTILES)
    nulls = values.len() - numbers.len()
    return f"{quantiles} (n {numbers.len():,}{f', {nulls:,} missing' if nulls else ''})"


def panel_lengths(panels: Mapping[str, str]) -> dict[str, int]:
    """Characters per panel: a test and a check that they stay inline."""
    return {column: len(panel) for column, panel in panels.items()}
