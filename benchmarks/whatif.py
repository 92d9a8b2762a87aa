"""What-if on stored scores: seconds for `python -m curation_assets.whatif` over 100k and 1M pairs.

A synthetic caption/sample_index (every column the real one has, MinHash signatures included, so
reading only what the what-if needs is part of what is measured) and caption/dedup (2% of pairs in
groups of 2-4) are written to a temp data root, not timed. Then, timed:

- `whatif_<size>_seconds`: `what_if()` in this process: read the index columns, resolve the recipe's
  percentile bounds over all pairs, decide every pair (rules then dedup), build the funnel.
- `whatif_cli_<size>_seconds`: the command end to end in a fresh interpreter (imports included).

Each figure carries `kept` and `agrees`: the what-if's kept count equals decide_samples called
directly on the same tables. Figures taken on a shared 2-core machine vary by up to ~50% between runs.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from curation_assets import registry
from curation_assets.recipe import load_recipe
from curation_assets.selection.decisions import CAPTION_RANK_BY, decide_samples, filter_columns
from curation_assets.selection.thresholds import resolve_thresholds
from curation_assets.table_store import TableStore
from curation_assets.whatif import what_if

SIZES = {"100k": 100_000, "1m": 1_000_000}
SHARD_ROWS = 10_000
WORDS = np.array("a dog cat on the grass red blue small photo of with near street house".split())

# The edited recipe the benchmark asks about: Data-Juicer names, absolute and percentile bounds.
RECIPE = """
models: {profile: smoke, clip: {model: smoke-ViT-tiny, pretrained: null}}
filters:
  - image_shape_filter: {min_width: 64, min_height: 64}
  - image_aspect_ratio_filter: {min_ratio: 0.333, max_ratio: 3.0}
  - image_size_filter: {min_size: 6kb}
  - words_num_filter: {min_num: 3, max_num: 128}
  - image_text_similarity_filter: {min_score: p20}
  - image_aesthetics_filter: {min_score: p10}
  - image_watermark_filter: {prob_threshold: 0.8}
  - image_nsfw_filter: {score_threshold: 0.5}
dedup:
  image_deduplicator: {method: phash, max_distance: 4}
