"""One pass over a shard's images feeding every image model that is due.

Each image is read once and decoded once, at the largest size any due model needs (a reduced JPEG
decode when all need less than full size); every model's transform is applied to that one decoded
image, batches are assembled per model, and each model runs on its batch in this process. Who decodes
depends on where the models run (BatchSettings.cpu_decode): beside a GPU, DataLoader workers decode
the next batches while it computes (each worker reading only its own members); with every model on
the CPU, this process's threads decode each batch between the forwards (decode_between), because
workers beside CPU forwards slow them by more than they save.

Which models are due is the caller's business: it passes one ImageConsumer per table to compute, so
a changed model re-runs only its own table. A model alone and the same model in a pass with others
see the same pixels, so compute the same values, whenever the image was decoded at the same scale:
always for formats other than JPEG, and for JPEGs when the caller pins the decode size
(BatchSettings.decode_min_side). Otherwise a JPEG that a small-input model would have decoded at a
coarser DCT scale on its own is box-reduced to exactly that size (image_batches.reduced_for): the
same picture to within a few levels, for a fraction of a second decode.

Where CUDA is present and every due model has a tensor transform, decoding moves to the GPU
(image_device): workers read bytes, nvJPEG decodes whole batches, resize / normalise run on the
device, and copies come from pinned memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch.utils.data import default_collate

from curation_assets.image_source import ByteCounter, plan_image_reads
from curation_assets.readers import ShardFile
from curation_assets.scoring.batch_settings import CPU_DECODE_CHOICES
from curation_assets.scoring.decode_between import DecodeBetweenForwards
from curation_assets.scoring.image_batches import Prepared, decode_rgb, reduce_factor, shard_loader
from curation_assets.scoring.image_device import (
    EncodedImage,
    ModelViews,
    TensorTransform,
    decode_on_device,
    prepare_for_device,
)

OutputKind = Literal["scalar", "vector", "object"]
Progress = Callable[[int, int], None]  # (rows done, rows total)
Decode = Literal["auto", "cpu", "device"]


@dataclass(frozen=True)
class ImageConsumer:
    """One model fed by the pass.

    `transform` and `collate` run where images are decoded: DataLoader workers (so must be picklable
    where workers are spawned) or decode threads; `per_batch`, `score` and `device_transform` run in
    this process. On the CPU path a batch is `per_batch(collate(transformed images))`: the decoders
    hand over uint8 pixels and this process
    makes them float a batch at a time (pixel_handoff). `score(batch, positions)` returns one output
    per row of the batch: a float ("scalar"), a vector ("vector": rows of one array), or any object
    ("object", e.g. a hash string).
    """

    name: str
    transform: Callable[[Image.Image], Any]  # decoded upright RGB image -> this model's input
    min_side: int | None  # the smallest decoded side `transform` needs; None: full size
    score: Callable[[Any, np.ndarray], Any]
    output: OutputKind = "scalar"
    collate: Callable[[list], Any] = default_collate
    per_batch: Callable[[Any], Any] | None = None  # the collated batch -> the model's input; None: as is
    device_transform: TensorTransform | None = None  # decoded uint8 CHW tensors on the device -> batch
    device: str = "cpu"  # where the model runs ("cuda", "cuda:1", "cpu", "mps")


@dataclass
class PassStats:
    """What one pass did: the figures `make bench` reports and the tests check."""

    path: str = ""  # "cpu" (PIL in workers) or "device:<device>" (batched decode on the device)
    rows: int = 0  # positions scored
    images: int = 0  # distinct images among them
    # Decodes of source images (a model's own preprocessing, e.g. NSFW's JPEG round trip, is not one).
    decodes: int = 0
    bytes_read: dict[int, int] = field(default_factory=dict)  # per reader (worker id; 0 without workers)
    plan_bytes: int = 0  # read in this process to plan: tar headers, parquet footers
    seconds: float = 0.0
    decoders: str = ""  # who decoded: "2 workers ahead" or "2 threads between forwards" (cpu), or "" (device)
    waiting_seconds: float = 0.0  # this process waiting for the next batch (decode-bound when large)
    model_seconds: dict[str, float] = field(default_factory=dict)  # per consumer: transform on device + score

    @property
    def decodes_per_image(self) -> float:
        return self.decodes / self.images if self.images else 0.0


@dataclass(frozen=True)
class DecodePath:
    kind: Literal["cpu", "device"]
    device: torch.device | None
    reason: str


def choose_path(consumers: Sequence[ImageConsumer], decode: Decode = "auto") -> DecodePath:
    """Where the pass decodes.

    `auto`: on the GPU when CUDA is available, some due model runs on it, and every due model has a
    tensor transform; otherwise in CPU workers. `cpu` forces the worker path. `device` forces the
    tensor path on the models' device, even the CPU (tests use it to check the tensor transforms)."""
    if decode == "cpu":
        return DecodePath("cpu", None, "asked for")
    missing = [consumer.name for consumer in consumers if consumer.device_transform is None]
    devices = {torch.device(consumer.device) for consumer in consumers if consumer.device != "cpu"}
    cuda = sorted((d for d in devices if d.type == "cuda"), key=str)
    if decode == "device":
        if missing:
            raise ValueError(f"decode='device' but {', '.join(missing)} have no tensor transform")
        return DecodePath("device", cuda[0] if cuda else torch.device("cpu"), "asked for")
    if decode != "auto":
        raise ValueError(f"decode must be auto, cpu or device, not {decode!r}")
    if not torch.cuda.is_available():
        return DecodePath("cpu", None, "no CUDA")
    if not cuda:
        return DecodePath("cpu", None, "no due model runs on CUDA")
    if missing:
        return DecodePath("cpu", None, f"no tensor transform for {', '.join(missing)}")
    return DecodePath("device", cuda[0], "CUDA")


