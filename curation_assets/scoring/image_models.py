"""Per-shard scores that need the images: CLIP embeddings, BLIP ITM, watermark, NSFW, pHash.

Each function takes a shard's normalized caption table and an already loaded model, streams the
shard's images through DataLoader workers and returns one row per input row, in input order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import torch

from curation_assets.readers import ShardFile
from curation_assets.scoring.image_batches import image_batches


@dataclass(frozen=True)
class BatchSettings:
    batch_size: int = 64
    num_workers: int = 2
    pin_memory: bool = False

    def loader_kwargs(self) -> dict:
        return {"batch_size": self.batch_size, "num_workers": self.num_workers, "pin_memory": self.pin_memory}


Progress = Callable[[int, int], None]  # (rows done, rows total)


def _embedding_column(name: str, vectors: np.ndarray) -> pl.Series:
    return pl.Series(name, vectors.astype(np.float16))


def clip_embeddings(
    shard: ShardFile, table: pl.DataFrame, clip, settings: BatchSettings, progress: Progress | None = None
) -> pl.DataFrame:
    """L2-normalised CLIP image and caption embeddings, float16: computed once, read by every
    embedding-based score (similarity, aesthetics, dedup, coreset, eval)."""
    rows = table.height
    images = np.zeros((rows, clip.embed_dim), dtype=np.float16)
    done = 0
    for positions, pixels in image_batches(
        shard, table["image_ref"].to_list(), clip.preprocess, min_side=clip.image_size, **settings.loader_kwargs()
    ):
        images[positions] = clip.encode_images(pixels).cpu().numpy().astype(np.float16)
        done += len(positions)
        if progress:
            progress(done, rows)
    captions = table["caption"].to_list()
    texts = np.zeros((rows, clip.embed_dim), dtype=np.float16)
    for start in range(0, rows, settings.batch_size):
        texts[start : start + settings.batch_size] = (
            clip.encode_texts(captions[start : start + settings.batch_size]).cpu().numpy()
        )
    return table.select("sample_id").with_columns(
        _embedding_column("image_embedding", images), _embedding_column("text_embedding", texts)
    )


def per_image_scores(
    shard: ShardFile,
    table: pl.DataFrame,
    transform,
    score: Callable[[Any, np.ndarray], np.ndarray],
    settings: BatchSettings,
    min_side: int | None,
    progress: Progress | None = None,
) -> np.ndarray:
    """One float per row of `table`: `score(batch, positions)` on decoded, transformed images."""
    scores = np.full(table.height, np.nan, dtype=np.float32)
    done = 0
    for positions, batch in image_batches(
        shard, table["image_ref"].to_list(), transform, min_side=min_side, **settings.loader_kwargs()
    ):
        scores[positions] = score(batch, positions)
        done += len(positions)
        if progress:
            progress(done, table.height)
    return scores


def itm_probabilities(
    shard: ShardFile, table: pl.DataFrame, itm, settings: BatchSettings, progress: Progress | None = None
) -> np.ndarray:
    captions = table["caption"].to_list()

    def score(pixels, positions):
        return itm.match_probability(pixels, [captions[p] for p in positions]).cpu().numpy()

    return per_image_scores(shard, table, itm.preprocess, score, settings, itm.image_size, progress)


def watermark_probabilities(
    shard: ShardFile, table: pl.DataFrame, detector, settings: BatchSettings, progress: Progress | None = None
) -> np.ndarray:
    def score(pixels, _positions):
        return detector.score(pixels).cpu().numpy()

    return per_image_scores(shard, table, detector.preprocess, score, settings, detector.image_size, progress)


def nsfw_probabilities(
    shard: ShardFile, table: pl.DataFrame, classifier, settings: BatchSettings, progress: Progress | None = None
) -> np.ndarray:
    from curation_assets.models.nsfw import nsfw_preprocess

    def score(batch, _positions):
        return classifier.score(batch.numpy() if isinstance(batch, torch.Tensor) else np.asarray(batch))

    # Open-NSFW resizes to 256 first, so JPEGs can decode at that scale.
    return per_image_scores(shard, table, nsfw_preprocess, score, settings, 256, progress)


def _keep_list(items):
    positions, values = zip(*items)
    return torch.tensor(positions), list(values)


def perceptual_hashes(shard: ShardFile, table: pl.DataFrame, settings: BatchSettings) -> list[str]:
    from curation_assets.scoring.hashes import phash_hex

    hashes: list[str | None] = [None] * table.height
    for positions, values in image_batches(
        shard, table["image_ref"].to_list(), phash_hex, min_side=64, collate=_keep_list, **settings.loader_kwargs()
    ):
        for position, value in zip(positions, values):
            hashes[position] = value
    return hashes  # type: ignore[return-value]
