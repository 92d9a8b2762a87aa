"""Read the image bytes of a shard's valid rows back from the shard, by their `image_ref`.

Ingest stores references, not bytes (image bytes stay in their shards). Scoring streams them back
here: one sequential pass over a tar or a parquet column, or one read per referenced file.
"""

from __future__ import annotations

import tarfile
from collections import defaultdict
from collections.abc import Iterator, Sequence

import pyarrow.parquet as pq

from curation_assets.readers import ShardFile


def iter_image_bytes(shard: ShardFile, image_refs: Sequence[str]) -> Iterator[tuple[int, bytes]]:
    """(position in `image_refs`, bytes) for every reference, in the shard's own order."""
    by_scheme: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for position, ref in enumerate(image_refs):
        scheme, _, rest = ref.partition(":")
        by_scheme[scheme][rest].append(position)
    unknown = set(by_scheme) - {"tar", "parquet", "file"}
    if unknown:
        raise ValueError(f"unknown image_ref scheme(s) {sorted(unknown)} in shard {shard.shard_id}")
    if "tar" in by_scheme:
        yield from _from_tar(shard, by_scheme["tar"])
    if "parquet" in by_scheme:
        yield from _from_parquet(shard, by_scheme["parquet"])
    for relative, positions in by_scheme.get("file", {}).items():
        data = (shard.data_root / relative).read_bytes()
        for position in positions:
            yield position, data


def _from_tar(shard: ShardFile, wanted: dict[str, list[int]]) -> Iterator[tuple[int, bytes]]:
    remaining = len(wanted)
    with shard.path.open("rb") as handle, tarfile.open(fileobj=handle, mode="r|*") as stream:
        for info in stream:
            positions = wanted.get(info.name)
            if positions is None:
                continue
            data = stream.extractfile(info).read()
            for position in positions:
                yield position, data
            remaining -= 1
            if remaining == 0:
                return
    if remaining:
        raise FileNotFoundError(
            f"{remaining} image members of {shard.shard_id} are no longer in the tar; re-ingest the shard"
        )


def _from_parquet(shard: ShardFile, wanted: dict[str, list[int]]) -> Iterator[tuple[int, bytes]]:
    by_column: dict[str, dict[int, list[int]]] = defaultdict(dict)
    for spec, positions in wanted.items():
        row, _, column = spec.partition(":")
        by_column[column][int(row)] = positions
    for column, rows in by_column.items():
        with shard.path.open("rb") as handle:
            row_index = 0
            for batch in pq.ParquetFile(handle).iter_batches(batch_size=256, columns=[column]):
                for value in batch.column(0).to_pylist():
                    if row_index in rows:
                        for position in rows[row_index]:
                            yield position, _unwrap(value)
                    row_index += 1


def _unwrap(value: object) -> bytes:
    # Same containers the caption parquet reader accepts: one-element lists and {"bytes": ...} structs.
    if isinstance(value, list):
        value = value[0]
    if isinstance(value, dict):
        value = value["bytes"]
    return bytes(value)
