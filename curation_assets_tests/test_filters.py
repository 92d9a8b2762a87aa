"""Filter rules: Data-Juicer names, percentile bounds, first failing rule, impossible values refused."""

import math

import polars as pl
import pytest
from pydantic import TypeAdapter, ValidationError

from curation_assets.recipe import DEFAULT_RECIPE, RecipeError, load_recipe
from curation_assets.selection.filters import FilterStep, decide, parse_size, resolve, rules_of

STEPS = TypeAdapter(list[FilterStep])


def steps(*entries):
    return STEPS.validate_python(list(entries))


SCORES = pl.DataFrame(
    {
        "sample_id": ["a", "b", "c", "d", "e"],
        "clip_similarity": [0.35, 0.20, 0.31, float("nan"), 0.40],
        "num_words": [12, 8, 2, 9, 30],
        "nsfw_probability": [0.1, 0.1, 0.1, 0.1, 0.5],
    },
    schema_overrides={"num_words": pl.Int32, "clip_similarity": pl.Float32, "nsfw_probability": pl.Float32},
)


def test_first_failing_rule_and_its_value_explain_each_drop():
    rules = rules_of(steps(
        {"words_num_filter": {"min_num": 3, "max_num": 20}},
        {"image_text_similarity_filter": {"min_score": 0.28}},
        {"image_nsfw_filter": {"score_threshold": 0.5}},
    ))  # fmt: skip
    decisions = decide(SCORES, resolve(rules, quantile=None)).sort("sample_id")
    assert decisions["kept"].to_list() == [True, False, False, False, False]
    assert decisions["drop_rule"].to_list() == [
        None,
        "image_text_similarity_filter",
        "words_num_filter",
        "image_text_similarity_filter",
        "words_num_filter",
    ]  # e fails words (30 > 20) before nsfw: order is the recipe's
    assert decisions["drop_value"][1] == "clip_similarity=0.2"
    assert decisions["drop_value"][3] == "clip_similarity=NaN"  # a missing score cannot pass


def test_probability_thresholds_drop_at_the_threshold_like_data_juicer():
    decisions = decide(SCORES, resolve(rules_of(steps({"image_nsfw_filter": {"score_threshold": 0.5}})), None))
    assert decisions.filter(pl.col("sample_id") == "e")["kept"].item() is False


def test_percentile_bounds_resolve_over_the_given_distribution():
    rules = rules_of(steps({"image_text_similarity_filter": {"min_score": "p50"}}))
    seen = []

    def quantile(column, q):
        seen.append((column, q))
        return 0.33

    [resolved] = resolve(rules, quantile)
    assert seen == [("clip_similarity", 0.5)] and resolved.lower == 0.33
    assert decide(SCORES, [resolved]).filter(pl.col("kept"))["sample_id"].to_list() == ["a", "e"]


def test_no_rules_keeps_everything_and_dedup_drops_name_the_representative():
    duplicates = pl.DataFrame({"sample_id": ["b"], "duplicate_of": ["a"], "method": ["phash"]})
    decisions = decide(SCORES, [], duplicates).sort("sample_id")
    assert decisions["kept"].to_list() == [True, False, True, True, True]
    assert decisions["drop_rule"][1] == "dedup" and decisions["drop_value"][1] == "phash duplicate of a"


@pytest.mark.parametrize(
    ("text", "expected"), [(1024, 1024), ("6kb", 6000), ("1MB", 1e6), ("2MiB", 2 * 2**20), ("10 B", 10)]
)
def test_sizes_parse_like_data_juicer(text, expected):
    assert math.isclose(parse_size(text), expected)


@pytest.mark.parametrize(
    "entry",
    [
        {"image_text_similarity_filter": {"min_score": 1.5}},  # cosine cannot exceed 1
        {"image_text_similarity_filter": {"min_score": 0.5, "max_score": 0.2}},  # nothing could pass
        {"words_num_filter": {"min_num": "p200"}},
        {"words_num_filter": {"min_num": "ten"}},
        {"image_nsfw_filter": {"score_threshold": 2}},
        {"image_size_filter": {"min_size": "6 parsecs"}},
        {"image_text_similarity_filter": {"min_score": 0.2, "colour": "red"}},
        {"imagee_text_similarity_filter": {"min_score": 0.2}},
        {"image_text_similarity_filter": {}, "words_num_filter": {}},
    ],
)
def test_impossible_or_unknown_filters_are_refused(entry):
    with pytest.raises(ValidationError):
        steps(entry)


def test_recipe_errors_name_the_line(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(
        "models:\n  profile: smoke\n"
        "filters:\n"
        "  - image_text_similarity_filter: {min_score: 0.28}\n"
        "  - words_num_filter:\n"
        "      min_num: 3\n"
        "      max_num: lots\n"
        "  - imagee_size_filter: {min_size: 6kb}\n"
        "dedup:\n  image_deduplicator: {max_distance: 99}\n"
    )
    with pytest.raises(RecipeError) as raised:
        load_recipe(path)
    message = str(raised.value)
    assert "line 7: filters.1.words_num_filter.max_num" in message
    assert "line 8: filters.2: each filter entry is one operator" in message
    assert "line 10: dedup.image_deduplicator.max_distance" in message


def test_packaged_recipes_load_and_differ_only_where_they_should():
    default = load_recipe(DEFAULT_RECIPE)  # explicitly: the Makefile points $CURATION_RECIPE at smoke.yaml
    smoke = load_recipe("curation_assets/recipes/smoke.yaml")
    assert default.models.profile == "pretrained" and smoke.models.profile == "smoke"
    assert default.fingerprint("filters") != smoke.fingerprint("filters")
    assert default.fingerprint("models.nsfw") == smoke.fingerprint("models.nsfw")
