import json
import shutil
from pathlib import Path

import pytest
from upath import UPath

from curation_assets.demo.generate import generate_demo_data
from curation_assets.readers import ShardFile
from curation_assets.sources import SourceKind

REPO_ROOT = Path(__file__).resolve().parents[1]
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
