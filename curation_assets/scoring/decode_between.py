"""A shard's images decoded in this process, a batch at a time, between the models' forwards.

Where every due model runs on the CPU, its forwards already use every core (torch's and
onnxruntime's thread pools). DataLoader workers decoding beside them do not use idle cores: they take
cores the forwards need, and a forward split over threads waits for its slowest thread. Measured on
2 cores with ViT-B/32 (benchmarks/scoring_pass.py): the five models ran 15-30 % slower beside two
workers, more than the workers saved, so the pass was no faster than decoding serially in the main
thread. Here each batch is decoded when the models ask for it, by a thread pool over all cores (Pillow
and libjpeg release the GIL), and the forwards then run alone: the pass costs the forwards plus the
decoding spread over the cores. One reader thread fetches the bytes ahead (I/O, which costs no core
and hides object-store latency).

With a model on a GPU the cores are free while it computes: image_pass then keeps DataLoader workers
decoding ahead (image_batches.shard_loader).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from curation_assets.image_source import ByteCounter, ImageRead, read_images
from curation_assets.readers import ShardFile
from curation_assets.scoring.image_batches import Prepared

_DONE = object()


class DecodeBetweenForwards:
    """Iterable of collated batches, like shard_loader's DataLoader: `prepare(bytes)` on each image
    by `threads` threads when the batch is asked for, `collate(items)` per batch."""

    def __init__(
        self,
        shard: ShardFile,
        reads: Sequence[ImageRead],
        prepare: Callable[[bytes], tuple[Any, int]],
        collate: Callable[[list[Prepared]], Any],
        *,
        batch_size: int,
        threads: int,
        read_ahead_batches: int = 2,
    ):
        if batch_size < 1 or threads < 1:
            raise ValueError(f"batch_size and threads must be at least 1, got {batch_size} and {threads}")
        self.shard, self.reads, self.prepare, self.collate = shard, list(reads), prepare, collate
        self.batch_size, self.threads = batch_size, threads
        self.read_ahead = read_ahead_batches * batch_size
        self.counter = ByteCounter()

    def __iter__(self) -> Iterator[Any]:
        fetched: queue.Queue = queue.Queue(maxsize=max(1, self.read_ahead))
        stop = threading.Event()
        reader = threading.Thread(target=self._read, args=(fetched, stop), name="image-bytes-reader", daemon=True)
        reader.start()
        pending: list[Prepared] = []
        try:
            with ThreadPoolExecutor(self.threads, thread_name_prefix="image-decode") as pool:
                for group in self._groups(fetched):
                    decoded = pool.map(self.prepare, [data for _, data in group])
                    for (read, _), (value, decodes) in zip(group, decoded):
                        for index, position in enumerate(read.positions):
                            pending.append(
                                Prepared(position, value, 0, self.counter.bytes_read, decodes if index == 0 else 0)
                            )
                    while len(pending) >= self.batch_size:
                        yield self.collate(pending[: self.batch_size])
                        del pending[: self.batch_size]
            if pending:
                yield self.collate(pending)
        finally:
            stop.set()  # a caller that stops early releases the reader
            while reader.is_alive():
                try:
                    fetched.get_nowait()
                except queue.Empty:
                    reader.join(timeout=0.05)

    def _read(self, fetched: queue.Queue, stop: threading.Event) -> None:
        try:
            for item in read_images(self.shard, self.reads, self.counter):
                if stop.is_set():
                    return
                fetched.put(item)
            fetched.put(_DONE)
        except BaseException as error:  # handed to the consuming thread, which raises it
            fetched.put(error)

    def _groups(self, fetched: queue.Queue) -> Iterator[list[tuple[ImageRead, bytes]]]:
        group: list[tuple[ImageRead, bytes]] = []
        while True:
            item = fetched.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            group.append(item)
            if len(group) == self.batch_size:
                yield group
                group = []
        if group:
            yield group
