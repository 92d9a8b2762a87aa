"""Global selectors over the rows the filters kept: top-k by a score, coreset, DSIR.

Each selector narrows the pool left by the one before it, in the recipe's order; the result says,
for every kept row, whether it was selected and which selector let it go otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from curation_assets.recipe import CoresetSelector, DsirSelector, Selectors, TopkSpecifiedFieldSelector


@dataclass
class SelectionReport:
    frame: pl.DataFrame  # sample_id, selected, dropped_by
    notes: dict[str, float] = field(default_factory=dict)  # e.g. DSIR's KL reduction


def topk_indices(values: np.ndarray, spec: TopkSpecifiedFieldSelector) -> np.ndarray:
    count = spec.topk if spec.topk is not None else round(spec.top_ratio * len(values))
    count = min(count, len(values))
    order = np.argsort(-values if spec.reverse else values, kind="stable")
    return np.sort(order[:count])


def load_target_texts(spec: DsirSelector, recipe_dir: Path) -> list[str]:
    path = Path(spec.target) if Path(spec.target).is_absolute() else recipe_dir / spec.target
    if not path.exists():
        raise FileNotFoundError(
            f"DSIR target {path} does not exist (selectors.dsir_selector.target, relative to the recipe)"
        )
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if path.suffix == ".jsonl":
        return [json.loads(line)["text"] for line in lines]
    return lines


def select(
    pool: pl.DataFrame,
    spec: Selectors,
    column: Callable[[str], np.ndarray],
    embeddings: Callable[[], np.ndarray],
    target_texts: Callable[[], list[str]],
) -> SelectionReport:
    """`pool`: the kept rows (sample_id, caption). Column / embedding / target loaders are only
    called for the selectors the recipe turns on."""
    from curation_assets.selection.coreset import coreset_select
    from curation_assets.selection.dsir import dsir_select

    alive = np.arange(pool.height)
    dropped_by = np.full(pool.height, None, dtype=object)
    notes: dict[str, float] = {}

    def narrow(chosen_within_alive: np.ndarray, name: str) -> None:
        nonlocal alive
        keep = np.zeros(len(alive), dtype=bool)
        keep[chosen_within_alive] = True
        dropped_by[alive[~keep]] = name
        alive = alive[keep]

    if spec.topk_specified_field_selector and len(alive):
        values = column(spec.topk_specified_field_selector.field_key)[alive]
        narrow(
            topk_indices(
                np.nan_to_num(values, nan=-np.inf if spec.topk_specified_field_selector.reverse else np.inf),
                spec.topk_specified_field_selector,
            ),
            "topk_specified_field_selector",
        )
    if spec.coreset_selector and len(alive):
        coreset: CoresetSelector = spec.coreset_selector
        chosen = coreset_select(
            embeddings()[alive], fraction=coreset.fraction, num_clusters=min(coreset.num_clusters, len(alive))
        )
        narrow(chosen, "coreset_selector")
    if spec.dsir_selector and len(alive):
        dsir = spec.dsir_selector
        texts = pool["caption"].to_list()
        result = dsir_select(
            [texts[i] for i in alive], target_texts(), round(dsir.fraction * len(alive)), num_buckets=dsir.num_buckets
        )
        notes.update(
            {
                "dsir_kl_before": result.kl_before,
                "dsir_kl_after": result.kl_after,
                "dsir_kl_reduction": result.kl_reduction,
            }
        )
        narrow(result.indices, "dsir_selector")

    frame = (
        pool.select("sample_id", "shard_id")
        .with_columns(pl.Series("dropped_by", dropped_by.tolist(), dtype=pl.String))
        .with_columns(pl.col("dropped_by").is_null().alias("selected"))
    )
    return SelectionReport(frame.select("sample_id", "shard_id", "selected", "dropped_by"), notes)
