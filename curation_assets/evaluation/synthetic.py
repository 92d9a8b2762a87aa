"""Synthetic pair sets with a known structure, for tests and the cached-features benchmark.

Each image has a hidden topic vector; its image features and each of its captions' features are
different noisy linear views of it (image features kept positive like pooled CNN features), so
a proxy can learn to match them, and shuffled captions break exactly that. No model runs.
"""

from __future__ import annotations

import hashlib

import numpy as np

from curation_assets.evaluation.pairs import PairSet

_CHUNK = 16_384


def synthetic_pairs(
    name: str,
    num_images: int,
    captions_per_image: int = 1,
    image_dim: int = 64,
    text_dim: int = 32,
    topics: int = 16,
    noise: float = 0.5,
    seed: int = 0,
    world_seed: int = 0,
) -> PairSet:
    """`num_images` x `captions_per_image` pairs. Sets drawn with the same `world_seed` share the
    linear views (so heads trained on one transfer to another); `seed` draws the images."""
    world = np.random.default_rng([world_seed, 1])
    to_image = world.standard_normal((topics, image_dim), dtype=np.float32)
    to_text = world.standard_normal((topics, text_dim), dtype=np.float32)
    rng = np.random.default_rng([world_seed, seed, 2])
    latent = rng.standard_normal((num_images, topics), dtype=np.float32)
    rows = np.repeat(np.arange(num_images), captions_per_image)
    images = np.empty((num_images, image_dim), dtype=np.float16)
    texts = np.empty((len(rows), text_dim), dtype=np.float16)
    # float32 a chunk at a time, so pools of 100k+ pairs fit in memory.
    for start in range(0, num_images, _CHUNK):
        part = slice(start, min(start + _CHUNK, num_images))
        noise_part = rng.standard_normal((part.stop - start, image_dim), dtype=np.float32)
        images[part] = np.maximum(latent[part] @ to_image + noise * noise_part, 0.0) + 0.1
    for start in range(0, len(rows), _CHUNK):
        part = slice(start, min(start + _CHUNK, len(rows)))
        noise_part = rng.standard_normal((part.stop - start, text_dim), dtype=np.float32)
        texts[part] = latent[rows[part]] @ to_text + noise * noise_part
    image_keys = [f"{name}-{seed}-{world_seed}-{i}" for i in range(num_images)]
    sha = [hashlib.sha256(key.encode()).hexdigest() for key in image_keys]
    phash = [f"{int(rng.integers(0, 2**63)):016x}" for _ in range(num_images)]
    return PairSet(
        name,
        [f"{image_keys[r]}-{j % captions_per_image}" for j, r in enumerate(rows)],
        [f"synthetic caption {j % captions_per_image} of {image_keys[r]}" for j, r in enumerate(rows)],
        [sha[r] for r in rows],
        [phash[r] for r in rows],
        images[rows],
        texts,
    )
