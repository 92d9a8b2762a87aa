"""The table store: paths from specs, atomic checked writes, reads that name what is missing, content versions."""

import polars as pl
import pytest

from curation_assets import registry
from curation_assets.table_store import TableStore, content_version


def scores(ids, values) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sample_id": ids,
            "clip_similarity": pl.Series(values, dtype=pl.Float32),
            "produced_by": "test",
            "model_profile": "smoke",
            "scores_meaningful": False,
        }
    )


def test_paths_follow_kind_name_and_shard(tmp_path):
    store = TableStore(tmp_path)
    assert store.path(registry.CLIP_SIMILARITY, "wds-00000.tar") == store.root.root / (
        "caption/clip_similarity/wds-00000.tar.parquet"
    )
    assert store.path(registry.DEDUP).name == "duplicates.parquet"
    with pytest.raises(ValueError, match="per shard"):
        store.path(registry.CLIP_SIMILARITY)
    with pytest.raises(ValueError, match="no per-shard file"):
        store.path(registry.DEDUP, "wds-00000.tar")


def test_writes_round_trip_and_leave_no_temp_files(tmp_path):
    store = TableStore(tmp_path)
    store.write(registry.CLIP_SIMILARITY, scores(["a", "b"], [0.1, 0.2]), "s1")
    store.write(registry.CLIP_SIMILARITY, scores(["c"], [0.3]), "s2")
    both = store.read_shards(registry.CLIP_SIMILARITY, ["s1", "s2"], ["sample_id", "clip_similarity"])
    assert both["sample_id"].to_list() == ["a", "b", "c"]
    assert sorted(p.name for p in store.folder(registry.CLIP_SIMILARITY).iterdir()) == ["s1.parquet", "s2.parquet"]


def test_a_frame_that_drifts_from_its_spec_is_refused(tmp_path):
    store = TableStore(tmp_path)
    with pytest.raises(ValueError, match="missing column 'clip_similarity'"):
        store.write(registry.CLIP_SIMILARITY, scores(["a"], [0.1]).drop("clip_similarity"), "s1")
    wrong_type = scores(["a"], [0.1]).with_columns(pl.col("clip_similarity").cast(pl.String))
    with pytest.raises(ValueError, match="declared Float32"):
        store.write(registry.CLIP_SIMILARITY, wrong_type, "s1")
    assert not store.exists(registry.CLIP_SIMILARITY, "s1")


def test_reading_what_is_not_there_names_the_table_and_the_shards(tmp_path):
    store = TableStore(tmp_path)
    store.write(registry.CLIP_SIMILARITY, scores(["a"], [0.1]), "s1")
    with pytest.raises(FileNotFoundError, match=r"1 shard\(s\) have no caption/clip_similarity table yet \(e.g. s2\)"):
        store.read_shards(registry.CLIP_SIMILARITY, ["s1", "s2"])
    with pytest.raises(FileNotFoundError, match="materialize caption/dedup"):
        store.read(registry.DEDUP)


def test_the_store_works_on_an_object_store_root():
    store = TableStore("memory://bucket/curation")
    store.write(registry.CLIP_SIMILARITY, scores(["a"], [0.5]), "s1")
    assert store.read(registry.CLIP_SIMILARITY, "s1")["clip_similarity"].to_list() == [0.5]
    store.write_json(registry.SELECTION_THRESHOLDS, {"rules": []})
    assert store.read_json(registry.SELECTION_THRESHOLDS) == {"rules": []}


def test_content_versions_ignore_row_order_and_follow_content():
    frame = pl.DataFrame({"sample_id": ["a", "b", "c"], "kept": [True, False, True]})
    assert content_version(frame) == content_version(frame.reverse())
    assert content_version(frame) != content_version(frame.with_columns(pl.col("kept").not_()))
    assert content_version(frame, ["sample_id"]) == content_version(frame.with_columns(kept=False), ["sample_id"])
    nested = pl.DataFrame({"sample_id": ["a"], "texts": [["x", None]]})
    assert content_version(nested) != content_version(nested.with_columns(texts=pl.lit(["x", "y"])))


def test_a_write_clears_the_temp_file_an_interrupted_write_left(tmp_path):
    store = TableStore(tmp_path)
    folder = store.folder(registry.CLIP_SIMILARITY)
    folder.mkdir(parents=True)
    leftover = folder / ".s1.parquet.abc123.tmp"
    leftover.write_bytes(b"half a table")
    store.write(registry.CLIP_SIMILARITY, scores(["a"], [0.1]), "s1")
    assert sorted(p.name for p in folder.iterdir()) == ["s1.parquet"]
