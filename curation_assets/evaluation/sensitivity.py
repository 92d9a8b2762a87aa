"""Can the proxy tell good data from bad here? Score the curated pool against a copy of it with part
of its captions moved to other images; a proxy that cannot separate the two by more than its own
seed spread says nothing about finer differences between recipes either.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from curation_assets.evaluation.proxy import TrainingView


def shuffled_view(groups: np.ndarray, fraction: float, seed: int) -> TrainingView:
    """A view of a pool where `fraction` of the rows get the caption of a row showing another image.

    Chosen rows are ordered by image (groups in random order) and their captions rotated by the
    largest image's caption count, so a caption never lands on another row of its own image (five
    COCO captions of one photo stay wrong when swapped among themselves otherwise). When one image
    holds more than half the chosen rows that cannot be guaranteed, and a plain rotation is used.
    """
    groups = np.asarray(groups, dtype=np.int64)
    size = len(groups)
    rng = np.random.default_rng([seed, 0x5A0FF1E])
    chosen = rng.choice(size, size=int(round(fraction * size)), replace=False)
    text_rows = np.arange(size, dtype=np.int64)
    if len(chosen) < 2:
        return TrainingView(np.arange(size, dtype=np.int64), text_rows)
    group_order = rng.permutation(groups.max() + 1)
    chosen = chosen[np.lexsort((rng.random(len(chosen)), group_order[groups[chosen]]))]
    largest = int(np.bincount(groups[chosen]).max())
    shift = largest if len(chosen) >= 2 * largest else 1
    text_rows[chosen] = np.roll(chosen, shift)
    return TrainingView(np.arange(size, dtype=np.int64), text_rows)


@dataclass(frozen=True)
class SensitivityResult:
    passed: bool
    metric: str
    shuffle_fraction: float
    clean_mean: float
    clean_std: float
    shuffled_mean: float
    shuffled_std: float
    margin: float  # clean_mean - shuffled_mean
    spread: float  # clean_std + shuffled_std: the margin must exceed it
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


def sensitivity_check(
    clean: np.ndarray, shuffled: np.ndarray, metric: str, shuffle_fraction: float
) -> SensitivityResult:
    """Pass when the clean pool's mean beats the shuffled copy's by more than the sum of their seed
    standard deviations, i.e. the two mean +- std intervals do not overlap."""
    clean, shuffled = np.asarray(clean, dtype=np.float64), np.asarray(shuffled, dtype=np.float64)
    if len(clean) < 2 or len(shuffled) < 2:
        raise ValueError("the sensitivity check needs at least two seeds on each side to measure a spread")
    clean_mean, shuffled_mean = float(clean.mean()), float(shuffled.mean())
    clean_std, shuffled_std = float(clean.std(ddof=1)), float(shuffled.std(ddof=1))
    margin, spread = clean_mean - shuffled_mean, clean_std + shuffled_std
    passed = margin > spread
    summary = (
        f"{metric}: clean {clean_mean:.3f} ± {clean_std:.3f} vs {shuffle_fraction:.0%} captions shuffled "
        f"{shuffled_mean:.3f} ± {shuffled_std:.3f} (margin {margin:.3f}, seed spread {spread:.3f})"
    )
    message = (
        summary
        if passed
        else summary + ": the proxy cannot tell clean from shuffled captions on this data, so its comparisons "
        "between pools mean little (more eval data, more steps or more seeds may help)"
    )
    return SensitivityResult(
        passed, metric, shuffle_fraction, clean_mean, clean_std, shuffled_mean, shuffled_std, margin, spread, message
    )
