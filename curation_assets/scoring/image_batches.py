"""Batches of decoded, preprocessed images for a model, decoded in DataLoader workers.

Decoding and preprocessing run in worker processes while the model runs in this one, so the model,
not JPEG decoding, sets the pace. Every worker streams the shard's bytes and decodes only its share
(position modulo worker count): reading is cheap next to decoding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from curation_assets.image_checks import open_image
from curation_assets.image_source import iter_image_bytes
from curation_assets.readers import ShardFile

ImageTransform = Callable[[Image.Image], Any]


def open_rgb(data: bytes, min_side: int | None = None) -> Image.Image:
    """Decode to RGB. With `min_side`, JPEGs decode straight at a reduced scale that still covers it
    (libjpeg's DCT scaling), which is several times cheaper than decoding full size and resizing."""
    image = open_image(data)  # only the allow-listed decoders (image_checks.ALLOWED_IMAGE_FORMATS)
    if min_side is not None and image.format == "JPEG":
        scale = min(image.width, image.height) / min_side
        if scale >= 2:
            image.draft("RGB", (int(image.width / scale) + 1, int(image.height / scale) + 1))
    # Models see the picture the way a viewer does: a phone photo stored sideways with an EXIF
    # orientation tag is turned upright first.
    return ImageOps.exif_transpose(image).convert("RGB")


class ShardImages(IterableDataset):
    def __init__(self, shard: ShardFile, image_refs: Sequence[str], transform: ImageTransform, min_side: int | None):
        self.shard, self.image_refs, self.transform, self.min_side = shard, list(image_refs), transform, min_side

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        worker = get_worker_info()
        workers, me = (worker.num_workers, worker.id) if worker else (1, 0)
        for count, (position, data) in enumerate(iter_image_bytes(self.shard, self.image_refs)):
            if count % workers == me:
                yield position, self.transform(open_rgb(data, self.min_side))


def image_batches(
    shard: ShardFile,
    image_refs: Sequence[str],
    transform: ImageTransform,
    *,
    batch_size: int,
    num_workers: int,
    pin_memory: bool = False,
    min_side: int | None = None,
    collate: Callable | None = None,
) -> Iterator[tuple[np.ndarray, Any]]:
    """(positions into `image_refs`, collated batch) until every image has been yielded once."""
    if not image_refs:
        return
    loader = DataLoader(
        ShardImages(shard, image_refs, transform, min_side),
        batch_size=batch_size,
        num_workers=num_workers,
        pin_memory=pin_memory,
        collate_fn=collate,
        prefetch_factor=4 if num_workers else None,
    )
    seen = 0
    for positions, batch in loader:
        positions = positions.numpy() if isinstance(positions, torch.Tensor) else np.asarray(positions)
        seen += len(positions)
        yield positions, batch
    if seen != len(image_refs):
        raise RuntimeError(f"{shard.shard_id}: decoded {seen} images for {len(image_refs)} rows")
