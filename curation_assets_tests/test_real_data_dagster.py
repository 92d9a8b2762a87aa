"""The text and interleaved branches on the real Dagster graph over real third-party documents
(../shared/data): web / arXiv / patent / NIH text, and an MMC4 shard with local pixels attached."""

import io
import json
import shutil

import numpy as np
import polars as pl
import pytest
from dagster import instance_for_test
from PIL import Image

from curation_assets import registry
from curation_assets.definitions import build_definitions
from curation_assets.defs.local_runner import run_automation
from curation_assets.local_run import tick_shard_sensors
from curation_assets.sources import SourceKind
from curation_assets.table_store import TableStore
from curation_assets_tests.helpers import FAST_MODELS, require_shared, smoke_recipe
from curation_assets_tests.test_real_data import MMC4_SHARD

TEXT, INTERLEAVED = SourceKind.text, SourceKind.interleaved


def noise_jpeg(seed: int) -> bytes:
    """A distinct picture per image (solid colours would all share one pHash, and dedup would merge them)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def real_documents(tmp_path_factory):
    text_docs, mmc4 = require_shared("text-docs"), require_shared("mmc4-docs") / MMC4_SHARD
    root = tmp_path_factory.mktemp("real-documents") / "data"
    (root / "raw" / "text").mkdir(parents=True)
    for path in sorted(text_docs.glob("*.jsonl")):
        shutil.copyfile(path, root / "raw" / "text" / path.name)
    shard = root / "raw" / "interleaved" / "mmc4-real.jsonl"
    shard.parent.mkdir(parents=True)
    shutil.copyfile(mmc4, shard)
    (images := shard.parent / "mmc4-real_images").mkdir()
    rows = [json.loads(line) for line in mmc4.read_text(encoding="utf-8").splitlines() if line.strip()]
    for ordinal, info in enumerate(info for row in rows for info in row["image_info"]):
        (images / info["image_name"]).write_bytes(noise_jpeg(ordinal))
    (root / "raw" / "caption").mkdir()
    home = root.parent / "home"
    home.mkdir()
    with instance_for_test(temp_dir=str(home)) as instance:
        defs = build_definitions(str(root), smoke_recipe(), **FAST_MODELS)
        tick_shard_sensors(instance, defs, log=lambda _: None)
        runs = run_automation(instance, defs, log=lambda _: None)
        assert runs and all(run.success for run in runs)
        checks = {
            key: instance.event_log_storage.get_latest_asset_check_execution_by_key([key]).get(key)
            for key in defs.resolve_asset_graph().asset_check_keys
            if key.asset_key.path[0] in (TEXT.value, INTERLEAVED.value)
        }
    return root, rows, checks


def test_every_check_of_both_branches_passed_on_real_documents(real_documents):
    _, _, checks = real_documents
    in_use = registry.tables_in_use(smoke_recipe())
    covered = {spec for spec in in_use if spec.kind in (TEXT, INTERLEAVED) and spec in registry.SCORE_TABLES}
    assert len(checks) == len(covered) + 2 * 2  # + rows_accounted_for and every_row_decided per kind
    for key, record in checks.items():
        assert record is not None, key
        evaluation = record.event.dagster_event.event_specific_data
        assert evaluation.passed, (key.to_user_string(), evaluation.description)


def test_the_text_branch_keeps_the_english_web_documents_and_drops_the_spanish_ones(real_documents):
    root, _, _ = real_documents
    store = TableStore(root)
    decided = store.read(registry.TEXT_FILTERED).join(
        store.read(registry.TEXT_SAMPLES, columns=["sample_id", "language"]), on="sample_id"
    )
    spanish = decided.filter(pl.col("shard_id").str.contains("stackexchange"))
    assert spanish.height >= 5 and set(spanish["drop_rule"]) == {"language_id_score_filter"}
    prose = decided.filter(pl.col("shard_id").str.contains("c4|cc-2023|nih|uspto"))
    assert prose.height >= 40 and set(prose.filter(~pl.col("kept"))["drop_rule"]) <= {"dedup"}
    pool = pl.concat(
        [store.read(registry.TEXT_CURATED, shard) for shard in decided["shard_id"].unique().sort()], how="vertical"
    )
    assert set(pool["sample_id"]) == set(decided.filter("kept")["sample_id"])


def test_the_interleaved_branch_decides_every_real_image_and_keeps_documents_aligned(real_documents):
    root, rows, _ = real_documents
    store = TableStore(root)
    images = store.read(registry.INTERLEAVED_IMAGE_DECISIONS)
    assert images.height == sum(len(row["image_info"]) for row in rows) == 417
    matrices = store.read(registry.INTERLEAVED_SIMILARITY, "mmc4-real.jsonl")
    assert matrices.height == len(rows)
    for sample, matrix, image_positions, text_positions in matrices.select(
        "sample_id", "similarity_matrix", "image_indices", "text_indices"
    ).iter_rows():
        assert len(matrix) == len(image_positions) and all(len(row) == len(text_positions) for row in matrix), sample
    documents = store.read(registry.INTERLEAVED_FILTERED)
    pool = store.read(registry.INTERLEAVED_CURATED, "mmc4-real.jsonl")
    assert set(pool["sample_id"]) == set(documents.filter("kept")["sample_id"]) and pool.height > 0
    kept = images.filter("kept").group_by("sample_id").len()
    for row in pool.join(kept, on="sample_id", how="left").iter_rows(named=True):
        assert row["num_images"] == row["len"]
        assert all((text is None) != (image is None) for text, image in zip(row["texts"], row["images"]))
