"""Training pairs that duplicate an eval sample are removed before training, and counted.

A pool that contains eval images or eval captions scores well for the wrong reason. Three tests,
each optional: identical image bytes (sha256), a near-identical image (64-bit pHash within a Hamming
distance: re-encodes, resizes, small crops) and the same caption after normalisation (case,
punctuation and spacing ignored). A row caught by several tests counts once in `removed` and once
under each test that caught it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from curation_assets.evaluation.pairs import PairSet
from curation_assets.evaluation.settings import Contamination
from curation_assets.selection.dedup import near_image_pairs

_NON_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class ContaminationCounts:
    pairs_in: int
    by_image_sha256: int
    by_image_phash: int
    by_caption: int
    removed: int

    @property
    def kept(self) -> int:
        return self.pairs_in - self.removed

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "kept": self.kept}


def normalize_caption(text: str) -> str:
    """Lowercase, punctuation and underscores to spaces, whitespace collapsed."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def contaminated(train: PairSet, eval_sets: Sequence[PairSet], settings: Contamination) -> np.ndarray:
    """Per training row, which tests flag it: a (rows, 3) bool array, columns sha256, pHash, caption."""
    flags = np.zeros((len(train), 3), dtype=bool)
    if settings.exact_image:
        eval_hashes = {sha for eval_set in eval_sets for sha in eval_set.image_sha256 if sha is not None}
        flags[:, 0] = [sha is not None and sha in eval_hashes for sha in train.image_sha256]
    if settings.phash_max_distance is not None:
        flags[:, 1] = _near_eval_image(
            train.image_phash, [h for eval_set in eval_sets for h in eval_set.image_phash], settings.phash_max_distance
        )
    if settings.caption:
        eval_captions = {normalize_caption(c) for eval_set in eval_sets for c in eval_set.captions}
        eval_captions.discard("")
        flags[:, 2] = [normalize_caption(c) in eval_captions for c in train.captions]
    return flags


def remove_contaminated(
    train: PairSet, eval_sets: Sequence[PairSet], settings: Contamination
) -> tuple[PairSet, ContaminationCounts]:
    """The training pairs that duplicate no eval sample, and what was removed by which test."""
    flags = contaminated(train, eval_sets, settings)
    removed = flags.any(axis=1)
    counts = ContaminationCounts(
        pairs_in=len(train),
        by_image_sha256=int(flags[:, 0].sum()),
        by_image_phash=int(flags[:, 1].sum()),
        by_caption=int(flags[:, 2].sum()),
        removed=int(removed.sum()),
    )
    return train.take(np.flatnonzero(~removed)), counts


def _near_eval_image(
    train_hashes: Sequence[str | None], eval_hashes: Sequence[str | None], distance: int
) -> np.ndarray:
    """Whether each training pHash lies within `distance` bits of some eval pHash.

    Works on distinct hash values: near_image_pairs links repeated values to their first row only
    (a star), so a training copy of a value that is near an eval image would otherwise be missed.
    """
    eval_set = {h for h in eval_hashes if h is not None}
    eval_values = sorted(eval_set)
    train_values = sorted({h for h in train_hashes if h is not None} - eval_set)
    near = set(eval_set)  # identical hashes are within any distance
    if eval_values and train_values and distance > 0:
        i, j = near_image_pairs(eval_values + train_values, distance)
        cross = (i < len(eval_values)) & (j >= len(eval_values))
        near.update(train_values[k - len(eval_values)] for k in j[cross].tolist())
    return np.asarray([h is not None and h in near for h in train_hashes], dtype=bool)
