"""The invariants the asset checks assert, as pure functions over tables: every row accounted for,
every score table covering its shard, every valid row decided."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class RowAccount:
    shard: str
    rows_in: int  # counted from the shard by a route independent of its reader
    valid: int
    quarantined: int
    duplicate_sample_ids: int

    @property
    def unaccounted(self) -> int:
        return self.rows_in - self.valid - self.quarantined

    @property
    def balanced(self) -> bool:
        return self.unaccounted == 0 and self.duplicate_sample_ids == 0

    def describe(self) -> str:
        return f"{self.shard} ({self.unaccounted:+d} rows, {self.duplicate_sample_ids} duplicate ids)"


def account_for_rows(shard: str, rows_in: int, valid_ids: pl.Series, quarantined_ids: pl.Series) -> RowAccount:
    ids = pl.concat([valid_ids, quarantined_ids])  # (Series.append would extend valid_ids in place)
    return RowAccount(shard, rows_in, valid_ids.len(), quarantined_ids.len(), ids.len() - ids.n_unique())


def coverage_problems(
    shard: str, table: pl.DataFrame, expected_ids: pl.Series, columns: Sequence[str], id_column: str = "sample_id"
) -> str | None:
    """What is wrong with a score table of one shard, or None: it must hold exactly the shard's valid
    ids (samples, or the images or text elements of its documents), each once, with no null or NaN in
    any of `columns`."""
    ids = table[id_column]
    missing = int((~expected_ids.is_in(ids.implode())).sum())
    extra = int((~ids.is_in(expected_ids.implode())).sum()) + (ids.len() - ids.n_unique())
    present = [column for column in columns if column in table.columns]
    nulls = sum(table[column].null_count() for column in present)
    nans = sum(int(table[column].is_nan().sum()) for column in present if table.schema[column].is_float())
    if missing or extra or nulls or nans:
        return f"{shard}: {missing} missing, {extra} extra, {nulls} null, {nans} NaN"
    return None


def decision_problems(shard: str, decisions: pl.DataFrame, valid_ids: pl.Series) -> str | None:
    """kept + dropped = valid input rows, each once, and every drop names a rule and a value."""
    dropped = decisions.filter(~pl.col("kept"))
    unexplained = dropped.filter(pl.col("drop_rule").is_null() | pl.col("drop_value").is_null()).height
    same_rows = decisions.height == valid_ids.len() and decisions["sample_id"].sort().equals(valid_ids.sort())
    if not same_rows or unexplained:
        return f"{shard}: {decisions.height} decisions for {valid_ids.len()} rows, {unexplained} drops without a reason"
    return None
