"""Pure decisions of the recaption stage, on small tables.

- Entry: the band score lies in [band.min, band.max], the image passes every image condition
  (filter operators on image scores), and, optionally, dedup did not drop the sample.
- Choice: among the candidates of one image, the highest CLIP similarity wins (first on ties).
- Keep: the winner replaces the caption only if its similarity clears `keep_min_score` (strictly
  greater, as Better Synth's "> 0.28") and beats the original's similarity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from curation_assets.recipe import Recaption
from curation_assets.selection.filters import ResolvedRule


def entrants(scores: pl.DataFrame, spec: Recaption, image_rules: Sequence[ResolvedRule]) -> pl.DataFrame:
    """The rows of `scores` (sample_id, the band column, the image rules' columns, optionally
    `duplicate_of`) that enter recaptioning."""
    band = pl.col(spec.band.field_key)
    condition = band.is_not_null() & ~band.is_nan() & band.is_between(spec.band.min, spec.band.max)
    for rule in image_rules:
        condition &= ~rule.failing(scores.schema[rule.column].is_float())
    if spec.skip_duplicates and "duplicate_of" in scores.columns:
        condition &= pl.col("duplicate_of").is_null()
    return scores.filter(condition)


def best_candidates(candidate_scores: np.ndarray) -> np.ndarray:
    """Index of the best candidate per row of an (images, candidates) score matrix."""
    return np.argmax(candidate_scores, axis=1)


def keep_new_caption(
    original_score: np.ndarray, new_score: np.ndarray, keep_min_score: float
) -> tuple[np.ndarray, list[str]]:
    """Whether each new caption replaces its original, and why (or why not)."""
    clears = new_score > keep_min_score
    improves = new_score > original_score
    reasons = [
        "kept: clears the bar and beats the original" if c and i
        else ("below keep_min_score" if not c else "no better than the original")
        for c, i in zip(clears, improves)
    ]  # fmt: skip
    return clears & improves, reasons


def recaption_table(
    entered: pl.DataFrame,
    candidates: list[list[str]],
    candidate_scores: np.ndarray,
    keep_min_score: float,
    captioner: str,
    band_column: str = "clip_similarity",
) -> pl.DataFrame:
    """One row per entrant with full provenance: original and new caption, the candidates and
    their scores, which model wrote them, scores before and after, and the keep decision."""
    best = best_candidates(candidate_scores) if len(candidates) else np.zeros(0, dtype=int)
    new_scores = (
        candidate_scores[np.arange(len(best)), best].astype(np.float32) if len(best) else np.zeros(0, np.float32)
    )
    original_scores = entered[band_column].to_numpy().astype(np.float32)
    kept, reasons = keep_new_caption(original_scores, new_scores, keep_min_score)
    return pl.DataFrame(
        {
            "sample_id": entered["sample_id"],
            "original_caption": entered["caption"],
            "new_caption": [row[i] for row, i in zip(candidates, best)],
            "candidates": candidates,
            "candidate_scores": [list(map(float, row)) for row in candidate_scores] if len(best) else [],
            "score_before": original_scores,
            "score_after": new_scores,
            "captioner": [captioner] * len(best),
            "kept": kept,
            "decision": reasons,
        },
        schema={
            "sample_id": pl.String, "original_caption": pl.String, "new_caption": pl.String,
            "candidates": pl.List(pl.String), "candidate_scores": pl.List(pl.Float32), "score_before": pl.Float32,
            "score_after": pl.Float32, "captioner": pl.String, "kept": pl.Boolean, "decision": pl.String,
        },
    )  # fmt: skip
