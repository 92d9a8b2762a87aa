"""Global selection over the text documents the filters kept: DSIR toward a target text set.

DSIR was made for text pretraining data, and the caption branch's selector runs unchanged on
documents: the same hashed unigram + bigram features, importance log-weights and Gumbel top-k
sampling (selection/dsir.py). One difference to know: a document's log-weight is a sum over its
n-grams, so it grows with length, and long documents that lean toward the target are picked first.
The DSIR paper selected fixed-length chunks; chunk long documents before ingest if that matters.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from curation_assets.recipe import Selectors
from curation_assets.selection.selectors import SelectionReport, select


def select_texts(pool: pl.DataFrame, dsir_selector, target_texts: Callable[[], list[str]]) -> SelectionReport:
    """`pool`: the kept documents (sample_id, shard_id, text); `dsir_selector`: the recipe's
    text.selectors.dsir_selector (None selects everything). Report: sample_id, shard_id, selected,
    dropped_by ("dsir_selector"), and DSIR's KL figures in `notes`."""

    def no_scores(name: str) -> np.ndarray:
        raise AssertionError(f"text selection reads no score ({name})")

    return select(
        pool.select("sample_id", "shard_id", pl.col("text").alias("caption")),
        Selectors(dsir_selector=dsir_selector),
        column=no_scores,
        embeddings=lambda: no_scores("embeddings"),
        target_texts=target_texts,
    )
