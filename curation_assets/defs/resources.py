"""Resources shared by every asset: where the data lives, as a table store and as shard files."""

from __future__ import annotations

import os

from dagster import ConfigurableResource
from pydantic import Field

from curation_assets.readers import IngestLimits, ShardFile
from curation_assets.sources import SourceKind
from curation_assets.storage import DataRoot
from curation_assets.table_store import TableStore

DATA_ROOT_ENV = "CURATION_DATA_ROOT"


def default_data_root() -> str:
    return os.environ.get(DATA_ROOT_ENV, "data")


class DataRootResource(ConfigurableResource):
    """The data root (a folder or any fsspec URL such as `s3://bucket/curation`)."""

    url: str = Field(
        default_factory=default_data_root, description=f"Data root; defaults to ${DATA_ROOT_ENV} or ./data"
    )
    ingest: dict = Field(
        default_factory=dict, description="the recipe's ingest section: how much of any one input ingest reads"
    )

    def data_root(self) -> DataRoot:
        return DataRoot(self.url)

    def store(self) -> TableStore:
        return TableStore(self.data_root())

    def shard_file(self, kind: SourceKind, shard_id: str) -> ShardFile:
        root = self.data_root()
        path = root.raw_dir(kind) / shard_id
        if not path.exists():
            raise FileNotFoundError(
                f"shard {shard_id!r} is registered as a {kind.value} partition but {path} is gone; "
                f"restore the file or delete the partition in the UI (Partitions tab of {kind.value}/raw)"
            )
        return ShardFile(kind, path, root.root, IngestLimits.model_validate(self.ingest))
