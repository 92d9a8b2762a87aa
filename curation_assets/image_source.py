"""Read the image bytes of a shard's valid rows back from the shard, by their `image_ref`.

Ingest stores references, not bytes (image bytes stay in their shards). Scoring reads them back in
two steps, so that several readers (DataLoader workers) can share one shard without each reading
all of it:

1. `plan_image_reads`, once, in one process: one `ImageRead` per distinct image, in the shard's own
   order, saying where its bytes are: a tar member's data offset and size (from one walk over the
   tar's headers), the parquet row group that holds a row (from the footer), or a file's path.
2. `read_images`, in any process, for any subset of the plan: seeks straight to each tar member,
   reads only its own row groups, or reads only its own files. `split_reads` deals a plan out so
   that every byte range is read by exactly one reader.

Each scheme is read the way its reader read it (the same tar walk, the same cell unwrapping), so the
bytes are the ones ingest checked.
"""

from __future__ import annotations

import tarfile
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import pyarrow.parquet as pq

from curation_assets.image_checks import read_image_file
from curation_assets.image_ref import ImageRef, Scheme, image_value
from curation_assets.quarantine import Quarantined
from curation_assets.readers import ShardFile
from curation_assets.readers.shard_bytes import file_size
from curation_assets.readers.tar_walk import Member, walk_tar


@dataclass(frozen=True)
class ImageRead:
    """One distinct image of a shard and where its bytes are."""

    ref: ImageRef
    positions: tuple[int, ...]  # every position in the requested image_refs that names this image
    offset: int = -1  # tar: where the member's data starts
    size: int = -1  # tar: the member's size
    row_group: int = -1  # parquet: the row group holding the row
    group_first_row: int = -1  # parquet: that group's first row in the file
    inline: bytes | None = field(default=None, repr=False)  # tar sparse members, read during the walk
    footer: Any = field(default=None, repr=False, compare=False)  # parquet: the file's metadata, read once


@dataclass
class ByteCounter:
    """Bytes one reader pulled from storage (image data, tar headers, parquet footers and pages)."""

    bytes_read: int = 0


class _CountingFile:
    """A binary file that adds every byte it returns to a ByteCounter (tarfile and pyarrow call only
    read / seek / tell on it)."""

    def __init__(self, handle: BinaryIO, counter: ByteCounter):
        self._handle, self._counter = handle, counter

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self._counter.bytes_read += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return self._handle.closed

    def close(self) -> None:
        self._handle.close()


def _wanted(shard: ShardFile, image_refs: Sequence[str]) -> dict[Scheme, dict[ImageRef, list[int]]]:
    by_scheme: dict[Scheme, dict[ImageRef, list[int]]] = defaultdict(lambda: defaultdict(list))
    unknown = set()
    for position, text in enumerate(image_refs):
        try:
            ref = ImageRef.parse(text)
        except ValueError:
            if text.partition(":")[0] in {scheme.value for scheme in Scheme}:
                raise  # a known scheme written wrong: say what is wrong with it
            unknown.add(text.partition(":")[0])
            continue
        by_scheme[ref.scheme][ref].append(position)
    if unknown:
        raise ValueError(f"unknown image_ref scheme(s) {sorted(unknown)} in shard {shard.shard_id}")
    return by_scheme


def plan_image_reads(
    shard: ShardFile, image_refs: Sequence[str], counter: ByteCounter | None = None
) -> list[ImageRead]:
    """One ImageRead per distinct image of `image_refs`, tar members first (archive order), then
    parquet rows (file order), then files. Fails at once, before any image is read, when a
    referenced member or row is no longer in the shard."""
    counter = counter if counter is not None else ByteCounter()
    wanted = _wanted(shard, image_refs)
    reads: list[ImageRead] = []
    if Scheme.tar in wanted:
        reads += _plan_tar(shard, wanted[Scheme.tar], counter)
    if Scheme.parquet in wanted:
        reads += _plan_parquet(shard, wanted[Scheme.parquet], counter)
    reads += [ImageRead(ref, tuple(positions)) for ref, positions in wanted.get(Scheme.file, {}).items()]
    return reads


def split_reads(reads: Sequence[ImageRead], readers: int) -> list[list[ImageRead]]:
    """`reads` dealt out to `readers`, each image to exactly one.

    Tar members and files are dealt in turn (image i to reader i mod n), the order the old
    stream-and-skip workers kept, so batches hold the same images as before. A parquet row group is
    read in one piece (its pages hold many rows), so whole groups go to the reader with the fewest
    images so far.
    """
    readers = max(1, readers)
    shares: list[list[ImageRead]] = [[] for _ in range(readers)]
    by_group: dict[int, list[ImageRead]] = defaultdict(list)
    turn = 0
    for read in reads:
        if read.ref.scheme is Scheme.parquet:
            by_group[read.row_group].append(read)
        else:
            shares[turn % readers].append(read)
            turn += 1
    for group in sorted(by_group):
        min(shares, key=len).extend(by_group[group])
    return shares


def read_images(
    shard: ShardFile, reads: Sequence[ImageRead], counter: ByteCounter | None = None
) -> Iterator[tuple[ImageRead, bytes]]:
    """The bytes of each planned image, reading nothing else of the shard's images."""
    counter = counter if counter is not None else ByteCounter()
    tar_reads = [read for read in reads if read.ref.scheme is Scheme.tar]
    parquet_reads = [read for read in reads if read.ref.scheme is Scheme.parquet]
    if tar_reads:
        yield from _read_tar(shard, tar_reads, counter)
    if parquet_reads:
        yield from _read_parquet(shard, parquet_reads, counter)
    for read in reads:
        if read.ref.scheme is Scheme.file:
            try:
                data = read_image_file(shard.data_root / read.ref.name, shard.limits.max_image_bytes)
            except Quarantined as problem:
                raise FileNotFoundError(
                    f"{read.ref.format()} of {shard.shard_id}: {problem.detail}; re-ingest"
                ) from None
            counter.bytes_read += len(data)
            yield read, data


