"""Read the image bytes of a shard's valid rows back from the shard, by their `image_ref`.

Ingest stores references, not bytes (image bytes stay in their shards). Scoring streams them back
here: one pass over a tar's headers reading only the wanted members, the parquet row groups that
hold wanted rows, or one read per referenced file. Each scheme is read the way its reader read it
(the same tar walk, the same cell unwrapping), so the bytes are the ones ingest checked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import pyarrow.parquet as pq

from curation_assets.image_checks import read_image_file
from curation_assets.image_ref import ImageRef, Scheme, image_value
from curation_assets.quarantine import Quarantined
from curation_assets.readers import ShardFile
from curation_assets.readers.shard_bytes import file_size
from curation_assets.readers.tar_walk import Member, walk_tar


def iter_image_bytes(shard: ShardFile, image_refs: Sequence[str]) -> Iterator[tuple[int, bytes]]:
    """(position in `image_refs`, bytes) for every reference, in the shard's own order."""
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
    if Scheme.tar in by_scheme:
        yield from _from_tar(shard, by_scheme[Scheme.tar])
    if Scheme.parquet in by_scheme:
        yield from _from_parquet(shard, by_scheme[Scheme.parquet])
    for ref, positions in by_scheme.get(Scheme.file, {}).items():
        try:
            data = read_image_file(shard.data_root / ref.name, shard.limits.max_image_bytes)
        except Quarantined as problem:
            raise FileNotFoundError(f"{ref.format()} of {shard.shard_id}: {problem.detail}; re-ingest") from None
        for position in positions:
            yield position, data


def _from_tar(shard: ShardFile, wanted: dict[ImageRef, list[int]]) -> Iterator[tuple[int, bytes]]:
    by_name = {ref.name: positions for ref, positions in wanted.items()}
    with shard.path.open("rb") as handle:
        for event in walk_tar(handle, file_size(handle)):
            # The first member of a name is the one ingest kept (later samples with its key are
            # quarantined as duplicates), so each name is read once and then forgotten.
            if isinstance(event, Member) and event.info.isreg() and event.name in by_name:
                data = event.read()
                for position in by_name.pop(event.name):
                    yield position, data
                if not by_name:
                    return
    if by_name:
        raise FileNotFoundError(
            f"{len(by_name)} image members of {shard.shard_id} are no longer in the tar "
            f"(e.g. {next(iter(by_name))!r}); re-ingest the shard"
        )


def _from_parquet(shard: ShardFile, wanted: dict[ImageRef, list[int]]) -> Iterator[tuple[int, bytes]]:
    by_column: dict[str, dict[int, list[tuple[ImageRef, list[int]]]]] = defaultdict(lambda: defaultdict(list))
    for ref, positions in wanted.items():
        by_column[ref.column][ref.row].append((ref, positions))
    with shard.path.open("rb") as handle:
        parquet = pq.ParquetFile(handle)
        first = 0
        for group in range(parquet.num_row_groups):
            rows = parquet.metadata.row_group(group).num_rows
            for column, by_row in by_column.items():
                needed = sorted(row for row in by_row if first <= row < first + rows)
                if needed:
                    yield from _rows_of_group(parquet, group, first, column, needed, by_row, shard)
            first += rows
    missing = [ref.format() for by_row in by_column.values() for pairs in by_row.values() for ref, _ in pairs]
    if missing:
        raise FileNotFoundError(f"{len(missing)} rows of {shard.shard_id} are gone (e.g. {missing[0]}); re-ingest")


def _rows_of_group(parquet, group: int, first: int, column: str, needed: list[int], by_row, shard: ShardFile):
    """The wanted cells of one row group, read in the batches the reader read them in and no
    further: a group damaged after its valid rows still yields every valid row."""
    start = first
    for batch in parquet.iter_batches(batch_size=shard.limits.parquet_batch_rows, row_groups=[group], columns=[column]):
        values = batch.column(0)
        while needed and needed[0] < start + batch.num_rows:
            row = needed.pop(0)
            cell = values[row - start].as_py()
            for ref, positions in by_row.pop(row):
                data = _cell_bytes(cell, ref, shard)
                for position in positions:
                    yield position, data
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
