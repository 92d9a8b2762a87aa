"""New captions for a shard's entrants, and their CLIP similarity with the stored image embeddings."""

from __future__ import annotations

import numpy as np
import polars as pl

from curation_assets.readers import ShardFile
from curation_assets.scoring.image_batches import image_batches
from curation_assets.scoring.image_models import BatchSettings, Progress


def generate_candidates(
    shard: ShardFile,
    entered: pl.DataFrame,
    captioner,
    generation,
    settings: BatchSettings,
    progress: Progress | None = None,
) -> list[list[str]]:
    """`generation.num_candidates` captions per entrant, in `entered` order."""
    candidates: list[list[str] | None] = [None] * entered.height
    done = 0
    for positions, pixels in image_batches(
        shard,
        entered["image_ref"].to_list(),
        captioner.preprocess,
        min_side=captioner.image_size,
        **settings.loader_kwargs(),
    ):
        for position, texts in zip(positions, captioner.generate(pixels, generation)):
            candidates[position] = texts
        done += len(positions)
        if progress:
            progress(done, entered.height)
    return candidates  # type: ignore[return-value]


def candidate_similarities(
    clip, image_embeddings: np.ndarray, candidates: list[list[str]], batch_size: int
) -> np.ndarray:
    """(entrants, candidates) CLIP cosine similarity of each candidate with its own image, using the
    stored image embedding: the image encoder does not run again."""
    if not candidates:
        return np.zeros((0, 0), dtype=np.float32)
    k = len(candidates[0])
    flat = [text for row in candidates for text in row]
    texts = np.concatenate(
        [clip.encode_texts(flat[start : start + batch_size]).cpu().numpy() for start in range(0, len(flat), batch_size)]
    ).reshape(len(candidates), k, -1)
    images = image_embeddings.astype(np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True).clip(min=1e-12)
    return np.einsum("nkd,nd->nk", texts, images).astype(np.float32)
