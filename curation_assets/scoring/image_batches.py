"""A shard's images, read and prepared in DataLoader workers, each worker reading only its own share.

Decoding and preprocessing run in worker processes while the model runs in this one, so the model,
not JPEG decoding, sets the pace. The shard's images are planned once here (image_source) and dealt
out: a worker seeks to its own tar members, row groups or files and reads nothing else, so no byte
of the shard is read twice however many workers there are. (With every model on the CPU the image
pass decodes between the forwards instead: decode_between.py says why.)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from torch.utils.data import default_collate as torch_default_collate

from curation_assets.image_checks import open_image
from curation_assets.image_source import ByteCounter, ImageRead, plan_image_reads, read_images, split_reads
from curation_assets.readers import ShardFile

ImageTransform = Callable[[Image.Image], Any]


@dataclass(frozen=True)
class Decoded:
    """An image decoded for scoring, and the scale it was decoded at."""

    image: Image.Image  # upright RGB
    scale: int  # the JPEG DCT scale it was decoded at: 1 (full size), 2, 4 or 8
    source_size: tuple[int, int]  # the stored width and height, before any scaling or turning
    jpeg: bool


def draft_scale(size: tuple[int, int], min_side: int | None) -> int:
    """The DCT scale open_rgb(data, min_side) decodes a JPEG of `size` at: Pillow's draft rule
    (the largest of 8, 4, 2, 1 that still covers the request) for the request open_rgb makes."""
    if min_side is None:
        return 1
    width, height = size
    ratio = min(width, height) / min_side
    if ratio < 2:
        return 1
    fit = min(width // (int(width / ratio) + 1), height // (int(height / ratio) + 1))
    return next(scale for scale in (8, 4, 2, 1) if fit >= scale)


def decode_rgb(data: bytes, min_side: int | None = None) -> Decoded:
    """Decode to RGB. With `min_side`, JPEGs decode straight at a reduced scale that still covers it
    (libjpeg's DCT scaling), which is several times cheaper than decoding full size and resizing."""
    image = open_image(data)  # only the allow-listed decoders (image_checks.ALLOWED_IMAGE_FORMATS)
    size, jpeg = image.size, image.format == "JPEG"
    if min_side is not None and jpeg:
        scale = min(image.width, image.height) / min_side
        if scale >= 2:
            image.draft("RGB", (int(image.width / scale) + 1, int(image.height / scale) + 1))
    scale = image.decoderconfig[0] if jpeg and image.decoderconfig else 1
    # Models see the picture the way a viewer does: a phone photo stored sideways with an EXIF
    # orientation tag is turned upright first.
    return Decoded(ImageOps.exif_transpose(image).convert("RGB"), scale, size, jpeg)


def open_rgb(data: bytes, min_side: int | None = None) -> Image.Image:
    """decode_rgb's image."""
    return decode_rgb(data, min_side).image


def reduced_for(decoded: Decoded, min_side: int | None) -> Image.Image:
    """The image a model needing `min_side` gets from a decode made for a larger need: a JPEG it
    would have decoded at a coarser DCT scale on its own is box-reduced (Image.reduce) by the ratio
    of the two scales, to the same size that decode would have had. Cheap, and it keeps every model
    seeing about what it saw alone (box averaging, where libjpeg averages in the DCT domain). Other
    formats, and JPEGs decoded at the model's own scale, come back as they are."""
    factor = reduce_factor(decoded, min_side)
    return decoded.image.reduce(factor) if factor > 1 else decoded.image


def reduce_factor(decoded: Decoded, min_side: int | None) -> int:
    """By how much reduced_for shrinks `decoded` for a model needing `min_side` (1: not at all)."""
    if not decoded.jpeg:
        return 1
    wanted = draft_scale(decoded.source_size, min_side)
    return wanted // decoded.scale if wanted > decoded.scale and not wanted % decoded.scale else 1


@dataclass(frozen=True)
class Prepared:
    """What a worker made of one image: `value` for each position that shows it, and whether this
    item cost a decode (only the first position of an image does)."""

    position: int
    value: Any
    worker: int
    bytes_read: int  # this worker's running total, image data and any headers it read
    decoded: int  # decodes this item cost: 1 for an image's first position, 0 for repeats


class ShardImages(IterableDataset):
    """Each worker reads its own share of the planned images and yields `prepare(bytes)` for every
    position that shows each one. `prepare` returns (value, decodes it made)."""

    def __init__(self, shard: ShardFile, shares: list[list[ImageRead]], prepare: Callable[[bytes], tuple[Any, int]]):
        self.shard, self.shares, self.prepare = shard, shares, prepare

    def __iter__(self) -> Iterator[Prepared]:
        worker = get_worker_info()
        workers, me = (worker.num_workers, worker.id) if worker else (1, 0)
        if workers != len(self.shares):
            raise RuntimeError(f"planned {len(self.shares)} shares for {workers} workers")
        counter = ByteCounter()
        for read, data in read_images(self.shard, self.shares[me], counter):
            value, decodes = self.prepare(data)
            for index, position in enumerate(read.positions):
                yield Prepared(position, value, me, counter.bytes_read, decodes if index == 0 else 0)


def worker_start_context():
    """How DataLoader workers start: forked on Linux, whatever the calling process's default.

    A Dagster run launched by the daemon is itself a `spawn` child of the code server, and a spawn
    child's default start method is spawn: each worker then imported torch and our code again, a few
    seconds per worker per shard (measured: a first run of 10 shards spent 131 s in its image pass
    under `dagster dev` for 36 s in process). Forked workers start in milliseconds; they only read and
    decode on the CPU, so a parent's CUDA context is no concern. Elsewhere (macOS: fork is unsafe)
    the platform default stands."""
    import multiprocessing

    return multiprocessing.get_context("fork") if sys.platform.startswith("linux") else None


class LowerPriority:
    """A DataLoader worker_init_fn: the worker's CPU priority lowered by `nice` (Unix; elsewhere the
    worker keeps its parent's). A class, not a closure: spawned workers receive it pickled."""

    def __init__(self, nice: int):
        if nice < 0:
            raise ValueError(f"worker_nice must be 0 or more (lower priority), got {nice}")
        self.nice = nice

    def __call__(self, _worker_id: int) -> None:
        if self.nice and hasattr(os, "nice"):
            os.nice(self.nice)


def shard_loader(
    shard: ShardFile,
    reads: Sequence[ImageRead],
    prepare: Callable[[bytes], tuple[Any, int]],
    collate: Callable[[list[Prepared]], Any],
    *,
    batch_size: int,
    num_workers: int,
    pin_memory: bool = False,
    worker_nice: int = 0,
) -> DataLoader:
    """A DataLoader over the planned images, each worker (or this process, with none) reading its
    share; workers run `worker_nice` below this process's CPU priority (BatchSettings.worker_nice)."""
    return DataLoader(
        ShardImages(shard, split_reads(reads, num_workers), prepare),
        batch_size=batch_size,
        num_workers=num_workers,
        pin_memory=pin_memory,
        collate_fn=collate,
        prefetch_factor=4 if num_workers else None,
        multiprocessing_context=worker_start_context() if num_workers else None,
        worker_init_fn=LowerPriority(worker_nice) if num_workers else None,
    )


class _Decode:
    """One image's bytes -> transform(decoded RGB image) (a class, not a closure: workers may pickle it)."""

    def __init__(self, transform: ImageTransform, min_side: int | None):
        self.transform, self.min_side = transform, min_side

    def __call__(self, data: bytes) -> tuple[Any, int]:
        return self.transform(open_rgb(data, self.min_side)), 1


class _PairCollate:
    """Items -> (positions, batch), the batch made by `collate` from (position, value) pairs, or by
    torch's default collate from the values."""

    def __init__(self, collate: Callable | None):
        self.collate = collate

    def __call__(self, items: list[Prepared]) -> tuple[Any, Any]:
        if self.collate is not None:
            return self.collate([(item.position, item.value) for item in items])
        return torch.tensor([item.position for item in items]), torch_default_collate([item.value for item in items])


def image_batches(
    shard: ShardFile,
    image_refs: Sequence[str],
    transform: ImageTransform,
    *,
    batch_size: int,
    num_workers: int,
    pin_memory: bool = False,
    worker_nice: int = 0,
    min_side: int | None = None,
    collate: Callable | None = None,
) -> Iterator[tuple[np.ndarray, Any]]:
    """(positions into `image_refs`, collated batch) until every image has been yielded once.

    For one transform; several models over the same images share one decode through
    image_pass.score_images instead."""
    if not image_refs:
        return
    loader = shard_loader(
        shard,
        plan_image_reads(shard, image_refs),
        _Decode(transform, min_side),
        _PairCollate(collate),
        batch_size=batch_size,
        num_workers=num_workers,
        pin_memory=pin_memory,
        worker_nice=worker_nice,
    )
    seen = 0
    for positions, batch in loader:
        positions = positions.numpy() if isinstance(positions, torch.Tensor) else np.asarray(positions)
        seen += len(positions)
        yield positions, batch
    if seen != len(image_refs):
        raise RuntimeError(f"{shard.shard_id}: decoded {seen} images for {len(image_refs)} rows")