def decode_between_forwards(consumers: Sequence[ImageConsumer], cpu_decode: str = "auto") -> bool:
    """Whether the CPU path decodes in this process between the forwards (decode_between) rather
    than in DataLoader workers ahead of them: `auto` when every due model runs on the CPU."""
    if cpu_decode not in CPU_DECODE_CHOICES:
        raise ValueError(
            f"cpu_decode must be {', '.join(CPU_DECODE_CHOICES[:-1])} or {CPU_DECODE_CHOICES[-1]}, not {cpu_decode!r}"
        )
    if cpu_decode != "auto":
        return cpu_decode == "between"
    return all(torch.device(consumer.device).type == "cpu" for consumer in consumers)


def decode_side(consumers: Sequence[ImageConsumer], at_least: int | None = None) -> int | None:
    """The decoded size that serves every consumer: the largest need (and at least `at_least`), or
    full size if any needs it."""
    sides = [consumer.min_side for consumer in consumers] + ([at_least] if at_least else [])
    return None if any(side is None for side in sides) else max(sides)  # type: ignore[type-var]


class _DecodeForAll:
    """Worker side of the CPU path: decode once, at the largest size any consumer needs; then each
    consumer's transform on that image, box-reduced first for a consumer that would have decoded
    the JPEG at a coarser scale on its own (image_batches.reduced_for)."""

    def __init__(self, transforms: dict[str, tuple[Callable, int | None]], min_side: int | None):
        self.transforms, self.min_side = transforms, min_side

    def __call__(self, data: bytes) -> tuple[dict[str, Any], int]:
        decoded = decode_rgb(data, self.min_side)
        out, reduced = {}, {1: decoded.image}
        for name, (transform, need) in self.transforms.items():
            factor = reduce_factor(decoded, need)
            if factor not in reduced:
                reduced[factor] = decoded.image.reduce(factor)
            out[name] = transform(reduced[factor])
        return out, 1


def _prepare_encoded(data: bytes) -> tuple[EncodedImage, int]:
    return prepare_for_device(data)


@dataclass
class _Batch:
    positions: np.ndarray
    inputs: Any  # CPU path: {consumer: collated batch}; device path: [EncodedImage]
    decodes: int
    bytes_read: dict[int, int]

    def pin_memory(self) -> _Batch:
        from torch.utils.data._utils.pin_memory import pin_memory

        if isinstance(self.inputs, dict):
            return _Batch(self.positions, pin_memory(self.inputs), self.decodes, self.bytes_read)
        return _Batch(self.positions, [item.pin_memory() for item in self.inputs], self.decodes, self.bytes_read)


class _Collate:
    """Worker side: items -> one _Batch; per consumer with its own collate on the CPU path."""

    def __init__(self, collates: dict[str, Callable] | None):
        self.collates = collates

    def __call__(self, items: list[Prepared]) -> _Batch:
        reads: dict[int, int] = {}
        for item in items:
            reads[item.worker] = max(reads.get(item.worker, 0), item.bytes_read)
        if self.collates is None:
            inputs: Any = [item.value for item in items]
        else:
            inputs = {name: collate([item.value[name] for item in items]) for name, collate in self.collates.items()}
        positions = np.fromiter((item.position for item in items), dtype=np.int64, count=len(items))
        return _Batch(positions, inputs, sum(item.decoded for item in items), reads)


class _Sink:
    """One consumer's outputs, placed by position."""

    def __init__(self, kind: OutputKind, rows: int):
        self.kind, self.rows = kind, rows
        self.values: Any = np.full(rows, np.nan, dtype=np.float32) if kind == "scalar" else None
        if kind == "object":
            self.values = [None] * rows

    def put(self, positions: np.ndarray, output: Any) -> None:
        if self.kind == "scalar":
            self.values[positions] = np.asarray(output, dtype=np.float32).reshape(-1)
        elif self.kind == "vector":
            output = output.cpu().numpy() if isinstance(output, torch.Tensor) else np.asarray(output)
            if self.values is None:
                self.values = np.zeros((self.rows, *output.shape[1:]), dtype=output.dtype)
            self.values[positions] = output
        else:
            for position, value in zip(positions.tolist(), output):
                self.values[position] = value

    def result(self) -> Any:
        if self.kind == "vector" and self.values is None:
            return np.zeros((0, 0), dtype=np.float32)
        return self.values


