"""Global dedup across all shards: pairs of duplicates by four methods, then groups over their union.

Every method returns `Pairs`: two int64 arrays (i, j) of row positions with i < j, no repeats.
Methods only need to link each duplicate to its group, not list every pair of it: rows with an
identical key are linked to the first such row (a star), so a key shared by thousands of rows costs
thousands of pairs, not millions. `duplicate_groups` takes the connected components of all pairs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from math import comb

import numpy as np
import polars as pl
from datasketch import MinHashLSH
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from curation_assets.recipe import Dedup
from curation_assets.scoring.hashes import MINHASH, MinhashParams
from curation_assets.selection.coreset import kmeans_clusters

Pairs = tuple[np.ndarray, np.ndarray]

# Most candidate pairs materialised at once (a few int64 arrays of this length: ~0.5 GiB at peak).
# Bounds memory whatever the bucket sizes; time still grows with the number of candidates.
_CANDIDATES_PER_BATCH = 16_000_000
# Widest pHash band: its bucket sizes are counted in a dense array of 2**width entries (16 MiB).
_MAX_BAND_BITS = 22
# Most similarities computed in one matrix product inside a SemDeDup cluster (64 MiB of float32).
_SIMILARITIES_PER_BLOCK = 16_000_000
# float32 dot products of unit vectors are off by up to ~1e-6: identical rows must still pass
# epsilon = 0.
_SIMILARITY_ROUNDING = 1e-5


def no_pairs() -> Pairs:
    return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)


def normalized_pairs(i: np.ndarray, j: np.ndarray) -> Pairs:
    """Pairs with the smaller index first, self-pairs dropped, each pair once, sorted."""
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    low, high = np.minimum(i, j), np.maximum(i, j)
    keep = low != high
    if not keep.any():
        return no_pairs()
    # Encode each pair as one int64 to deduplicate; exact for up to 3 billion rows.
    width = int(high[keep].max()) + 1
    codes = np.unique(low[keep] * width + high[keep])
    return codes // width, codes % width


# --- exact: identical image bytes --------------------------------------------------------------


def exact_duplicate_pairs(frame: pl.DataFrame) -> Pairs:
    """Rows with the same `image_sha256`, each linked to the first row of its hash. Nulls match nothing."""
    linked = (
        frame.select("image_sha256")
        .with_row_index("row")
        .filter(pl.col("image_sha256").is_not_null())
        .with_columns(pl.col("row").min().over("image_sha256").alias("first"))
        .filter(pl.col("row") != pl.col("first"))
    )
    return normalized_pairs(linked["first"].to_numpy(), linked["row"].to_numpy())


# --- near images: pHash Hamming distance ---------------------------------------------------------


def near_image_pairs(phashes: Sequence[str | None] | pl.Series, max_distance: int) -> Pairs:
    """Rows whose 64-bit pHashes (16 hex characters) differ in at most `max_distance` bits.
    Missing hashes (None) match nothing.

    Giant buckets: identical hashes (thousands of blank or placeholder images) are first collapsed
    to one row each, linked to their first row, so only distinct hashes enter the index. Distinct
    hashes that still share a band value are matched in batches of bounded size (BucketIndex):
    memory stays bounded, time grows with the number of such candidates. See band_plan for the
    bands.
    """
    values, present = _phash_values(phashes)
    rows = np.flatnonzero(present)
    first = _first_row_of_each_value(values[rows])
    repeated = first != np.arange(len(rows))
    distinct = rows[~repeated]
    near_i, near_j = _hamming_neighbours(values[distinct], max_distance) if max_distance > 0 else no_pairs()
    return normalized_pairs(
        np.concatenate([rows[first[repeated]], distinct[near_i]]),
        np.concatenate([rows[repeated], distinct[near_j]]),
    )


def _phash_values(phashes: Sequence[str | None] | pl.Series) -> tuple[np.ndarray, np.ndarray]:
    series = pl.Series("phash", phashes, dtype=pl.String)
    present = series.is_not_null().to_numpy()
    values = series.fill_null("0").str.to_integer(base=16, dtype=pl.UInt64, strict=True).to_numpy()
    return values.astype(np.uint64, copy=False), present


def _first_row_of_each_value(values: np.ndarray) -> np.ndarray:
    """For each position, the first position holding the same value."""
    _, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    return first[inverse.ravel()]


def band_plan(num_hashes: int, max_distance: int) -> list[tuple[int, int, int]]:
    """(shift, width, radius) per band: multi-index hashing with the generalised pigeonhole
    principle. Split the 64 bits into m bands with radii summing to max_distance - m + 1; a pair
    within max_distance then lies within its band's radius in at least one band (otherwise the
    distance would be at least the sum of radius + 1, i.e. max_distance + 1). A radius of -1 means
    the band is not needed.

    m = max_distance + 1 gives radius 0 everywhere (exact band matches), the textbook scheme. It is
    cheap to probe but its bands are narrow: at distance 6 they are 9-10 bits, and 1M random hashes
    share a 9-bit band value with ~2,000 others each, about 6e9 candidate pairs. With fewer, wider
    bands, each row instead probes every value within its band's radius. m is
    chosen to minimise probes + expected candidates for uniformly random hashes (at distance 6:
    4 bands of 16 bits for 100k hashes, 3 of 21-22 bits for 1M); bands are at most
    _MAX_BAND_BITS wide so their bucket index is a dense array.
    """
    best: tuple[float, list[tuple[int, int, int]]] | None = None
    fewest_bands = -(-64 // _MAX_BAND_BITS)
    for m in range(fewest_bands, max(fewest_bands, max_distance + 1) + 1):
        widths = [64 // m + (1 if b < 64 % m else 0) for b in range(m)]
        slack = max_distance - m + 1
        radii = [slack // m + (1 if b < slack % m else 0) for b in range(m)]
        volumes = [_ball_volume(w, r) for w, r in zip(widths, radii)]
        probes = num_hashes * sum(volumes)
        candidates = num_hashes * num_hashes * sum(v / 2.0**w for v, w in zip(volumes, widths))
        shifts = np.concatenate([[0], np.cumsum(widths)[:-1]]).tolist()
        plan = list(zip(shifts, widths, radii))
        if best is None or probes + candidates < best[0]:
            best = (probes + candidates, plan)
    return best[1]


def _ball_volume(width: int, radius: int) -> int:
    return sum(comb(width, k) for k in range(radius + 1))


def _ball_masks(width: int, radius: int) -> np.ndarray:
    """Every XOR mask of at most `radius` set bits within `width` bits."""
    masks = [0]
    for k in range(1, radius + 1):
        masks += [sum(1 << bit for bit in bits) for bits in itertools.combinations(range(width), k)]
    return np.asarray(masks, dtype=np.int64)


def _hamming_neighbours(values: np.ndarray, max_distance: int) -> Pairs:
    """Pairs of positions in `values` (distinct uint64) within max_distance bits, per band_plan:
    each row probes its band value XOR every mask of the band's radius, a bucket index finds the
    rows holding those values, numpy popcount verifies the full distance."""
    n = len(values)
    positions = np.arange(n, dtype=np.int64)
    found_i, found_j = [], []
    for shift, width, radius in band_plan(n, max_distance):
        if radius < 0:
            continue
        keys = ((values >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)
        index = BucketIndex(keys, 1 << width)
        masks = _ball_masks(width, radius)
        rows_per_chunk = max(1, _CANDIDATES_PER_BATCH // len(masks))
        for start in range(0, n, rows_per_chunk):
            chunk = positions[start : start + rows_per_chunk]
            probes = (keys[chunk, None] ^ masks[None, :]).ravel()
            for probe, right in index.matches(probes):
                left = chunk[probe // len(masks)]
                close = (left < right) & (np.bitwise_count(values[left] ^ values[right]) <= max_distance)
                found_i.append(left[close])
                found_j.append(right[close])
    if not found_i:
        return no_pairs()
    return normalized_pairs(np.concatenate(found_i), np.concatenate(found_j))


class BucketIndex:
    """Row positions grouped by a dense bucket number (a counting sort): bucket b holds
    rows[starts[b] : starts[b] + sizes[b]].

    Why not a polars join: the bucket numbers are small dense integers, so the index is two arrays
    and a lookup is an array read. Measured at 1M pHashes (probes at distance 6), this took 9 s
    against 16 s for the same candidates by polars inner joins on 2 cores.
    """

    def __init__(self, buckets: np.ndarray, num_buckets: int):
        # int32 halves the array that every probe reads at random (16 MiB for a 22-bit band).
        self.sizes = np.bincount(buckets, minlength=num_buckets).astype(np.int32)
        self.starts = np.cumsum(self.sizes) - self.sizes
        self.rows = np.argsort(buckets, kind="stable")

    def matches(self, probes: np.ndarray) -> Iterator[Pairs]:
        """(probe position, indexed row) for every indexed row in each probe's bucket, in batches
        of about _CANDIDATES_PER_BATCH (one probe matching a bigger bucket is still one batch):
        memory stays bounded whatever the bucket sizes."""
        counts = self.sizes[probes]
        # Most probes land in empty buckets (1M pHashes fill a fifth of a 22-bit band's buckets).
        hits = np.flatnonzero(counts)
        counts = counts[hits]
        ends = np.cumsum(counts)
        start = 0
        while start < len(hits):
            budget_end = (ends[start - 1] if start else 0) + _CANDIDATES_PER_BATCH
            stop = max(start + 1, int(np.searchsorted(ends, budget_end, side="right")))
            batch_counts = counts[start:stop]
            probe = np.repeat(hits[start:stop], batch_counts)
            run_starts = np.repeat(np.cumsum(batch_counts) - batch_counts, batch_counts)
            offsets = np.arange(len(probe)) - run_starts
            yield probe, self.rows[np.repeat(self.starts[probes[hits[start:stop]]], batch_counts) + offsets]
            start = stop


# --- near captions: MinHash-LSH ------------------------------------------------------------------


def near_text_pairs(signatures: np.ndarray, threshold: float, params: MinhashParams = MINHASH) -> Pairs:
    """Rows whose text MinHash signatures (n, params.num_perm) estimate a Jaccard similarity >=
    `threshold`: Data-Juicer's document_minhash_deduplicator (LSH banding, then verification).

    The band count and rows per band are datasketch MinHashLSH's choice for the threshold (its
    weighted false-positive / false-negative optimum). The banding itself is done here with
    vectorised hashing and a BucketIndex rather than by inserting into a MinHashLSH: its Python
    dict storage measured ~350 MB and ~4 s per 100k captions (so ~3.5 GB and ~40 s per million),
    where this takes ~5 s per million and a few arrays. Candidates are the same: rows agreeing on
    every value of at least one band (test_dedup checks this against MinHashLSH.query). Signatures
    must come from `text_minhash` with the same `params`: only signatures of one seed and scheme are
    comparable.

    Identical signatures (empty or boilerplate captions) are collapsed first, as in near_image_pairs.
    """
    num_perm = params.num_perm
    signatures = np.asarray(signatures)
    if signatures.ndim != 2 or signatures.shape[1] != num_perm:
        raise ValueError(
            f"expected signatures of shape (n, {num_perm}) ({params.produced_by}), got {signatures.shape}: "
            "re-sign the texts (the MinHash tables) with the current parameters"
        )
    if len(signatures) < 2:
        return no_pairs()
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    rng = np.random.default_rng(params.seed)
    # Random odd multipliers: a sum of products is equal for equal value runs, and a collision of
    # different runs only adds a candidate that verification then drops.
    multipliers = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)
    first = _first_row_of_identical_signature(signatures, multipliers)
    repeated = first != np.arange(len(signatures))
    distinct = np.flatnonzero(~repeated)
    found_i, found_j = [], []
    for band in range(lsh.b):
        columns = slice(band * lsh.r, (band + 1) * lsh.r)
        keys = _row_hashes(signatures[:, columns], multipliers[columns])[distinct]
        distinct_keys, buckets = np.unique(keys, return_inverse=True)
        buckets = buckets.ravel()
        index = BucketIndex(buckets, len(distinct_keys))
        for left, right in index.matches(buckets):
            left, right = left[left < right], right[left < right]
            left, right = distinct[left], distinct[right]
            agreeing = np.count_nonzero(signatures[left] == signatures[right], axis=1)
            similar = agreeing >= threshold * num_perm
            found_i.append(left[similar])
            found_j.append(right[similar])
    return normalized_pairs(
        np.concatenate([first[repeated], *found_i]), np.concatenate([np.flatnonzero(repeated), *found_j])
    )


def _row_hashes(values: np.ndarray, multipliers: np.ndarray) -> np.ndarray:
    hashes = np.zeros(len(values), dtype=np.uint64)
    for column, multiplier in enumerate(multipliers):
        hashes += values[:, column].astype(np.uint64) * multiplier  # wraps modulo 2**64 on purpose
    return hashes


def _first_row_of_identical_signature(signatures: np.ndarray, multipliers: np.ndarray) -> np.ndarray:
    first = _first_row_of_each_value(_row_hashes(signatures, multipliers))
    # A hash collision of two different signatures must not make them duplicates: check each link.
    rows = np.flatnonzero(first != np.arange(len(signatures)))
    for start in range(0, len(rows), 65_536):
        chunk = rows[start : start + 65_536]
        differs = (signatures[chunk] != signatures[first[chunk]]).any(axis=1)
        first[chunk[differs]] = chunk[differs]
    return first


# --- semantic: SemDeDup --------------------------------------------------------------------------


def semantic_duplicate_pairs(embeddings: np.ndarray, epsilon: float, num_clusters: int, seed: int = 0) -> Pairs:
    """SemDeDup (Abbas et al. 2023): spherical k-means on the embeddings, then, inside each cluster,
    pairs with cosine similarity >= 1 - epsilon.

    Comparing only within clusters makes the work ~n^2 / num_clusters instead of n^2 (~sqrt(n)
    clusters balances it against the k-means assignment's n * num_clusters). Near-duplicates that
    k-means puts in different clusters are missed, as in the paper: 0.05-1.3% of planted
    near-duplicates (cosine 0.9995) in benchmarks/selection.py. Rows are re-normalised in float32, so
    float16 rounding does not lower the similarity of identical rows. Memory: one cluster's rows and
    one block of similarities at a time.
    """
    embeddings = np.asarray(embeddings)
    if len(embeddings) < 2:
        return no_pairs()
    clusters = kmeans_clusters(embeddings, num_clusters, seed=seed, spherical=True)
    found_i, found_j = [], []
    for rows in clusters.members():
        if len(rows) < 2:
            continue
        local_i, local_j = _similar_within(embeddings[rows], 1.0 - epsilon)
        found_i.append(rows[local_i])
        found_j.append(rows[local_j])
    if not found_i:
        return no_pairs()
    return normalized_pairs(np.concatenate(found_i), np.concatenate(found_j))


def _similar_within(vectors: np.ndarray, min_similarity: float) -> Pairs:
    """Position pairs (i < j) of rows with cosine similarity >= min_similarity, in row blocks."""
    vectors = np.asarray(vectors, dtype=np.float32)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    n = len(vectors)
    block = max(1, _SIMILARITIES_PER_BLOCK // n)
    found_i, found_j = [], []
    for start in range(0, n, block):
        # Only columns from `start` on: the lower triangle was covered by earlier blocks.
        similarities = vectors[start : start + block] @ vectors[start:].T
        local_i, local_j = np.nonzero(similarities >= min_similarity - _SIMILARITY_ROUNDING)
        above_diagonal = local_j > local_i
        found_i.append(local_i[above_diagonal] + start)
        found_j.append(local_j[above_diagonal] + start)
    return np.concatenate(found_i), np.concatenate(found_j)


# --- groups --------------------------------------------------------------------------------------


def duplicate_groups(
    n: int,
    pairs_by_method: Mapping[str, Pairs],
    keep_score: np.ndarray | None,
    sample_ids: Sequence[str] | pl.Series,
) -> pl.DataFrame:
    """One row per sample in a duplicate group (connected component of size >= 2 over the union of
    every method's pairs, so chains a~b~c form one group):

    - `sample_id`
    - `group_id`: the representative's sample_id (stable across runs and row orders)
    - `representative`: True for the one sample per group that is kept
    - `method`: the methods with a pair touching this sample, comma-separated in the order of
      `pairs_by_method` (e.g. "exact", "phash,semantic")
    - `duplicate_of`: the representative's sample_id; null for the representative itself

    Representative rule: the highest `keep_score` (CLIP similarity) in the group; missing or NaN
    scores rank lowest; ties (and keep_score=None) go to the smallest sample_id.
    """
    sample_ids = pl.Series("sample_id", sample_ids, dtype=pl.String)
    if len(sample_ids) != n:
        raise ValueError(f"{len(sample_ids)} sample ids for {n} rows")
    component = _connected_components(n, list(pairs_by_method.values()))
    grouped = np.bincount(component)[component] >= 2
    scores = np.full(n, np.nan) if keep_score is None else np.asarray(keep_score, dtype=np.float64)
    members = pl.DataFrame(
        {
            "sample_id": sample_ids,
            "component": component,
            "score": pl.Series(scores).fill_nan(None),
            "method": _method_labels(n, pairs_by_method),
        }
    ).filter(pl.Series(grouped))
    ranked = members.sort(["component", "score", "sample_id"], descending=[False, True, False], nulls_last=True)
    return (
        ranked.with_columns(
            pl.col("sample_id").first().over("component").alias("group_id"),
            (pl.int_range(pl.len()).over("component") == 0).alias("representative"),
        )
        .with_columns(pl.when(~pl.col("representative")).then(pl.col("group_id")).alias("duplicate_of"))
        .select("sample_id", "group_id", "representative", "method", "duplicate_of")
        .sort(["group_id", "representative", "sample_id"], descending=[False, True, False])
    )


def _connected_components(n: int, pairs: list[Pairs]) -> np.ndarray:
    """Component label of each row in the undirected graph of all pairs."""
    i = np.concatenate([np.asarray(p[0], dtype=np.int64) for p in pairs] + [no_pairs()[0]])
    j = np.concatenate([np.asarray(p[1], dtype=np.int64) for p in pairs] + [no_pairs()[1]])
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n)).tocsr()
    return connected_components(graph, directed=False)[1]


def _method_labels(n: int, pairs_by_method: Mapping[str, Pairs]) -> pl.Series:
    """Per row, the names of the methods with a pair touching it, comma-separated ("" for none)."""
    methods = list(pairs_by_method)
    bits = np.zeros(n, dtype=np.int64)
    for bit, (i, j) in enumerate(pairs_by_method.values()):
        bits[np.asarray(i, dtype=np.int64)] |= 1 << bit
        bits[np.asarray(j, dtype=np.int64)] |= 1 << bit
    combinations, which = np.unique(bits, return_inverse=True)
    names = [
        ",".join(name for bit, name in enumerate(methods) if combination >> bit & 1)
        for combination in combinations.tolist()
    ]
    return pl.Series("method", names, dtype=pl.String).gather(which.ravel())


# --- the recipe's dedup over one table of samples ------------------------------------------------


def find_duplicates(samples: pl.DataFrame, spec: Dedup) -> pl.DataFrame:
    """Duplicate groups over `samples` by every method the recipe's `dedup` section turns on: one row
    per sample in a group of two or more, with `group_id` (the group's smallest sample_id, stable
    whatever the scores), `method` and `shard_id`. Which member survives is not decided here but by
    the filters, which keep the best member that passes every rule (selection/decisions.py).

    `samples` holds one row per sample: sample_id, shard_id, and per method its input: image_sha256 +
    phash (image_deduplicator), minhash (document minhash), image_embedding (semantic).
    """
    pairs: dict[str, Pairs] = {}
    if spec.image_deduplicator:
        pairs["exact"] = exact_duplicate_pairs(samples)
        pairs["phash"] = near_image_pairs(samples["phash"], spec.image_deduplicator.max_distance)
    if spec.document_minhash_deduplicator:
        threshold = spec.document_minhash_deduplicator.jaccard_threshold
        pairs["minhash"] = near_text_pairs(samples["minhash"].to_numpy(), threshold)
    if spec.semantic_deduplicator:
        semantic = spec.semantic_deduplicator
        # k-means needs at least two members per cluster on average to find anything.
        clusters = min(semantic.num_clusters, max(1, samples.height // 2))
        embeddings = samples["image_embedding"].to_numpy().astype(np.float32)
        pairs["semantic"] = semantic_duplicate_pairs(embeddings, semantic.epsilon, clusters)
    groups = duplicate_groups(samples.height, pairs, None, samples["sample_id"])
    return groups.select("sample_id", "group_id", "method").join(
        samples.select("sample_id", "shard_id"), on="sample_id", how="left"
    )