"""


def synthetic_index(n: int, seed: int = 0) -> pl.DataFrame:
    """n pairs with every column of caption/sample_index, plausible score distributions, and shards
    of SHARD_ROWS pairs."""
    rng = np.random.default_rng(seed)
    ids = pl.Series("sample_id", [f"{i:016x}" for i in rng.permutation(n * 4)[:n]])
    shards = pl.Series("shard_id", [f"wds-{i // SHARD_ROWS:05d}.tar" for i in range(n)])
    words = rng.integers(1, 40, size=n)
    captions = [" ".join(WORDS[rng.integers(0, len(WORDS), size=w)]) for w in words[: min(n, 50_000)]]
    captions = (captions * (n // len(captions) + 1))[:n]
    width, height = rng.integers(32, 1024, size=n), rng.integers(32, 1024, size=n)
    columns = {
        "sample_id": ids,
        "shard_id": shards,
        "image_ref": pl.Series([f"tar:{i:09d}.jpg" for i in range(n)]),
        "image_sha256": pl.Series([f"{v:032x}" for v in rng.integers(0, 2**63, size=n)]),
        "caption": pl.Series(captions),
        "original_caption": pl.Series(captions),
        "caption_source": pl.Series(["original"] * n),
        "clip_similarity": rng.normal(0.3, 0.05, n).astype(np.float32),
        "aesthetics": rng.normal(5.0, 0.8, n).astype(np.float32),
        "itm_probability": rng.beta(5, 2, n).astype(np.float32),
        "watermark_probability": rng.beta(1, 6, n).astype(np.float32),
        "nsfw_probability": rng.beta(1, 20, n).astype(np.float32),
        "width": width.astype(np.int32),
        "height": height.astype(np.int32),
        "aspect_ratio": (width / height).astype(np.float32),
        "num_bytes": rng.integers(1_000, 500_000, size=n),
        "format": pl.Series(["JPEG"] * n),
        "mode": pl.Series(["RGB"] * n),
        "num_words": words.astype(np.int32),
        "num_chars": (words * 5).astype(np.int32),
        "special_char_ratio": rng.beta(1, 30, n).astype(np.float32),
        "word_repetition_ratio": rng.beta(1, 20, n).astype(np.float32),
        "char_repetition_ratio": rng.beta(2, 10, n).astype(np.float32),
        "alnum_ratio": rng.beta(30, 2, n).astype(np.float32),
        "phash": pl.Series([f"{v:016x}" for v in rng.integers(0, 2**63, size=n)]),
    }
    frame = pl.DataFrame(columns)
    minhash = rng.integers(0, 2**32, size=(n, 128), dtype=np.uint32)
    return frame.with_columns(pl.Series("minhash", minhash, dtype=pl.Array(pl.UInt32, 128)))


def synthetic_groups(index: pl.DataFrame, fraction: float = 0.02, seed: int = 1) -> pl.DataFrame:
    """caption/dedup rows: `fraction` of the pairs, in groups of 2-4 (group_id = smallest member)."""
    rng = np.random.default_rng(seed)
    members = index.select("sample_id", "shard_id").sample(fraction=fraction, seed=seed)
    sizes = rng.integers(2, 5, size=members.height)
    group = np.repeat(np.arange(members.height), sizes)[: members.height]
    framed = members.with_columns(pl.Series("group", group)).filter(pl.len().over("group") > 1)
    return framed.with_columns(
        pl.col("sample_id").min().over("group").alias("group_id"), pl.lit("phash").alias("method")
    ).select("sample_id", "group_id", "method", "shard_id")


def write_stored(root: Path, n: int) -> None:
    store = TableStore(root)
    index = synthetic_index(n)
    store.write(registry.SAMPLES, index)
    store.write(registry.DEDUP, synthetic_groups(index))


def direct_kept(store: TableStore, recipe) -> int:
    """decide_samples called directly, as caption/filtered does, for the agreement check."""
    columns = filter_columns(recipe.filters)
    samples = store.read(registry.SAMPLES, columns=["sample_id", "shard_id", *columns])
    rules = resolve_thresholds(recipe.filters, samples)
    return int(decide_samples(samples, rules, store.read(registry.DEDUP), rank_by=CAPTION_RANK_BY)["kept"].sum())


def measure(n: int) -> dict[str, dict]:
    label = next(name for name, size in SIZES.items() if size == n)
    with tempfile.TemporaryDirectory(prefix="whatif-bench-") as work:
        root, recipe_path = Path(work) / "data", Path(work) / "edited.yaml"
        recipe_path.write_text(RECIPE)
        write_stored(root, n)
        recipe = load_recipe(recipe_path)
        store = TableStore(root)
        started = time.perf_counter()
        result = what_if(store, recipe)
        seconds = time.perf_counter() - started
        agrees = result.kept == direct_kept(store, recipe)
        command = [sys.executable, "-m", "curation_assets.whatif", "--recipe", str(recipe_path)]
        started = time.perf_counter()
        subprocess.run([*command, "--data-root", str(root), "--json"], check=True, capture_output=True)
        cli_seconds = time.perf_counter() - started
    extra = {"rows": n, "kept": result.kept, "agrees": agrees}
    return {
        f"whatif_{label}_seconds": {"value": round(seconds, 2), "unit": "s", **extra},
        f"whatif_cli_{label}_seconds": {"value": round(cli_seconds, 2), "unit": "s", **extra},
    }


def run() -> dict[str, dict]:
    figures: dict[str, dict] = {}
    for n in SIZES.values():
        figures.update(measure(n))
    return figures


if __name__ == "__main__":
    for key, figure in run().items():
        print(f"{key:<28} {figure}")
