"""Fixtures: the demo corpus, a Dagster instance, and a settled pipeline to copy. Shared helpers live in
helpers.py."""

import json
import shutil
from pathlib import Path

import pytest

from curation_assets.demo.generate import generate_demo_data
from curation_assets_tests.helpers import BRANCH_SHARDS, FAST_MODELS, keep_only, private_copy, smoke_recipe


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


@pytest.fixture(scope="session")
def settled_template(demo_template, tmp_path_factory):
    from dagster import instance_for_test

    from curation_assets.definitions import build_definitions
    from curation_assets.defs.local_runner import run_automation
    from curation_assets.local_run import tick_shard_sensors

    base = tmp_path_factory.mktemp("settled")
    root, home = base / "data", base / "dagster_home"
    shutil.copytree(demo_template, root, symlinks=True)
    keep_only(root)
    home.mkdir()
    with instance_for_test(temp_dir=str(home)) as instance:
        defs = build_definitions(str(root), smoke_recipe(), **FAST_MODELS)
        tick_shard_sensors(instance, defs, log=lambda _: None)
        run_automation(instance, defs, log=lambda _: None)
    return root, home


@pytest.fixture
def settled(settled_template, tmp_path):
    """(data root, instance) of a private copy of the settled pipeline."""
    with private_copy(settled_template, tmp_path) as copy:
        yield copy


@pytest.fixture(scope="session")
def branches_template(demo_template, tmp_path_factory):
    """(data root, DAGSTER_HOME) of the settled pipeline over shards of every kind."""
    from dagster import instance_for_test

    from curation_assets.definitions import build_definitions
    from curation_assets.defs.local_runner import run_automation
    from curation_assets.local_run import tick_shard_sensors

    base = tmp_path_factory.mktemp("branches")
    root, home = base / "data", base / "home"
    shutil.copytree(demo_template, root, symlinks=True)
    keep_only(root, BRANCH_SHARDS)
    home.mkdir()
    with instance_for_test(temp_dir=str(home)) as instance:
        defs = build_definitions(str(root), smoke_recipe(), **FAST_MODELS)
        tick_shard_sensors(instance, defs, log=lambda _: None)
        runs = run_automation(instance, defs, log=lambda _: None)
    assert all(run.success for run in runs)
    return root, home


@pytest.fixture
def branches(branches_template, tmp_path):
    """(data root, instance) of a private copy of the settled pipeline over every kind."""
    with private_copy(branches_template, tmp_path) as copy:
        yield copy
