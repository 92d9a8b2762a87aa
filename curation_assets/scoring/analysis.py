"""Quantiles of every score, as a polars table and its markdown (the histograms and what each bound
drops are in report/)."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

DEFAULT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


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
