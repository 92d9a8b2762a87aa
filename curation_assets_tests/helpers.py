"""Helpers shared by the tests: shard files, recipes, table reads and asset keys by table name."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pytest
from upath import UPath

from curation_assets import registry
from curation_assets.readers import ShardFile
from curation_assets.sources import SourceKind
from curation_assets.table_store import TableStore

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
CAPTION = SourceKind.caption

# Every shard the demo generator writes, as `<kind>/<file>`.
DEMO_SHARDS = (
    "caption/wds-00000.tar",
    "caption/wds-00001.tar",
    "caption/wds-00002.tar",
    "caption/img2dataset-00000.parquet",
    "caption/dj-bytes-00000.parquet",
    "caption/dj-00000.jsonl",
    "caption/llava-00000.json",
    "interleaved/mmc4-00000.jsonl",
    "interleaved/obelics-00000.parquet",
    "text/web-00000.jsonl",
    "text/web-00001.parquet",
)
# A small caption corpus taken all the way through the pipeline once per test session.
SETTLED_SHARDS = ("wds-00000.tar", "wds-00001.tar", "llava-00000.json")
# Every kind: the demo's document shards, and the caption shard the OBELICS shard's planted
# cross-kind copy comes from.
BRANCH_DOCUMENT_SHARDS = ("web-00000.jsonl", "web-00001.parquet", "mmc4-00000.jsonl", "obelics-00000.parquet")
BRANCH_SHARDS = (*BRANCH_DOCUMENT_SHARDS, "wds-00000.tar")
# Model runtime for tests: no DataLoader worker processes, small batches.
FAST_MODELS = {"num_workers": 0, "batch_size": 16}


def shard_file(root: Path, kind: str, name: str, **options) -> ShardFile:
    upath = UPath(root)
    return ShardFile(SourceKind(kind), upath / "raw" / kind / name, upath, **options)


def require_shared(folder: str) -> Path:
    path = SHARED_DATA / folder
    if not path.exists():
        pytest.skip(f"real third-party data {path} is absent (it lives beside the repo, in ../shared/data)")
    return path


def smoke_recipe(evaluation: bool = False):
    """The packaged smoke recipe; without its eval section unless asked (the eval assets have their
    own tests, and every other graph test is about the data)."""
    from curation_assets.recipe import PACKAGED_RECIPES, load_recipe

    recipe = load_recipe(PACKAGED_RECIPES / "smoke.yaml")
    return recipe if evaluation else recipe.without_evaluation()


def caption_score_tables_in_use() -> list[str]:
    """The caption score tables the smoke recipe computes (those something reads), in declaration order."""
    in_use = set(registry.tables_in_use(smoke_recipe()))
    return [spec.name for spec in registry.CAPTION_SCORE_TABLES if spec in in_use]


def keep_only(root: Path, shards=SETTLED_SHARDS) -> Path:
    """Delete every raw shard but these (of any kind)."""
    for kind in SourceKind:
        for path in (root / "raw" / kind.value).iterdir():
            if path.is_file() and path.name not in shards:
                path.unlink()
    return root


def key(name: str, kind: SourceKind = CAPTION):
    """The asset key of a table, by its registry name."""
    from curation_assets.defs.keys import asset_key

    return asset_key(registry.table(kind, name))


def read_table(root: Path, name: str, shard: str | None = None, kind: SourceKind = CAPTION) -> pl.DataFrame:
    return TableStore(root).read(registry.table(kind, name), shard)


def read_shards(root: Path, name: str, shards, kind: SourceKind = CAPTION) -> pl.DataFrame:
    return TableStore(root).read_shards(registry.table(kind, name), list(shards))


def ingest_registered(instance, defs, kind: SourceKind = CAPTION) -> int:
    """Run the ingest job for every registered shard of a kind (what automation would request first),
    one shard per run; returns how many ran."""
    job = defs.resolve_job_def(f"ingest_{kind.value}_shards")
    shards = sorted(instance.get_dynamic_partitions(f"{kind.value}_shards"))
    for shard in shards:
        job.execute_in_process(instance=instance, partition_key=shard, raise_on_error=False)
    return len(shards)


@contextmanager
def private_copy(template: tuple[Path, Path], tmp_path: Path):
    """(data root, instance) over a private copy of a settled template's (data root, DAGSTER_HOME)."""
    import shutil

    from dagster import instance_for_test

    root, home = tmp_path / "data", tmp_path / "dagster_home"
    shutil.copytree(template[0], root, symlinks=True)
    shutil.copytree(template[1], home)
    with instance_for_test(temp_dir=str(home)) as instance:
        yield root, instance