def _add(totals: dict[str, float], key: str, seconds: float) -> None:
    totals[key] = totals.get(key, 0.0) + seconds


def score_images(
    shard: ShardFile,
    image_refs: Sequence[str],
    consumers: Sequence[ImageConsumer],
    settings,
    progress: Progress | None = None,
    *,
    stats: PassStats | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Every consumer's outputs for every row of `image_refs`, in input order, from one read and one
    decode per image. `settings` is image_models.BatchSettings (batch size, workers, pinned memory,
    decode path, who decodes). `meanwhile` runs in this process before the first batch, once workers
    have started decoding if there are any (work that needs no image, such as encoding the captions,
    fills the wait for the first batch). Returns
    {consumer name: float32 array | (rows, d) array | list}."""
    names = [consumer.name for consumer in consumers]
    if len(set(names)) != len(names):
        raise ValueError(f"consumer names must be unique, got {names}")
    stats = stats if stats is not None else PassStats()
    started = time.perf_counter()
    rows = len(image_refs)
    sinks = {consumer.name: _Sink(consumer.output, rows) for consumer in consumers}
    path = choose_path(consumers, getattr(settings, "decode", "auto"))
    stats.path = "cpu" if path.kind == "cpu" else f"device:{path.device}"
    if not consumers or not rows:
        if meanwhile:
            meanwhile()
        return {name: sink.result() for name, sink in sinks.items()}

    planning = ByteCounter()
    reads = plan_image_reads(shard, image_refs, planning)
    stats.plan_bytes += planning.bytes_read
    stats.images += len(reads)
    if path.kind == "cpu":
        prepare: Callable = _DecodeForAll(
            {c.name: (c.transform, c.min_side) for c in consumers},
            decode_side(consumers, getattr(settings, "decode_min_side", None)),
        )
        collate = _Collate({c.name: c.collate for c in consumers})
    else:
        prepare, collate = _prepare_encoded, _Collate(None)
    loader: Iterable
    if path.kind == "cpu" and decode_between_forwards(consumers, getattr(settings, "cpu_decode", "auto")):
        threads = max(1, settings.num_workers)
        loader = DecodeBetweenForwards(shard, reads, prepare, collate, batch_size=settings.batch_size, threads=threads)
        stats.decoders = f"{threads} threads between forwards"
    else:
        loader = shard_loader(
            shard,
            reads,
            prepare,
            collate,
            batch_size=settings.batch_size,
            num_workers=settings.num_workers,
            pin_memory=settings.pin_memory and torch.cuda.is_available(),
            worker_nice=getattr(settings, "worker_nice", 0),
        )
        stats.decoders = f"{settings.num_workers} workers ahead" if path.kind == "cpu" else ""
    done = 0
    read_here: dict[int, int] = {}
    images = None
    batches = iter(loader)  # workers start decoding their first batches now (between forwards: on next())
    if meanwhile:
        working = time.perf_counter()
        meanwhile()
        _add(stats.model_seconds, "meanwhile", time.perf_counter() - working)
    while True:
        waited = time.perf_counter()
        batch = next(batches, None)
        stats.waiting_seconds += time.perf_counter() - waited
        if batch is None:
            break
        positions = batch.positions
        if path.kind == "device":
            decoding = time.perf_counter()
            images, decoded = decode_on_device(batch.inputs, path.device)
            views = ModelViews(images, [item.jpeg is not None for item in batch.inputs])
            stats.decodes += decoded
            _add(stats.model_seconds, "decode", time.perf_counter() - decoding)
        for consumer in consumers:
            scoring = time.perf_counter()
            if path.kind == "device":
                inputs = consumer.device_transform(views.for_model(consumer.min_side))
            else:
                inputs = batch.inputs[consumer.name]
                inputs = consumer.per_batch(inputs) if consumer.per_batch else inputs
            sinks[consumer.name].put(positions, consumer.score(inputs, positions))
            _add(stats.model_seconds, consumer.name, time.perf_counter() - scoring)
        images = views = None  # the decoded batch on the device is freed before the next is made
        stats.decodes += batch.decodes
        for worker, count in batch.bytes_read.items():  # running totals: the last is the worker's total
            read_here[worker] = max(read_here.get(worker, 0), count)
        done += len(positions)
        if progress:
            progress(done, rows)
    if done != rows:
        raise RuntimeError(f"{shard.shard_id}: scored {done} images for {rows} rows")
    stats.rows += done
    for worker, count in read_here.items():
        stats.bytes_read[worker] = stats.bytes_read.get(worker, 0) + count
    stats.seconds += time.perf_counter() - started
    return {name: sink.result() for name, sink in sinks.items()}
