"""The decisions behind the selection assets, on tiny frames: dedup assembly, thresholds, the curated pool."""

import numpy as np
import polars as pl
import pytest

from curation_assets.recipe import Dedup, Recipe
from curation_assets.scoring.hashes import text_minhash
from curation_assets.selection.curated_pool import curated_pool
from curation_assets.selection.dedup import find_duplicates
from curation_assets.selection.thresholds import from_payload, percentile_columns, resolve_thresholds, to_payload


def samples(**overrides) -> pl.DataFrame:
    captions = ["a red circle on blue", "a red circle on blue!", "a green square", "two dogs on a beach"]
    frame = pl.DataFrame(
        {
            "sample_id": ["a", "b", "c", "d"],
            "shard_id": ["s1", "s1", "s2", "s2"],
            "image_sha256": ["x", "x", "y", "z"],
            "phash": ["ffff0000ffff0000", "ffff0000ffff0000", "0000ffff0000ffff", "0000ffff0000fffe"],
            "clip_similarity": pl.Series([0.20, 0.30, 0.25, 0.10], dtype=pl.Float32),
            "minhash": pl.Series(text_minhash(captions)),
        }
    )
    return frame.with_columns(**overrides) if overrides else frame


def dedup(**sections) -> Dedup:
    return Dedup.model_validate(sections)


def test_exact_and_phash_copies_group_and_the_best_clip_score_represents():
    groups = find_duplicates(samples(), dedup(image_deduplicator={"max_distance": 1}))
    by_id = {row["sample_id"]: row for row in groups.iter_rows(named=True)}
    assert by_id["b"]["representative"] and by_id["a"]["duplicate_of"] == "b"  # 0.30 beats 0.20
    assert by_id["a"]["method"] == "exact,phash"
    assert by_id["c"]["representative"] and by_id["d"]["duplicate_of"] == "c"  # one bit apart
    assert by_id["d"]["method"] == "phash" and by_id["d"]["shard_id"] == "s2"


def test_each_method_runs_only_when_the_recipe_turns_it_on():
    assert find_duplicates(samples(), dedup()).height == 0
    by_text = find_duplicates(samples(), dedup(document_minhash_deduplicator={"jaccard_threshold": 0.7}))
    assert set(by_text["sample_id"]) == {"a", "b"} and set(by_text["method"]) == {"minhash"}


def test_semantic_dedup_reads_image_embeddings():
    vectors = np.eye(4, 8, dtype=np.float32)
    vectors[1] = vectors[0]
    frame = samples(image_embedding=pl.Series(vectors.astype(np.float16)))
    groups = find_duplicates(frame, dedup(semantic_deduplicator={"epsilon": 0.01, "num_clusters": 2}))
    assert set(groups["sample_id"]) == {"a", "b"} and set(groups["method"]) == {"semantic"}


def steps(*entries):
    return Recipe.model_validate({"filters": list(entries)}).filters


def test_thresholds_resolve_percentiles_over_every_shard_and_survive_json():
    recipe_steps = steps({"image_text_similarity_filter": {"min_score": "p50"}}, {"words_num_filter": {"min_num": 3}})
    assert percentile_columns(recipe_steps) == {"clip_similarity"}
    scores = pl.DataFrame({"clip_similarity": [0.1, 0.2, 0.3, float("nan")]})
    rules = resolve_thresholds(recipe_steps, scores)
    assert rules[0].lower == pytest.approx(0.2) and rules[1].lower == 3.0
    assert from_payload(to_payload(rules)) == rules
    with pytest.raises(ValueError, match="needs its scores over every shard"):
        resolve_thresholds(recipe_steps, None)


def test_the_curated_pool_keeps_selected_pairs_and_rescued_recaptions():
    normalized = pl.DataFrame(
        {
            "sample_id": ["a", "b", "c"],
            "shard_id": "s1",
            "caption": ["old a", "old b", "old c"],
            "image_ref": ["tar:a.jpg", "tar:b.jpg", "tar:c.jpg"],
        }
    )
    recaptioned = pl.DataFrame({"sample_id": ["b", "c"], "new_caption": ["new b", "new c"], "kept": [True, False]})
    pool = curated_pool(normalized, pl.Series(["a"]), recaptioned).sort("sample_id")
    assert pool["sample_id"].to_list() == ["a", "b"]  # c: not selected, and its new caption was not kept
    assert pool["caption"].to_list() == ["old a", "new b"]
    assert pool["caption_source"].to_list() == ["original", "recaptioned"]
    assert pool["original_caption"].to_list() == ["old a", "old b"]
    assert curated_pool(normalized, pl.Series(["c"]), None)["caption_source"].to_list() == ["original"]
