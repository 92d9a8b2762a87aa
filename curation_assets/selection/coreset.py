"""A small, diverse subset of the data by its embeddings, as in "Maybe Only 0.5% Data is Needed"
(Chen et al. 2023): cluster, give every cluster a share of the budget by its size, and inside each
cluster pick points that cover it (k-center greedy) rather than a dense core of look-alikes.

The k-means step (`kmeans_clusters`) is shared with semantic dedup.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

# Rows converted to float32 at a time: stored embeddings are float16, and a full float32 copy of
# 1M x 512 would be 2 GiB.
_CHUNK_ROWS = 65_536


@dataclass(frozen=True)
class Clusters:
    labels: np.ndarray  # (n,) int64 cluster of each row
    centroids: np.ndarray  # (k, d) float32

    def members(self) -> list[np.ndarray]:
        """Row indices of each cluster, ascending (empty arrays for empty clusters)."""
        order = np.argsort(self.labels, kind="stable")
        sizes = np.bincount(self.labels, minlength=len(self.centroids))
        return np.split(order, np.cumsum(sizes)[:-1])


def kmeans_clusters(
    embeddings: np.ndarray,
    num_clusters: int,
    seed: int = 0,
    spherical: bool = False,
    niter: int = 20,
    max_points_per_centroid: int = 64,
) -> Clusters:
    """faiss k-means trained on a seeded sample of at most `max_points_per_centroid` rows per
    centroid, then every row assigned to its nearest centroid in chunks.

    Sampling here rather than inside faiss means only the sample is ever converted to float32.
    64 rows per centroid (faiss defaults to 256) is plenty to partition the data, which is all
    dedup and coreset need, and keeps training 1M rows into 1,000 clusters to ~10 s on 2 cores.

    More clusters than rows is clamped to one cluster per row.
    """
    embeddings = np.asarray(embeddings)
    n, dim = embeddings.shape
    k = max(1, min(num_clusters, n))
    rng = np.random.default_rng(seed)
    sample_size = min(n, k * max_points_per_centroid)
    sample = np.sort(rng.choice(n, size=sample_size, replace=False)) if sample_size < n else np.arange(n)
    kmeans = faiss.Kmeans(
        dim,
        k,
        niter=niter,
        seed=seed,
        spherical=spherical,
        max_points_per_centroid=max_points_per_centroid,
        min_points_per_centroid=1,  # small inputs are fine; do not print faiss's warning
    )
    kmeans.train(np.ascontiguousarray(embeddings[sample], dtype=np.float32))
    labels = np.empty(n, dtype=np.int64)
    for start in range(0, n, _CHUNK_ROWS):
        chunk = np.ascontiguousarray(embeddings[start : start + _CHUNK_ROWS], dtype=np.float32)
        labels[start : start + len(chunk)] = kmeans.index.search(chunk, 1)[1][:, 0]
    return Clusters(labels=labels, centroids=kmeans.centroids.copy())


def cluster_quotas(sizes: np.ndarray, budget: int) -> np.ndarray:
    """How many rows each cluster contributes: proportional to its size, at least one per non-empty
    cluster while the budget allows (if it does not, the largest clusters get one each), never more
    than the cluster holds, and summing to exactly `budget`."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if not 0 <= budget <= sizes.sum():
        raise ValueError(f"budget {budget} is outside 0..{sizes.sum()}")
    quotas = np.zeros_like(sizes)
    nonempty = np.flatnonzero(sizes)
    if budget <= len(nonempty):
        largest_first = nonempty[np.argsort(-sizes[nonempty], kind="stable")]
        quotas[largest_first[:budget]] = 1
        return quotas
    quotas[nonempty] = 1
    ideal = budget * sizes / sizes.sum()
    while (left := budget - int(quotas.sum())) > 0:
        room = sizes - quotas
        # Clusters below their ideal share ask for the difference; once every open cluster has its
        # share (the rest are full), the remainder spreads over the room that is left.
        want = np.where(room > 0, np.maximum(ideal - quotas, 0.0), 0.0)
        if want.sum() <= 0:
            want = room.astype(np.float64)
        share = want / want.sum() * left
        grant = np.minimum(np.floor(share).astype(np.int64), room)
        if grant.sum() == 0:
            # Fewer rows left than clusters asking: largest remainders first, ties by cluster index.
            order = np.lexsort((np.arange(len(sizes)), -share))
            order = order[room[order] > 0][:left]
            grant[order] = 1
        quotas += grant
    return quotas


def k_center_greedy(points: np.ndarray, centroid: np.ndarray, count: int) -> np.ndarray:
    """`count` row positions of `points`: first the one nearest the centroid, then repeatedly the
    point farthest from everything chosen so far (a 2-approximation of the k-center cover).
    O(len(points) * dim) memory and time per pick."""
    points = np.asarray(points, dtype=np.float32)
    count = min(count, len(points))
    if count == 0:
        return np.empty(0, dtype=np.int64)
    squared_norms = np.einsum("ij,ij->i", points, points)

    def squared_distances_to(vector: np.ndarray) -> np.ndarray:
        return np.maximum(squared_norms - 2.0 * (points @ vector) + float(vector @ vector), 0.0)

    chosen = [int(np.argmin(squared_distances_to(np.asarray(centroid, dtype=np.float32))))]
    nearest_chosen = squared_distances_to(points[chosen[0]])
    for _ in range(count - 1):
        farthest = int(np.argmax(nearest_chosen))
        chosen.append(farthest)
        np.minimum(nearest_chosen, squared_distances_to(points[farthest]), out=nearest_chosen)
    return np.asarray(chosen, dtype=np.int64)


def coreset_select(
    embeddings: np.ndarray,
    fraction: float | None = None,
    count: int | None = None,
    num_clusters: int = 100,
    seed: int = 0,
) -> np.ndarray:
    """Row indices (ascending, no repeats) of a coreset of `count` rows, or of round(fraction * n).

    k-means into `num_clusters` clusters; each cluster's quota follows `cluster_quotas`; inside a
    cluster, k-center greedy from the point nearest its centroid. Only one cluster's rows are held
    in float32 at a time.
    """
    embeddings = np.asarray(embeddings)
    budget = _budget(len(embeddings), fraction, count)
    if budget == 0:
        return np.empty(0, dtype=np.int64)
    clusters = kmeans_clusters(embeddings, num_clusters, seed=seed)
    members = clusters.members()
    quotas = cluster_quotas(np.array([len(rows) for rows in members]), budget)
    selected = [
        rows[k_center_greedy(embeddings[rows], clusters.centroids[cluster], int(quotas[cluster]))]
        for cluster, rows in enumerate(members)
        if quotas[cluster] > 0
    ]
    return np.sort(np.concatenate(selected))


def _budget(n: int, fraction: float | None, count: int | None) -> int:
    if (fraction is None) == (count is None):
        raise ValueError("give exactly one of fraction and count")
    if count is None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction {fraction} is outside [0, 1]")
        count = round(fraction * n)
    if not 0 <= count <= n:
        raise ValueError(f"count {count} is outside 0..{n}")
    return int(count)
