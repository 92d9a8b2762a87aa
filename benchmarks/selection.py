"""Global dedup (exact + pHash + caption MinHash-LSH + SemDeDup) and coreset selection on synthetic
score tables of 100k and 1M rows with planted duplicates: seconds, and planted duplicates found.

Each size runs in a fresh process so its peak memory (`peak_rss_mib`) is its own.

Synthetic data (made with numpy, not timed):
- image_sha256: random; 0.5% of rows are byte-identical copies of another row.
- phash: uniformly random 64-bit; 1% of rows are copies of another row with 0-6 bits flipped.
- minhash: random 128-value signatures; 1% of rows are copies with 5% of values changed
  (Jaccard ~0.95), and 0.1% share the empty-caption signature (one giant identical bucket).
- image_embedding: 512-d float16 unit vectors around 1,000 topic centres (same-topic cosine
  ~0.2); 1% of rows are copies of another row plus noise (cosine ~0.999).

SemDeDup uses ~sqrt(n) clusters: k-means assignment costs n * k and the within-cluster products
n^2 / k, so sqrt(n) balances them (1,000 clusters of ~1,000 rows at 1M; measured at 1M: ~11 s
training, ~11 s assignment, ~14 s within clusters). n / 500 clusters makes k-means the dominant
cost: the 1M semantic figure carries it as `semantic_clusters_n_over_500_seconds` (about twice
the time). The coreset keeps its default 100 clusters: its cost is the k-center picks, not k-means.

Figures taken on a shared 2-core machine vary by up to ~50% between runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import polars as pl

from benchmarks.memory import peak_rss_mib
from curation_assets.selection.coreset import coreset_select
from curation_assets.selection.dedup import (
    band_plan,
    duplicate_groups,
    exact_duplicate_pairs,
    near_image_pairs,
    near_text_pairs,
    semantic_duplicate_pairs,
)

SIZES = {"100k": 100_000, "1m": 1_000_000}
PHASH_MAX_DISTANCE = 6
MINHASH_THRESHOLD = 0.8
NUM_PERM = 128
EMBEDDING_DIM = 512
SEMANTIC_EPSILON = 0.02
CORESET_FRACTION = 0.005  # "Maybe only 0.5% data is needed"
CORESET_CLUSTERS = 100


def planted_copies(rng: np.random.Generator, n: int, fraction: float):
    """(copy rows, source rows): disjoint random rows, each copy rewritten from its source."""
    count = int(n * fraction)
    rows = rng.choice(n, size=2 * count, replace=False)
    return rows[:count], rows[count:]


def planted_found(pairs, copies: np.ndarray, sources: np.ndarray) -> int:
    """How many planted (copy, source) pairs appear among the found pairs."""
    found = np.minimum(pairs[0], pairs[1]) * np.int64(2**31) + np.maximum(pairs[0], pairs[1])
    planted = np.minimum(copies, sources).astype(np.int64) * np.int64(2**31) + np.maximum(copies, sources)
    return int(np.isin(planted, found).sum())


def synthetic_sha256(rng, n):
    words = rng.integers(0, 2**63, size=(n, 2), dtype=np.int64)
    copies, sources = planted_copies(rng, n, 0.005)
    words[copies] = words[sources]
    # Two random words stand in for a digest: only equality matters here.
    digests = pl.Series(words[:, 0]).cast(pl.String) + "-" + pl.Series(words[:, 1]).cast(pl.String)
    return pl.DataFrame({"image_sha256": digests}), copies, sources


def synthetic_phashes(rng, n):
    values = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    copies, sources = planted_copies(rng, n, 0.01)
    flipped = values[sources].copy()
    for _ in range(PHASH_MAX_DISTANCE):
        # Each step flips one random bit in a random half of the copies: 0-6 bits in all (a repeat
        # of a bit can undo a flip, which only makes the copy closer).
        bits = rng.integers(0, 64, size=len(copies)).astype(np.uint64)
        flipped ^= np.where(rng.random(len(copies)) < 0.5, np.uint64(1) << bits, np.uint64(0))
    values[copies] = flipped
    return [f"{v:016x}" for v in values.tolist()], copies, sources


def synthetic_minhashes(rng, n):
    signatures = rng.integers(0, 2**32, size=(n, NUM_PERM), dtype=np.uint32)
    copies, sources = planted_copies(rng, n, 0.01)
    signatures[copies] = signatures[sources]
    changed = rng.random((len(copies), NUM_PERM)) < 0.05
    rewritten = signatures[copies]
    rewritten[changed] = rng.integers(0, 2**32, size=int(changed.sum()), dtype=np.uint32)
    signatures[copies] = rewritten
    empty = rng.choice(np.setdiff1d(np.arange(n), np.concatenate([copies, sources])), size=n // 1000, replace=False)
    signatures[empty] = np.iinfo(np.uint32).max
    return signatures, copies, sources


def synthetic_embeddings(rng, n, chunk_rows=65_536):
    centres = rng.standard_normal((1_000, EMBEDDING_DIM), dtype=np.float32) * 0.5
    embeddings = np.empty((n, EMBEDDING_DIM), dtype=np.float16)
    for start in range(0, n, chunk_rows):
        size = min(chunk_rows, n - start)
        chunk = centres[rng.integers(0, len(centres), size=size)] + rng.standard_normal(
            (size, EMBEDDING_DIM), dtype=np.float32
        )
        embeddings[start : start + size] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    copies, sources = planted_copies(rng, n, 0.01)
    noise = rng.standard_normal((len(copies), EMBEDDING_DIM), dtype=np.float32) / np.sqrt(EMBEDDING_DIM)
    noisy = embeddings[sources].astype(np.float32) + 0.03 * noise
    embeddings[copies] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    return embeddings, copies, sources


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def measure(n: int, seed: int = 0) -> dict:
    """Every timing for one size, in this process."""
    rng = np.random.default_rng(seed)
    report: dict = {"rows": n}
    pairs = {}

    frame, copies, sources = synthetic_sha256(rng, n)
    pairs["exact"], report["exact_seconds"] = timed(exact_duplicate_pairs, frame)
    report["exact_found"], report["exact_planted"] = planted_found(pairs["exact"], copies, sources), len(copies)
    del frame

    phashes, copies, sources = synthetic_phashes(rng, n)
    pairs["phash"], report["phash_seconds"] = timed(near_image_pairs, phashes, PHASH_MAX_DISTANCE)
    report["phash_found"], report["phash_planted"] = planted_found(pairs["phash"], copies, sources), len(copies)
    report["phash_pairs"] = len(pairs["phash"][0])
    report["phash_bands"] = [(width, radius) for _, width, radius in band_plan(n, PHASH_MAX_DISTANCE)]
    del phashes

    signatures, copies, sources = synthetic_minhashes(rng, n)
    pairs["minhash"], report["minhash_seconds"] = timed(near_text_pairs, signatures, MINHASH_THRESHOLD)
    report["minhash_found"], report["minhash_planted"] = planted_found(pairs["minhash"], copies, sources), len(copies)
    report["minhash_pairs"] = len(pairs["minhash"][0])
    del signatures

    embeddings, copies, sources = synthetic_embeddings(rng, n)
    num_clusters = round(np.sqrt(n))
    pairs["semantic"], report["semantic_seconds"] = timed(
        semantic_duplicate_pairs, embeddings, SEMANTIC_EPSILON, num_clusters
    )
    report["semantic_found"], report["semantic_planted"] = (
        planted_found(pairs["semantic"], copies, sources),
        len(copies),
    )
    report["semantic_pairs"] = len(pairs["semantic"][0])
    report["semantic_clusters"] = num_clusters

    sample_ids = pl.int_range(n, eager=True).cast(pl.String)
    groups, report["grouping_seconds"] = timed(duplicate_groups, n, pairs, rng.random(n, dtype=np.float32), sample_ids)
    report["duplicate_groups"] = groups["group_id"].n_unique()
    report["dropped_as_duplicates"] = int((~groups["representative"]).sum())
    report["dedup_seconds"] = sum(report[f"{m}_seconds"] for m in ("exact", "phash", "minhash", "semantic", "grouping"))
    report["dedup_peak_rss_mib"] = _peak_rss_mib()

    selected, report["coreset_seconds"] = timed(
        coreset_select, embeddings, fraction=CORESET_FRACTION, num_clusters=CORESET_CLUSTERS
    )
    report["coreset_selected"] = len(selected)
    report["peak_rss_mib"] = _peak_rss_mib()
    return report


def compare_cluster_counts(n: int, seed: int = 0) -> dict:
    """SemDeDup seconds at n / 500 clusters against sqrt(n), same data."""
    embeddings, _, _ = synthetic_embeddings(np.random.default_rng(seed), n)
    _, per_500 = timed(semantic_duplicate_pairs, embeddings, SEMANTIC_EPSILON, n // 500)
    return {"semantic_clusters_n_over_500_seconds": per_500, "n_over_500_clusters": n // 500}


def _peak_rss_mib() -> float:
    return peak_rss_mib()


def _in_fresh_process(*args: str) -> dict:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.selection", *args], capture_output=True, text=True, check=True
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run() -> dict[str, dict]:
    figures: dict[str, dict] = {}
    for label, n in SIZES.items():
        report = _in_fresh_process("--rows", str(n))
        dedup_extra = {
            k: v for k, v in report.items() if k not in ("coreset_seconds", "coreset_selected", "peak_rss_mib")
        }
        dedup_extra = {
            k: (round(v, 2) if isinstance(v, float) else v) for k, v in dedup_extra.items() if k != "dedup_seconds"
        }
        figures[f"dedup_{label}_seconds"] = {"value": round(report["dedup_seconds"], 2), "unit": "s", **dedup_extra}
        figures[f"coreset_{label}_seconds"] = {
            "value": round(report["coreset_seconds"], 2),
            "unit": "s",
            "rows": n,
            "selected": report["coreset_selected"],
            "num_clusters": CORESET_CLUSTERS,
            "peak_rss_mib": report["peak_rss_mib"],
        }
        for method in ("exact", "phash", "minhash", "semantic"):
            figures[f"dedup_{label}_{method}_seconds"] = {
                "value": round(report[f"{method}_seconds"], 2),
                "unit": "s",
                "found": report[f"{method}_found"],
                "planted": report[f"{method}_planted"],
            }
    comparison = _in_fresh_process("--compare-clusters", str(SIZES["1m"]))
    figures["dedup_1m_semantic_seconds"].update(
        {k: (round(v, 2) if isinstance(v, float) else v) for k, v in comparison.items()}
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int)
    parser.add_argument("--compare-clusters", type=int)
    args = parser.parse_args()
    if args.compare_clusters:
        print(json.dumps(compare_cluster_counts(args.compare_clusters)))
    elif args.rows:
        print(json.dumps(measure(args.rows)))
    else:
        for key, figure in run().items():
            print(key, figure)


if __name__ == "__main__":
    main()
