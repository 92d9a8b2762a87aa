"""Per-shard proxy features: frozen image and caption features, computed once per sample and stored
like the CLIP embeddings, so comparing recipes costs only training heads.

A feature table has one row per normalized caption row: `sample_id`, `image_sha256`, `image_phash`
(the same pHash as the image_phash table, for contamination), `text_sha256` (which caption the text
feature encodes: a curated pool whose caption was rewritten gets that one re-encoded), `image_feature`
and `text_feature` (float16) and `produced_by` (both encoders and their weights).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np
import polars as pl

from curation_assets.evaluation.encoders import FeatureEncoders
from curation_assets.readers import ShardFile

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


def text_sha256(captions: Sequence[str]) -> list[str]:
    return [hashlib.sha256(caption.encode()).hexdigest() for caption in captions]


def encode_shard_images(
    shard: ShardFile,
    image_refs: Sequence[str],
    encoders: FeatureEncoders,
    num_workers: int = 2,
    progress: Progress | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Image features (float16, one row per reference) and pHashes, from one image pass (the scoring
    stage's: each worker reads only its own members, one decode per image feeds both)."""
    from curation_assets.scoring.batch_settings import BatchSettings
    from curation_assets.scoring.image_models import phash_consumer
    from curation_assets.scoring.image_pass import ImageConsumer, score_images
    from curation_assets.scoring.pixel_handoff import handoff, split_torchvision

    if not image_refs:
        return np.zeros((0, encoders.image.dim), dtype=np.float16), []
    image = encoders.image
    features = ImageConsumer(
        "features",
        min_side=image.image_size,
        score=lambda pixels, _positions: image.encode(pixels),  # runs in this process: no pickling
        output="vector",
        device=str(image.device),  # decides who decodes: workers ahead of a GPU, threads between CPU forwards
        **handoff(image.preprocess, split_torchvision(image.preprocess), image.device),
    )
    hashes = phash_consumer()
    settings = BatchSettings(encoders.batch_size, num_workers, decode="cpu")  # the encoders take PIL transforms
    out = score_images(shard, image_refs, [features, hashes], settings, progress)
    return out["features"].astype(np.float16), out[hashes.name]


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
