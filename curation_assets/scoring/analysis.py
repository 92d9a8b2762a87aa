"""What users read before choosing thresholds: quantiles of every score and their histograms.

The outputs are plain: a polars table, markdown text and PNG bytes, which the Dagster layer attaches
as metadata (markdown with inline images renders in the UI).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, MaxNLocator

from curation_assets.report.format import distinct_numbers, number

DEFAULT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# Lines drawn on histograms: the tails a threshold usually cuts, and the median.
HISTOGRAM_QUANTILES = {"q05": 0.05, "q50": 0.5, "q95": 0.95}


def quantile_name(quantile: float) -> str:
    """0.05 -> "q05", 0.5 -> "q50", 0.999 -> "q99.9"."""
    percent = round(quantile * 100, 6)
    return f"q{int(percent):02d}" if percent == int(percent) else f"q{percent:g}"


def score_summary(
    frame: pl.DataFrame, columns: Sequence[str], quantiles: Sequence[float] = DEFAULT_QUANTILES
) -> pl.DataFrame:
    """One row per score column: score, count (non-null), nulls, mean, std, min, q.., max.

    NaN counts as null (a model that produced NaN produced no score). Quantiles interpolate linearly
    between the nearest values. A column without any value gets count 0 and null statistics.
    """
    for column in columns:
        dtype = frame.schema[column]
        if not (dtype.is_numeric() or dtype == pl.Boolean):
            raise ValueError(f"score column {column!r} is {dtype}, not numeric")
    statistics = {
        "count": lambda value: value.count(),
        "nulls": lambda value: value.null_count(),
        "mean": lambda value: value.mean(),
        "std": lambda value: value.std(),
        "min": lambda value: value.min(),
        **{quantile_name(q): (lambda value, q=q: value.quantile(q, interpolation="linear")) for q in quantiles},
        "max": lambda value: value.max(),
    }
    # One select for every column and statistic, so polars computes them in a single parallel pass.
    values = {column: pl.col(column).cast(pl.Float64).fill_nan(None) for column in columns}
    aggregations = [
        statistic(value).alias(f"{column}\x00{name}")
        for column, value in values.items()
        for name, statistic in statistics.items()
    ]
    result = frame.select(aggregations).row(0, named=True) if aggregations else {}
    schema = {"score": pl.String, "count": pl.Int64, "nulls": pl.Int64} | {
        name: pl.Float64 for name in statistics if name not in ("count", "nulls")
    }
    rows = [{"score": column} | {name: result[f"{column}\x00{name}"] for name in statistics} for column in columns]
    return pl.DataFrame(rows, schema=schema)


def summary_markdown(summary: pl.DataFrame) -> str:
    """The summary as a markdown table, floats rounded to 4 significant digits."""
    rounded = summary.with_columns(pl.col(pl.Float32, pl.Float64).round_sig_figs(4))
    with pl.Config(
        tbl_formatting="MARKDOWN",
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        tbl_rows=-1,
        tbl_cols=-1,
        tbl_width_chars=10_000,  # polars keeps it in 16 bits
        fmt_str_lengths=1_000,
        fmt_float="mixed",
        float_precision=None,
    ):
        return str(rounded)


def histogram_png(
    values: np.ndarray,
    title: str,
    bins: int = 40,
    quantiles: dict[str, float] | None = None,
    bounds: Sequence[tuple[str, float]] = (),
) -> bytes:
    """A 400x250 px PNG histogram of the finite values, with a dashed line at each quantile
    (name -> quantile in [0, 1]) labelled with its name and value, and a solid line at each bound
    (label, value), e.g. ("min 0.28", 0.28). The title notes how many values were null / NaN /
    infinite and left out; without any finite value the plot says "no values".

    Readable at its size: at most 5 x ticks written in full (no "1e-6+5.03e-1" offset axis, which
    constant smoke scores used to get), a constant drawn as one bar in a padded range, labels 8 pt.

    Built on a bare matplotlib Figure (Agg canvas) rather than pyplot: no global figure registry to
    leak into or close, no display needed, and safe to call from several threads.
    """
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    dropped = len(values) - len(finite)
    figure = Figure(figsize=(4, 2.5), dpi=100, layout="constrained")
    axes = figure.subplots()
    subtitle = f"n={len(finite):,}" + (f", {dropped:,} null/NaN/inf left out" if dropped else "")
    axes.set_title(f"{title}\n{subtitle}", fontsize=9)
    axes.tick_params(labelsize=8)
    if len(finite) == 0:
        axes.text(0.5, 0.5, "no values", ha="center", va="center", transform=axes.transAxes, fontsize=10)
        axes.set_xticks([])
        axes.set_yticks([])
    else:
        low, high = float(finite.min()), float(finite.max())
        if high - low <= max(abs(low), abs(high), 1.0) * 1e-9:
            # A constant: give it a visible range instead of letting matplotlib zoom into rounding noise.
            pad = max(abs(low) * 0.05, 0.5)
            low, high = low - pad, high + pad
        axes.hist(finite, bins=bins, range=(low, high), color="#4c72b0")
        axes.xaxis.set_major_locator(MaxNLocator(nbins=5))
        axes.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        axes.xaxis.set_major_formatter(_DistinctTicks())
        marks = [(float(np.quantile(finite, q)), label, "--", "#c44e52") for label, q in (quantiles or {}).items()]
        marks += [(value, label, "-", "#2f2f2f") for label, value in bounds if low <= value <= high]
        merged = _merge_close(marks, (high - low) * 0.04)
        values = distinct_numbers([position for position, *_ in merged])
        for (position, label, style, color), value in zip(merged, values):
            # Quantile lines carry their value (what a threshold needs); bound labels already do.
            _marked_line(axes, position, f"{label} {value}" if style == "--" else label, style, color)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


class _DistinctTicks(Formatter):
    """Tick labels with just enough digits that neighbouring ticks differ (0.51110, 0.51112, not
    0.5111 twice), written in full: never an offset or scientific axis."""

    def format_ticks(self, values):
        return distinct_numbers([float(value) for value in values])

    def __call__(self, value, pos=None):
        return number(value)


def _merge_close(marks: list[tuple[float, str, str, str]], distance: float) -> list[tuple[float, str, str, str]]:
    """Lines closer than `distance` share one label ("q05 / q50 / q95 0.5031"), so labels never
    overprint, which they did for constant scores. A group holding a quantile is drawn dashed."""
    merged: list[tuple[float, str, str, str]] = []
    for position, label, style, color in sorted(marks, key=lambda mark: mark[0]):
        if merged and position - merged[-1][0] <= distance:
            first, labels, first_style, first_color = merged[-1]
            dashed = "--" if "--" in (style, first_style) else first_style
            merged[-1] = (first, f"{labels} / {label}", dashed, first_color if first_style == dashed else color)
        else:
            merged.append((position, label, style, color))
    return merged


def _marked_line(axes, position: float, label: str, style: str, color: str) -> None:
    axes.axvline(position, color=color, linestyle=style, linewidth=1)
    # x in data units, y in axes units: the label (with the value, what a threshold needs) sits at
    # the top of its line, on a white box so the bars do not hide it.
    axes.text(
        position,
        0.97,
        label,
        rotation=90,
        va="top",
        ha="center",
        fontsize=8,
        color=color,
        transform=axes.get_xaxis_transform(),
        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1},
    )


def png_markdown(png: bytes, alt: str) -> str:
    """An inline markdown image (data URI), which Dagster's markdown metadata renders."""
    alt = alt.replace("[", "(").replace("]", ")")
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def histograms_markdown(frame: pl.DataFrame, columns: Sequence[str], bins: int = 40, rules: Sequence = ()) -> str:
    """A heading and a histogram (with q05 / q50 / q95 lines) per score column, and a solid line at
    each bound of `rules` (selection/filters.py ResolvedRule) on that column."""
    sections = []
    for column in columns:
        values = frame[column].cast(pl.Float64).to_numpy()
        bounds = [mark for rule in rules if rule.column == column for mark in _rule_marks(rule)]
        png = histogram_png(values, column, bins=bins, quantiles=HISTOGRAM_QUANTILES, bounds=bounds)
        sections.append(f"### {column}\n\n{png_markdown(png, column)}")
    return "\n\n".join(sections)


def _rule_marks(rule) -> list[tuple[str, float]]:
    marks = [(f"min {number(rule.lower)}", rule.lower)] if rule.lower is not None else []
    if rule.upper is not None:
        marks.append((f"max {number(rule.upper)}{'' if rule.upper_inclusive else ' (excl.)'}", rule.upper))
    return marks
