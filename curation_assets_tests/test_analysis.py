"""Score summaries and markdown tables on small known distributions (the histograms: test_report.py)."""

import io
import re

import numpy as np
import polars as pl
import pytest
from PIL import Image

from curation_assets.scoring.analysis import quantile_name, score_summary, summary_markdown

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SUMMARY_COLUMNS = ["score", "count", "nulls", "mean", "std", "min", "q05", "q25", "q50", "q75", "q95", "max"]


@pytest.fixture
def scores() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "uniform": list(range(101)),  # 0..100: the q-th quantile is 100 q
            "sparse": [None] * 98 + [1.0, 2.0, 3.0],
            "missing": pl.Series([None] * 101, dtype=pl.Float32),
            "with_nan": [float("nan")] * 50 + [0.5] * 51,
            "caption": ["text"] * 101,
        }
    )


def test_quantiles_of_a_uniform_range(scores):
    row = score_summary(scores, ["uniform"]).row(0, named=True)
    assert list(row) == SUMMARY_COLUMNS
    assert row["score"] == "uniform"
    assert (row["count"], row["nulls"]) == (101, 0)
    assert (row["min"], row["q05"], row["q25"], row["q50"], row["q75"], row["q95"], row["max"]) == (
        0,
        5,
        25,
        50,
        75,
        95,
        100,
    )
    assert row["mean"] == 50
    assert row["std"] == pytest.approx(np.std(np.arange(101), ddof=1))


def test_nulls_and_nan_are_counted_not_summarised(scores):
    summary = score_summary(scores, ["sparse", "with_nan"])
    sparse, with_nan = summary.rows(named=True)
    assert (sparse["count"], sparse["nulls"], sparse["mean"], sparse["q50"]) == (3, 98, 2.0, 2.0)
    assert (with_nan["count"], with_nan["nulls"], with_nan["max"]) == (51, 50, 0.5)


def test_all_null_column_gives_count_zero_and_null_statistics(scores):
    row = score_summary(scores, ["missing"]).row(0, named=True)
    assert (row["count"], row["nulls"]) == (0, 101)
    assert all(row[name] is None for name in SUMMARY_COLUMNS[3:])


def test_custom_quantiles_name_their_columns(scores):
    summary = score_summary(scores, ["uniform"], quantiles=(0.1, 0.999))
    assert summary.columns == ["score", "count", "nulls", "mean", "std", "min", "q10", "q99.9", "max"]
    assert summary["q10"][0] == 10
    assert summary["q99.9"][0] == pytest.approx(99.9)
    assert quantile_name(0.5) == "q50"


def test_one_row_per_column_in_order(scores):
    assert score_summary(scores, ["sparse", "uniform"])["score"].to_list() == ["sparse", "uniform"]
    assert score_summary(scores, []).columns == SUMMARY_COLUMNS


def test_non_numeric_column_is_refused(scores):
    with pytest.raises(ValueError, match="caption"):
        score_summary(scores, ["caption"])


def test_markdown_table(scores):
    table = summary_markdown(score_summary(scores, ["uniform", "missing"]))
    lines = table.splitlines()
    assert [cell.strip() for cell in lines[0].strip("|").split("|")] == SUMMARY_COLUMNS
    assert re.fullmatch(r"\|(-+\|)+", lines[1])
    assert len(lines) == 4
    assert lines[2].startswith("| uniform")
    assert "null" in lines[3]  # the all-null column shows null statistics


def test_markdown_rounds_to_four_significant_digits():
    summary = score_summary(pl.DataFrame({"x": [0.000123456, 123456.7]}), ["x"])
    table = summary_markdown(summary)
    assert "0.0001235" in table
    assert "123500.0" in table
    assert "123456.7" not in table


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        return image.size
