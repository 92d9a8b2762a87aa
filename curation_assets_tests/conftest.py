import json
import shutil
from pathlib import Path

import pytest
from upath import UPath

from curation_assets.demo.generate import generate_demo_data
from curation_assets.readers import ShardFile
from curation_assets.sources import SourceKind

REPO_ROOT = Path(__file__).resolve().parents[1]
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
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Path:
    """The demo corpus, generated once per test session; copy it before changing anything."""
    root = tmp_path_factory.mktemp("demo-template")
    generate_demo_data(root)
    return root


@pytest.fixture
def demo_root(demo_template, tmp_path) -> Path:
    """A private, writable copy of the demo corpus."""
    root = tmp_path / "data"
    shutil.copytree(demo_template, root, symlinks=True)
    return root


@pytest.fixture
def instance(tmp_path):
    """A persistent Dagster instance of its own (SQLite in a temp folder)."""
    from dagster import instance_for_test

    home = tmp_path / "dagster_home"
    home.mkdir()
    with instance_for_test(temp_dir=str(home)) as instance:
        yield instance


@pytest.fixture(scope="session")
def demo_manifest(demo_template) -> dict:
    return json.loads((demo_template / "demo_manifest.json").read_text())


def shard_file(root: Path, kind: str, name: str, **options) -> ShardFile:
    upath = UPath(root)
    return ShardFile(SourceKind(kind), upath / "raw" / kind / name, upath, **options)


def require_shared(folder: str) -> Path:
    path = SHARED_DATA / folder
    if not path.exists():
        pytest.skip(f"real third-party data {path} is absent (it lives beside the repo, in ../shared/data)")
    return path


# A small caption corpus taken all the way through the pipeline once per test session; tests that
# start from a settled pipeline get a private copy of its data root and Dagster instance.
SETTLED_SHARDS = ("wds-00000.tar", "wds-00001.tar", "llava-00000.json")
FAST_MODELS = {"num_workers": 0, "batch_size": 16}


def smoke_recipe():
    from curation_assets.recipe import PACKAGED_RECIPES, load_recipe

    return load_recipe(PACKAGED_RECIPES / "smoke.yaml")


def keep_only(root: Path, shards=SETTLED_SHARDS) -> Path:
    for kind in ("caption", "interleaved", "text"):
        for path in (root / "raw" / kind).iterdir():
            if path.is_file() and path.name not in shards:
                path.unlink()
    return root


@pytest.fixture(scope="session")
def settled_template(demo_template, tmp_path_factory):
    from dagster import instance_for_test

    from curation_assets.definitions import build_definitions
    from curation_assets.defs.stale_runner import run_until_fresh
    from curation_assets.local_run import run_sensors_and_requests

    base = tmp_path_factory.mktemp("settled")
    root, home = base / "data", base / "dagster_home"
    shutil.copytree(demo_template, root, symlinks=True)
    keep_only(root)
    home.mkdir()
    with instance_for_test(temp_dir=str(home)) as instance:
        defs = build_definitions(str(root), smoke_recipe(), **FAST_MODELS)
        run_sensors_and_requests(instance, defs, log=lambda _: None)
        run_until_fresh(instance, defs, log=lambda _: None)
    return root, home


@pytest.fixture
def settled(settled_template, tmp_path):
    """(data root, instance) of a private copy of the settled pipeline."""
    from dagster import instance_for_test

    root, home = tmp_path / "data", tmp_path / "dagster_home"
    shutil.copytree(settled_template[0], root, symlinks=True)
    shutil.copytree(settled_template[1], home)
    with instance_for_test(temp_dir=str(home)) as instance:
        yield root, instance
