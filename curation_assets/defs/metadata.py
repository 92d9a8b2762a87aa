"""Small renderers for what the Dagster UI shows next to a materialization."""

import polars as pl

SMOKE_WARNING = "smoke profile: tiny random-init model; these scores carry no meaning"


def markdown_table(frame: pl.DataFrame, rows: int = 8) -> str:
    """The first rows of a table as markdown (polars renders it)."""
    if frame.is_empty():
        return "_no rows_"
    with pl.Config(
        tbl_formatting="MARKDOWN",
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        fmt_str_lengths=60,
        tbl_rows=rows,
    ):
        return str(frame.head(rows))
