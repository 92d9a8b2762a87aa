"""The decisions behind the selection assets, on tiny frames: dedup assembly, thresholds, the curated pool."""

import numpy as np
import polars as pl
import pytest

from curation_assets.recipe import Dedup, Recipe
from curation_assets.scoring.hashes import text_minhash
from curation_assets.selection.curated_pool import curated_pool
from curation_assets.selection.decisions import decide_samples
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


def test_exact_and_phash_copies_group_under_their_smallest_id():
    groups = find_duplicates(samples(), dedup(image_deduplicator={"max_distance": 1}))
    by_id = {row["sample_id"]: row for row in groups.iter_rows(named=True)}
    assert by_id["a"]["group_id"] == by_id["b"]["group_id"] == "a"
    assert by_id["a"]["method"] == "exact,phash"
    assert by_id["c"]["group_id"] == by_id["d"]["group_id"] == "c"  # one bit apart
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


def test_the_curated_pool_is_every_selected_pair_of_the_index():
    index = pl.DataFrame(
        {
            "sample_id": ["a", "b", "c"],
            "shard_id": "s1",
            "caption": ["old a", "new b", "old c"],
            "caption_source": ["original", "recaptioned", "original"],
        }
    )
    selected = pl.DataFrame({"sample_id": ["a", "b", "c"], "selected": [True, True, False]})
    pool = curated_pool(index, selected)
    assert pool["sample_id"].to_list() == ["a", "b"]
    assert pool["caption"].to_list() == ["old a", "new b"]  # the final caption, recaptioned or not


def rule(op, column, lower=None, upper=None):
    from curation_assets.selection.filters import ResolvedRule

    return ResolvedRule(op, column, lower, upper, True)


def test_dedup_keeps_the_best_member_that_passes_every_rule():
    """Two copies: `a` (CLIP 0.35, 200 words) and `b` (CLIP 0.30, 12 words) under max_num 128:
    choosing the representative first by score kept neither; `b` must be kept."""
    frame = pl.DataFrame(
        {
            "sample_id": ["a", "b", "c"],
            "shard_id": ["s1", "s2", "s2"],
            "clip_similarity": pl.Series([0.35, 0.30, 0.50], dtype=pl.Float32),
            "num_words": pl.Series([200, 12, 8], dtype=pl.Int32),
        }
    )
    groups = pl.DataFrame({"sample_id": ["a", "b"], "group_id": ["a", "a"], "method": ["exact", "exact"]})
    decisions = decide_samples(frame, [rule("words_num_filter", "num_words", upper=128)], groups, "clip_similarity")
    by_id = {row["sample_id"]: row for row in decisions.sort("sample_id").iter_rows(named=True)}
    assert by_id["a"]["kept"] is False and by_id["a"]["drop_rule"] == "words_num_filter"
    assert by_id["a"]["duplicate_of"] == "b"
    assert by_id["b"]["kept"] and by_id["b"]["duplicate_of"] is None
    assert by_id["c"]["kept"]
    # Without the rule, the better score wins and the other is dropped as its duplicate.
    unruled = decide_samples(frame, [], groups, "clip_similarity").sort("sample_id")
    assert unruled["kept"].to_list() == [True, False, True]
    assert unruled["drop_value"][1] == "exact duplicate of a"


def test_a_group_none_of_whose_members_passes_is_dropped_each_by_its_own_rule():
    frame = pl.DataFrame(
        {
            "sample_id": ["a", "b"],
            "shard_id": "s1",
            "clip_similarity": pl.Series([0.1, 0.2], dtype=pl.Float32),
            "num_words": pl.Series([1, 2], dtype=pl.Int32),
        }
    )
    groups = pl.DataFrame({"sample_id": ["a", "b"], "group_id": ["a", "a"], "method": ["phash", "phash"]})
    decisions = decide_samples(frame, [rule("words_num_filter", "num_words", lower=3)], groups, "clip_similarity")
    assert decisions["kept"].to_list() == [False, False]
    assert decisions["drop_rule"].to_list() == ["words_num_filter", "words_num_filter"]
    assert decisions["duplicate_of"].to_list() == [None, None]
