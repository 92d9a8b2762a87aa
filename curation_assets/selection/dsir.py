"""Data Selection with Importance Resampling (DSIR, Xie et al. 2023): pick raw texts whose hashed
n-gram statistics look like a target set's (e.g. captions like a high-quality reference corpus).

Both sets are featurised the same way (hashed unigram + bigram counts); each raw row gets the
log-likelihood ratio of its n-grams under a bag-of-hashed-n-grams model of the target vs the raw
data, and rows are sampled without replacement with probability proportional to that ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer


@dataclass(frozen=True)
class DsirResult:
    indices: np.ndarray  # selected raw rows, ascending
    log_weights: np.ndarray  # (len(raw),) importance log-weight of every raw row
    kl_before: float  # KL(target || raw) over hashed n-gram buckets
    kl_after: float  # KL(target || selected)
    kl_reduction: float  # kl_before - kl_after: how much closer to the target the selection is


def dsir_select(
    raw_texts: list[str],
    target_texts: list[str],
    count: int,
    num_buckets: int = 10_000,
    ngram_range: tuple[int, int] = (1, 2),
    seed: int = 0,
) -> DsirResult:
    """`count` raw rows resampled toward the target distribution.

    log-weight(row) = counts(row) . (log p_target - log p_raw), with p_* the add-one-smoothed
    bucket frequencies; sampling without replacement uses the Gumbel top-k trick (the top `count`
    of log-weight + Gumbel noise are a sample without replacement proportional to the weights).
    """
    if not 0 <= count <= len(raw_texts):
        raise ValueError(f"count {count} is outside 0..{len(raw_texts)}")
    if not target_texts:
        raise ValueError("the target set is empty")
    vectorizer = HashingVectorizer(
        n_features=num_buckets, ngram_range=ngram_range, alternate_sign=False, norm=None, dtype=np.float64
    )
    raw_counts = _hashed_counts(vectorizer, raw_texts)
    target_counts = _hashed_counts(vectorizer, target_texts)
    log_p_raw = np.log(_bucket_distribution(raw_counts))
    log_p_target = np.log(_bucket_distribution(target_counts))
    log_weights = np.asarray(raw_counts @ (log_p_target - log_p_raw)).ravel()

    gumbel = np.random.default_rng(seed).gumbel(size=len(raw_texts))
    keys = log_weights + gumbel
    chosen = np.argpartition(-keys, count - 1)[:count] if 0 < count < len(keys) else np.arange(count)
    indices = np.sort(chosen)

    p_target = np.exp(log_p_target)
    kl_before = _kl(p_target, np.exp(log_p_raw))
    kl_after = _kl(p_target, _bucket_distribution(raw_counts[indices]))
    return DsirResult(
        indices=indices,
        log_weights=log_weights,
        kl_before=kl_before,
        kl_after=kl_after,
        kl_reduction=kl_before - kl_after,
    )


def _hashed_counts(vectorizer: HashingVectorizer, texts: list[str]) -> sparse.csr_matrix:
    if not texts:  # HashingVectorizer cannot transform an empty list
        return sparse.csr_matrix((0, vectorizer.n_features))
    return vectorizer.transform(texts).tocsr()


def _bucket_distribution(counts: sparse.spmatrix) -> np.ndarray:
    """Add-one-smoothed frequency of each hash bucket over all rows."""
    totals = np.asarray(counts.sum(axis=0)).ravel() + 1.0
    return totals / totals.sum()


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.sum(p * (np.log(p) - np.log(q))))
