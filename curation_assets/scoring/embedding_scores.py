"""Scores derived from stored CLIP embeddings: no image is decoded and no encoder runs again."""

from __future__ import annotations

import numpy as np
import polars as pl


def embedding_matrix(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy().astype(np.float32)


def clip_similarity(embeddings: pl.DataFrame) -> np.ndarray:
    """Cosine similarity of each image with its caption: the quantity Data-Juicer's
    image_text_similarity_filter thresholds (CLIP logits divided by the logit scale), so published
    thresholds such as 0.28 carry over when the same CLIP model is used."""
    images = embedding_matrix(embeddings, "image_embedding")
    texts = embedding_matrix(embeddings, "text_embedding")
    # Embeddings are stored L2-normalised; renormalising undoes float16 rounding drift.
    images /= np.linalg.norm(images, axis=1, keepdims=True).clip(min=1e-12)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True).clip(min=1e-12)
    return (images * texts).sum(axis=1).astype(np.float32)
