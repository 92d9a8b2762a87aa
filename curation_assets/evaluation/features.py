"""Per-shard proxy features: frozen image and caption features, computed once per sample and stored
like the CLIP embeddings, so comparing recipes costs only training heads.

A feature table has one row per normalized caption row: `sample_id`, `image_sha256`, `image_phash`
(the same pHash as the image_phash table, for contamination), `text_sha256` (which caption the text
feature encodes: a curated pool whose caption was rewritten gets that one re-encoded), `image_feature`
and `text_feature` (float16) and `produced_by` (both encoders and their weights).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import polars as pl
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from curation_assets.evaluation.encoders import FeatureEncoders
from curation_assets.readers import ShardFile
from curation_assets.scoring.hashes import phash_of_bytes
from curation_assets.scoring.image_batches import open_rgb, worker_start_context

FEATURE_COLUMNS = (
    "sample_id",
    "image_sha256",
    "phash",
    "text_sha256",
    "image_feature",
    "text_feature",
    "produced_by",
)
Progress = Callable[[int, int], None]  # (images done, images total)


def image_bytes(shard: ShardFile, image_refs: Sequence[str]) -> Iterator[tuple[int, bytes]]:
    """The only door to image bytes here: (position in `image_refs`, bytes), in the shard's order."""
    from curation_assets.image_source import iter_image_bytes

    return iter_image_bytes(shard, image_refs)


def text_sha256(captions: Sequence[str]) -> list[str]:
    return [hashlib.sha256(caption.encode()).hexdigest() for caption in captions]


class _EncodedImages(IterableDataset):
    """(position, pixels, pHash) per image; each DataLoader worker decodes its share of the stream."""

    def __init__(self, shard: ShardFile, image_refs: Sequence[str], preprocess, min_side: int):
        self.shard, self.image_refs, self.preprocess, self.min_side = shard, list(image_refs), preprocess, min_side

    def __iter__(self):
        worker = get_worker_info()
        workers, me = (worker.num_workers, worker.id) if worker else (1, 0)
        for count, (position, data) in enumerate(image_bytes(self.shard, self.image_refs)):
            if count % workers == me:
                yield position, self.preprocess(open_rgb(data, self.min_side)), phash_of_bytes(data)


def encode_shard_images(
    shard: ShardFile,
    image_refs: Sequence[str],
    encoders: FeatureEncoders,
    num_workers: int = 2,
    progress: Progress | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Image features (float16, one row per reference) and pHashes, decoding in DataLoader workers."""
    features = np.zeros((len(image_refs), encoders.image.dim), dtype=np.float16)
    phashes: list[str | None] = [None] * len(image_refs)
    if not image_refs:
        return features, []
    loader = DataLoader(
        _EncodedImages(shard, image_refs, encoders.image.preprocess, encoders.image.image_size),
        batch_size=encoders.batch_size,
        num_workers=num_workers,
        prefetch_factor=4 if num_workers else None,
        multiprocessing_context=worker_start_context() if num_workers else None,
    )
    done = 0
    for positions, pixels, hashes in loader:
        positions = positions.numpy() if isinstance(positions, torch.Tensor) else np.asarray(positions)
        features[positions] = encoders.image.encode(pixels)
        for position, value in zip(positions.tolist(), hashes):
            phashes[position] = value
        done += len(positions)
        if progress:
            progress(done, len(image_refs))
    if done != len(image_refs):
        raise RuntimeError(f"{shard.shard_id}: decoded {done} images for {len(image_refs)} references")
    return features, phashes


def shard_features(
    shard: ShardFile,
    table: pl.DataFrame,
    encoders: FeatureEncoders,
    num_workers: int = 2,
    progress: Progress | None = None,
) -> pl.DataFrame:
    """The feature table of one shard's normalized caption rows (sample_id, caption, image_ref,
    image_sha256), in row order. An image shared by several rows (COCO's five captions per photo) is
    decoded and encoded once; so is a repeated caption."""
    first_of_image = table.select("image_sha256", "image_ref").unique("image_sha256", keep="first", maintain_order=True)
    image_index = {sha: i for i, sha in enumerate(first_of_image["image_sha256"].to_list())}
    unique_images, unique_hashes = encode_shard_images(
        shard, first_of_image["image_ref"].to_list(), encoders, num_workers, progress
    )
    image_rows = np.asarray([image_index[sha] for sha in table["image_sha256"].to_list()], dtype=np.int64)

    captions = table["caption"].to_list()
    distinct = list(dict.fromkeys(captions))
    caption_index = {caption: i for i, caption in enumerate(distinct)}
    unique_texts = encoders.encode_texts(distinct)
    text_rows = np.asarray([caption_index[c] for c in captions], dtype=np.int64)

    return pl.DataFrame(
        {
            "sample_id": table["sample_id"],
            "image_sha256": table["image_sha256"],
            "phash": pl.Series([unique_hashes[i] for i in image_rows] if len(image_rows) else [], dtype=pl.String),
            "text_sha256": pl.Series(text_sha256(captions), dtype=pl.String),
            "image_feature": _vectors(unique_images, image_rows),
            "text_feature": _vectors(unique_texts, text_rows),
            "produced_by": pl.Series([encoders.identity] * table.height, dtype=pl.String),
        }
    )


def _vectors(unique: np.ndarray, rows: np.ndarray) -> pl.Series:
    return pl.Series(unique[rows].astype(np.float16))