def iter_image_bytes(shard: ShardFile, image_refs: Sequence[str]) -> Iterator[tuple[int, bytes]]:
    """(position in `image_refs`, bytes) for every reference, in the shard's own order."""
    for read, data in read_images(shard, plan_image_reads(shard, image_refs)):
        for position in read.positions:
            yield position, data


# --- tar ------------------------------------------------------------------------------------------


def _plan_tar(shard: ShardFile, wanted: dict[ImageRef, list[int]], counter: ByteCounter) -> list[ImageRead]:
    by_name = {ref.name: (ref, positions) for ref, positions in wanted.items()}
    reads = []
    with shard.path.open("rb") as raw:
        handle = _CountingFile(raw, counter)
        for event in walk_tar(handle, file_size(raw)):
            # The first member of a name is the one ingest kept (later samples with its key are
            # quarantined as duplicates), so each name is taken once and then forgotten.
            if isinstance(event, Member) and event.info.isreg() and event.name in by_name:
                ref, positions = by_name.pop(event.name)
                info = event.info
                # A sparse member's bytes are not one range of the file: read it here, through
                # tarfile, which fills the holes. (Image members never are, in practice.)
                inline = event.read() if info.sparse is not None else None
                reads.append(ImageRead(ref, tuple(positions), info.offset_data, info.size, inline=inline))
                if not by_name:
                    break
    if by_name:
        raise FileNotFoundError(
            f"{len(by_name)} image members of {shard.shard_id} are no longer in the tar "
            f"(e.g. {next(iter(by_name))!r}); re-ingest the shard"
        )
    return reads


def _read_tar(shard: ShardFile, reads: list[ImageRead], counter: ByteCounter) -> Iterator[tuple[ImageRead, bytes]]:
    with shard.path.open("rb") as raw:
        handle = _CountingFile(raw, counter)
        for read in sorted(reads, key=lambda r: r.offset):  # forward seeks only
            if read.inline is not None:
                yield read, read.inline
                continue
            handle.seek(read.offset)
            data = handle.read(read.size)
            if len(data) != read.size:
                raise tarfile.ReadError(f"unexpected end of data in {read.ref.format()} of {shard.shard_id}")
            yield read, data


# --- parquet --------------------------------------------------------------------------------------


def _plan_parquet(shard: ShardFile, wanted: dict[ImageRef, list[int]], counter: ByteCounter) -> list[ImageRead]:
    with shard.path.open("rb") as raw:
        metadata = pq.ParquetFile(_CountingFile(raw, counter)).metadata
    starts, first = [], 0
    for group in range(metadata.num_row_groups):
        starts.append((first, first + metadata.row_group(group).num_rows, group))
        first += metadata.row_group(group).num_rows
    reads, missing = [], []
    for ref, positions in sorted(wanted.items(), key=lambda item: (item[0].row, item[0].column, item[0].index or 0)):
        holder = next(((start, group) for start, end, group in starts if start <= ref.row < end), None)
        if holder is None:
            missing.append(ref.format())
            continue
        reads.append(ImageRead(ref, tuple(positions), row_group=holder[1], group_first_row=holder[0], footer=metadata))
    if missing:
        raise FileNotFoundError(f"{len(missing)} rows of {shard.shard_id} are gone (e.g. {missing[0]}); re-ingest")
    return reads


def _read_parquet(shard: ShardFile, reads: list[ImageRead], counter: ByteCounter) -> Iterator[tuple[ImageRead, bytes]]:
    by_group: dict[tuple[int, int, str], dict[int, list[ImageRead]]] = defaultdict(lambda: defaultdict(list))
    for read in reads:
        by_group[(read.row_group, read.group_first_row, read.ref.column)][read.ref.row].append(read)
    with shard.path.open("rb") as raw:
        # The footer the plan read: readers go straight to their row groups' column chunks.
        parquet = pq.ParquetFile(_CountingFile(raw, counter), metadata=reads[0].footer)
        for (group, first, column), by_row in sorted(by_group.items()):
            yield from _rows_of_group(parquet, group, first, column, by_row, shard)
    left = [
        read.ref.format() for by_row in by_group.values() for group_reads in by_row.values() for read in group_reads
    ]
    if left:
        raise FileNotFoundError(f"{len(left)} rows of {shard.shard_id} are gone (e.g. {left[0]}); re-ingest")


def _rows_of_group(parquet, group: int, first: int, column: str, by_row: dict[int, list[ImageRead]], shard):
    """The wanted cells of one row group, read in the batches the reader read them in and no
    further: a group damaged after its valid rows still yields every valid row. Rows yielded are
    removed from `by_row`; whatever is left was not found."""
    needed = sorted(by_row)
    start = first
    for batch in parquet.iter_batches(batch_size=shard.limits.parquet_batch_rows, row_groups=[group], columns=[column]):
        values = batch.column(0)
        while needed and needed[0] < start + batch.num_rows:
            row = needed.pop(0)
            cell = values[row - start].as_py()
            for read in by_row.pop(row):
                yield read, _cell_bytes(cell, read.ref, shard)
        if not needed:
            return
        start += batch.num_rows


def _cell_bytes(cell: object, ref: ImageRef, shard: ShardFile) -> bytes:
    try:
        data = image_value(cell, ref.index)
    except Quarantined as problem:
        raise ValueError(f"{ref.format()} of {shard.shard_id}: {problem.detail}; re-ingest") from None
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"{ref.format()} of {shard.shard_id} holds no image bytes; re-ingest the shard")
    return bytes(data)
