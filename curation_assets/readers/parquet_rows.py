"""The rows of a parquet shard as Python dicts, one row group at a time, surviving damage.

A corrupt data page (`ZSTD decompression failed`, `Deserializing page header failed`) fails only
its own row group: the rows of it not yet read become `corrupt_data` rows and reading goes on with
the next group. A value Python cannot represent (a year-10000 timestamp) fails only its own column:
it is carried as arrow's text for it, which is all `source_meta` needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curation_assets.quarantine import Reason, UnreadableShard
from curation_assets.readers.base import Rejected, ShardFile
from curation_assets.readers.sample_keys import row_key


def iter_parquet_rows(shard: ShardFile) -> Iterator[tuple[int, dict[str, Any] | Rejected]]:
    """(row index, row) in file order; the row is a Rejected for rows in a damaged row group."""
    with shard.path.open("rb") as handle:
        try:
            parquet = pq.ParquetFile(handle)
            group_rows = [parquet.metadata.row_group(group).num_rows for group in range(parquet.num_row_groups)]
        except Exception as error:  # a footer pyarrow cannot read: nothing in the file can be found
            raise UnreadableShard(f"{shard.shard_id} is not a readable parquet file: {error}") from None
        if sum(group_rows) != parquet.metadata.num_rows or min(group_rows, default=0) < 0:
            raise UnreadableShard(
                f"{shard.shard_id}'s footer is damaged: its row groups hold {group_rows} rows, "
                f"it claims {parquet.metadata.num_rows}"
            )
        first = 0
        for group, rows in enumerate(group_rows):
            done = 0
            try:
                for batch in parquet.iter_batches(batch_size=shard.limits.parquet_batch_rows, row_groups=[group]):
                    for row in batch_rows(batch):
                        if done == rows:
                            break  # more rows than the metadata says: the counter goes by metadata
                        yield first + done, row
                        done += 1
            except Exception as error:  # pyarrow raises OSError, ArrowInvalid, ... for damaged pages
                detail = f"row group {group} is damaged after {done} of its {rows} rows: {error}"[:2000]
                for index in range(first + done, first + rows):
                    yield index, Rejected(row_key(index), Reason.corrupt_data, detail)
                done = rows
            first += rows


def batch_rows(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    try:
        return batch.to_pylist()
    except Exception:  # some column has a value Python cannot hold: convert column by column
        columns = {name: column_values(batch.column(index)) for index, name in enumerate(batch.schema.names)}
        return [dict(zip(columns, values)) for values in zip(*columns.values())]


def column_values(column: pa.Array) -> list[Any]:
    try:
        return column.to_pylist()
    except Exception:
        return [_scalar_value(scalar) for scalar in column]


def _scalar_value(scalar: pa.Scalar) -> Any:
    try:
        return scalar.as_py()
    except Exception:
        pass
    try:
        # Strings that are not UTF-8 come back as their bytes, so the text checks can say so.
        if pa.types.is_string(scalar.type) or pa.types.is_large_string(scalar.type):
            return scalar.cast(pa.binary()).as_py()
        return scalar.cast(pa.string()).as_py()
    except Exception:
        return f"<a {scalar.type} value Python cannot represent>"
