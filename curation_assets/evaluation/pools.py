"""Pair sets from files, for the CLI and the Pipes script: what a path is decides how it is read.

- a pair bundle (parquet with `image_feature`): read as is, no model runs;
- a curated pool or normalized table (parquet with `image_ref` and `shard_id`): its rows' stored
  feature tables are used when a features folder has them, otherwise the features are computed from
  the raw shards under the data root (`raw/caption/<shard_id>`);
- any other caption shard (WebDataset tar, img2dataset / Data-Juicer parquet, Data-Juicer jsonl,
  LLaVA json): read with the pipeline's own readers, features computed. Its image paths must stay
  inside the data root when the shard lies in it, else inside the shard's own folder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
from upath import UPath

from curation_assets import registry
from curation_assets.evaluation.encoders import FeatureEncoders
from curation_assets.evaluation.features import shard_features
from curation_assets.evaluation.pairs import PairSet, pool_pairs
from curation_assets.normalize import normalize_shard
from curation_assets.readers import ShardFile
from curation_assets.sources import SourceKind
from curation_assets.storage import DataRoot
from curation_assets.table_store import TableStore

EncoderFactory = Callable[[], FeatureEncoders]  # loads the encoders on first need only


def concat(name: str, parts: Sequence[PairSet]) -> PairSet:
    if not parts:
        raise ValueError(f"pool {name!r} has no files")
    return PairSet(
        name,
        [s for p in parts for s in p.sample_ids],
        [c for p in parts for c in p.captions],
        [h for p in parts for h in p.image_sha256],
        [h for p in parts for h in p.image_phash],
        np.concatenate([p.images for p in parts]),
        np.concatenate([p.texts for p in parts]),
    )


def load_pairs(
    name: str,
    paths: Sequence[str | Path],
    encoders: EncoderFactory,
    data_root: str | Path | None = None,
    features_dir: str | Path | None = None,
    num_workers: int = 2,
) -> PairSet:
    parts = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"pool {name!r}: {path} does not exist")
        columns = set(pq.read_schema(path).names) if path.suffix == ".parquet" else set()
        if "image_feature" in columns:
            parts.append(PairSet.from_frame(name, pl.read_parquet(path)))
        elif {"image_ref", "shard_id", "caption"} <= columns:
            parts.append(_table_pairs(name, pl.read_parquet(path), encoders, data_root, features_dir, num_workers))
        else:
            root = data_root if data_root is not None and _inside(path, data_root) else None
            parts.append(shard_pairs(name, path, encoders(), image_root=root, num_workers=num_workers))
    return concat(name, parts)


def _inside(path: Path, root: str | Path) -> bool:
    return Path(path).resolve().is_relative_to(Path(root).resolve())


def shard_pairs(
    name: str, path: str | Path, encoders: FeatureEncoders, image_root: str | Path | None = None, num_workers: int = 2
) -> PairSet:
    """A caption shard in any supported format, validated by the pipeline's readers (quarantined rows
    are left out), with features computed. Image paths must stay under `image_root` (default: the
    shard's folder)."""
    path = Path(path).resolve()
    root = Path(image_root).resolve() if image_root is not None else path.parent
    shard = ShardFile(SourceKind.caption, UPath(path), UPath(root))
    table = normalize_shard(shard).valid
    if table.is_empty():
        raise ValueError(f"{path}: no valid caption pairs (all rows quarantined or the file is empty)")
    features = shard_features(shard, table, encoders, num_workers=num_workers)
    return pool_pairs(name, table.select("sample_id", "caption"), features)


def _table_pairs(
    name: str,
    pool: pl.DataFrame,
    encoders: EncoderFactory,
    data_root: str | Path | None,
    features_dir: str | Path | None,
    num_workers: int,
) -> PairSet:
    if data_root is None:
        raise ValueError(f"pool {name!r} is a curated / normalized table: give the data root its shards live in")
    root = Path(data_root).resolve()
    parts = []
    for (shard_id,), rows in pool.group_by("shard_id", maintain_order=True):
        stored = Path(features_dir) / f"{shard_id}.parquet" if features_dir else None
        if stored is not None and stored.exists():
            features = pl.read_parquet(stored)
        else:
            shard = ShardFile(SourceKind.caption, DataRoot(root).raw_dir(SourceKind.caption) / shard_id, UPath(root))
            normalized = TableStore(root).read(registry.NORMALIZED[SourceKind.caption], shard_id)
            table = normalized.filter(pl.col("sample_id").is_in(rows["sample_id"].implode()))
            features = shard_features(shard, table, encoders(), num_workers=num_workers)
        parts.append(
            pool_pairs(name, rows.select("sample_id", "caption"), features, lambda c: encoders().encode_texts(c))
        )
    return concat(name, parts)
