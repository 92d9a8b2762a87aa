"""The proxy eval's inputs, read from a data root's tables: the mix's caption pairs, a sample of the
unfiltered caption pool, and the eval sets (features cached by the file's content). Pair sets are
written as pair bundles for the external proxy script. No Dagster here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from curation_assets import registry
from curation_assets.evaluation.encoders import FeatureEncoders
from curation_assets.evaluation.pairs import PairSet, pool_pairs
from curation_assets.evaluation.pools import concat, shard_pairs
from curation_assets.mix.keys import id_hashes, seeded_hashes
from curation_assets.sources import SourceKind
from curation_assets.table_store import TableStore

EncoderFactory = Callable[[], FeatureEncoders]  # loads the encoders on first need only
UNFILTERED_SAMPLE_SEED = 0xE7A1  # which unfiltered pairs the baselines see: fixed, so a re-run sees the same


def mixed_caption_ids(store: TableStore) -> pl.Series:
    """The distinct caption samples of the mix (a repeat trains once: the proxy's budget is fixed)."""
    mix = store.read(registry.MIX_TABLE, columns=["sample_id", "kind"])
    return mix.filter(pl.col("kind") == SourceKind.caption.value)["sample_id"].unique().sort()


def caption_pairs(
    store: TableStore, name: str, sample_ids: pl.Series | None, encoders: EncoderFactory, limit: int | None = None
) -> PairSet:
    """Caption pairs of the index (their final captions) with their stored features: the rows of
    `sample_ids`, or every indexed pair; at most `limit`, chosen by a seeded hash of the id (so a
    new shard adds its share of the sample and displaces nothing else)."""
    index = store.read(registry.SAMPLES, columns=["sample_id", "shard_id", "caption"])
    if sample_ids is not None:
        index = index.filter(pl.col("sample_id").is_in(sample_ids.implode()))
    if limit is not None and index.height > limit:
        order = np.argsort(seeded_hashes(id_hashes(index["sample_id"]), UNFILTERED_SAMPLE_SEED), kind="stable")
        index = index[np.sort(order[:limit])]
    if index.is_empty():
        raise ValueError(
            f"pool {name!r} has no caption pairs: the mix holds no caption samples (check mix.ratio and the "
            "caption pool)"
            if sample_ids is not None
            else f"pool {name!r} has no caption pairs: no caption shard is indexed yet"
        )
    parts = []
    for (shard_id,), rows in index.group_by("shard_id", maintain_order=True):
        features = store.read(registry.PROXY_FEATURES, shard_id)
        parts.append(pool_pairs(name, rows, features, lambda captions: encoders().encode_texts(captions)))
    return concat(name, parts)


@dataclass(frozen=True)
class EvalSetFile:
    name: str
    path: Path
    image_root: Path | None

    def content_sha256(self) -> str:
        if not self.path.is_file():
            raise FileNotFoundError(f"eval set {self.name!r}: {self.path} is not a file (evaluation.eval_sets)")
        digest = hashlib.sha256()
        with self.path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()


def eval_set_pairs(eval_set: EvalSetFile, cache: Path, encoders: EncoderFactory, identity: str) -> tuple[PairSet, str]:
    """The eval set's pairs with features, read from `cache` when this file's content was already
    encoded by these encoders (`identity`), else computed and cached. Returns the pairs and the
    file's sha256 (recorded in the report)."""
    sha = eval_set.content_sha256()
    key = hashlib.sha256(f"{sha}:{identity}".encode()).hexdigest()[:16]
    cached = Path(cache) / f"{eval_set.name}-{key}.parquet"
    if cached.exists():
        return PairSet.from_frame(eval_set.name, pl.read_parquet(cached)), sha
    pairs = shard_pairs(eval_set.name, eval_set.path, encoders(), image_root=eval_set.image_root)
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial")
    pairs.to_frame().write_parquet(partial)
    partial.replace(cached)  # never a half-written cache file
    return pairs, sha


def write_bundle(pairs: PairSet, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    pairs.to_frame().write_parquet(path)
    return str(path)
