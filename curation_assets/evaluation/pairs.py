"""A set of image-caption pairs as the proxy sees them: features plus what contamination needs.

Built from stored per-shard feature tables and a pool (sample_id, caption), or read back from a
pair bundle: one parquet file holding a pool's features, which is what the eval asset hands to the
external proxy script (pipes_proxy.py) and what the CLI accepts ready-made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from curation_assets.evaluation.features import text_sha256

BUNDLE_COLUMNS = ("sample_id", "caption", "image_sha256", "phash", "image_feature", "text_feature")


@dataclass(frozen=True)
class PairSet:
    name: str
    sample_ids: list[str]
    captions: list[str]
    image_sha256: list[str | None]
    image_phash: list[str | None]
    images: np.ndarray  # (n, image dim) float16
    texts: np.ndarray  # (n, text dim) float16

    def __post_init__(self):
        n = len(self.sample_ids)
        lengths = {len(self.captions), len(self.image_sha256), len(self.image_phash), len(self.images), len(self.texts)}
        if lengths != {n}:
            raise ValueError(f"pair set {self.name!r}: columns disagree in length ({n} ids, others {sorted(lengths)})")

    def __len__(self) -> int:
        return len(self.sample_ids)

    def take(self, rows: np.ndarray, name: str | None = None) -> PairSet:
        rows = np.asarray(rows, dtype=np.int64)
        pick = rows.tolist()
        return PairSet(
            name or self.name,
            [self.sample_ids[i] for i in pick],
            [self.captions[i] for i in pick],
            [self.image_sha256[i] for i in pick],
            [self.image_phash[i] for i in pick],
            self.images[rows],
            self.texts[rows],
        )

    def image_groups(self) -> np.ndarray:
        """Group number per row: rows with the same image (by sha256) share one; a row without a hash
        is its own image. The proxy treats every caption of an image as a positive for it."""
        keys = [sha if sha is not None else f"\0row{i}" for i, sha in enumerate(self.image_sha256)]
        _, groups = np.unique(np.asarray(keys, dtype=object), return_inverse=True)
        return groups.astype(np.int64)

    def to_frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "sample_id": pl.Series(self.sample_ids, dtype=pl.String),
                "caption": pl.Series(self.captions, dtype=pl.String),
                "image_sha256": pl.Series(self.image_sha256, dtype=pl.String),
                "phash": pl.Series(self.image_phash, dtype=pl.String),
                "image_feature": pl.Series(self.images.astype(np.float16)),
                "text_feature": pl.Series(self.texts.astype(np.float16)),
            }
        )

    @classmethod
    def from_frame(cls, name: str, frame: pl.DataFrame) -> PairSet:
        missing = [column for column in BUNDLE_COLUMNS if column not in frame.columns]
        if missing:
            raise ValueError(f"pair set {name!r} lacks column(s) {missing}; a pair bundle has {list(BUNDLE_COLUMNS)}")
        return cls(
            name,
            frame["sample_id"].to_list(),
            frame["caption"].to_list(),
            frame["image_sha256"].to_list(),
            frame["phash"].to_list(),
            _matrix(frame, "image_feature"),
            _matrix(frame, "text_feature"),
        )


def _matrix(frame: pl.DataFrame, column: str) -> np.ndarray:
    if frame.height == 0:
        width = frame.schema[column].size if isinstance(frame.schema[column], pl.Array) else 0
        return np.zeros((0, width), dtype=np.float16)
    return frame[column].to_numpy().astype(np.float16, copy=False)


def pool_pairs(name: str, pool: pl.DataFrame, features: pl.DataFrame, encode_texts=None) -> PairSet:
    """The pairs of `pool` (sample_id, caption) with their stored features.

    The stored text feature encodes the caption the shard had at ingest; a pool caption that differs
    (recaptioned) is re-encoded with `encode_texts` (captions -> float16 array), which is cheap next
    to the image encoder. Raises if a pool sample has no stored features: stale or missing tables.
    """
    joined = pool.select("sample_id", "caption").join(features, on="sample_id", how="left", maintain_order="left")
    lacking = joined.filter(pl.col("image_feature").is_null())["sample_id"]
    if len(lacking):
        raise ValueError(
            f"pool {name!r}: {len(lacking)} samples have no stored proxy features (first: {lacking[0]}); "
            "materialize the feature tables of their shards first"
        )
    texts = _matrix(joined, "text_feature").copy()
    rewritten = np.flatnonzero(np.asarray(text_sha256(joined["caption"].to_list())) != joined["text_sha256"].to_numpy())
    if len(rewritten):
        if encode_texts is None:
            raise ValueError(
                f"pool {name!r}: {len(rewritten)} captions differ from the stored ones; need a text encoder"
            )
        texts[rewritten] = encode_texts([joined["caption"][int(i)] for i in rewritten])
    return PairSet(
        name,
        joined["sample_id"].to_list(),
        joined["caption"].to_list(),
        joined["image_sha256"].to_list(),
        joined["phash"].to_list(),
        _matrix(joined, "image_feature"),
        texts,
    )
