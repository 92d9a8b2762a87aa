"""Filter rules: Data-Juicer names, percentile bounds, first failing rule, impossible values refused."""

import json
import math

import polars as pl
import pytest
from pydantic import TypeAdapter, ValidationError

from curation_assets.recipe import DEFAULT_RECIPE, RecipeError, load_recipe
from curation_assets.selection.filters import FilterStep, ResolvedRule, decide, parse_size, resolve, rules_of

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


# --- categorical rules and the text filters of the other branches ------------------------------------

TEXTS = pl.DataFrame(
    {
        "sample_id": ["en", "de", "short-en", "unknown"],
        "language": ["en", "de", "en", None],
        "language_score": [0.99, 0.97, 0.55, 0.9],
        "stopwords_ratio": [0.45, 0.40, 0.10, 0.5],
    },
    schema_overrides={"language_score": pl.Float32, "stopwords_ratio": pl.Float32},
)


def test_language_id_score_filter_keeps_listed_languages_above_the_score_like_data_juicer():
    decisions = decide(TEXTS, resolve(rules_of(steps({"language_id_score_filter": {"lang": "en"}})), None))
    assert dict(zip(decisions["sample_id"], decisions["kept"])) == {
        "en": True,
        "de": False,
        "short-en": False,  # the right language, but below Data-Juicer's default min_score 0.8
        "unknown": False,  # no prediction cannot pass
    }
    values = dict(zip(decisions["sample_id"], decisions["drop_value"]))
    assert values["de"] == "language=de"  # the category fails first: the more telling reason
    assert values["short-en"] == "language_score=0.55"


def test_language_id_score_filter_without_lang_checks_only_the_score_and_takes_lists():
    any_language = rules_of(steps({"language_id_score_filter": {"min_score": 0.9}}))
    assert [rule.column for rule in any_language] == ["language_score"]
    kept = decide(TEXTS, resolve(any_language, None)).filter("kept")["sample_id"].to_list()
    assert kept == ["en", "de", "unknown"]
    both = resolve(rules_of(steps({"language_id_score_filter": {"lang": ["en", "de"], "min_score": 0.9}})), None)
    assert decide(TEXTS, both).filter("kept")["sample_id"].to_list() == ["en", "de"]


def test_stored_categorical_thresholds_round_trip_through_json():
    [category, score] = resolve(rules_of(steps({"language_id_score_filter": {"lang": ["en", "de"]}})), None)
    assert category.allowed == ("en", "de") and score.lower == 0.8
    again = ResolvedRule(**json.loads(json.dumps(category.__dict__)))  # JSON turns the tuple into a list
    assert again == category
    old_format = {"op": "words_num_filter", "column": "num_words", "lower": 3.0, "upper": None, "upper_inclusive": True}
    assert ResolvedRule(**old_format).allowed is None  # thresholds stored before categories still load


def test_stopwords_and_perplexity_filters_take_data_juicer_defaults():
    [stopwords] = resolve(rules_of(steps({"stopwords_filter": {}})), None)
    assert (stopwords.column, stopwords.lower, stopwords.upper) == ("stopwords_ratio", 0.3, None)
    [perplexity] = resolve(rules_of(steps({"perplexity_filter": {}})), None)
    assert (perplexity.column, perplexity.upper) == ("perplexity", 1500.0)
    decisions = decide(TEXTS, [stopwords])
    assert decisions.filter(~pl.col("kept"))["sample_id"].to_list() == ["short-en"]


def test_decisions_can_be_keyed_by_image_id():
    images = pl.DataFrame({"image_id": ["d/0", "d/2"], "width": [10, 300]}, schema_overrides={"width": pl.Int32})
    duplicates = pl.DataFrame({"image_id": ["d/2"], "duplicate_of": ["e/1"], "method": ["exact"]})
    rules = resolve(rules_of(steps({"image_shape_filter": {"min_width": 64}})), None)
    decisions = decide(images, rules, duplicates, id_column="image_id")
    assert decisions.columns == ["image_id", "kept", "drop_rule", "drop_value"]
    assert decisions["drop_value"].to_list() == ["width=10", "exact duplicate of e/1"]


@pytest.mark.parametrize(
    "entry",
    [
        {"language_id_score_filter": {"lang": "English"}},  # codes, not names
        {"language_id_score_filter": {"lang": ["en", "EN"]}},
        {"language_id_score_filter": {"min_score": 1.5}},
        {"stopwords_filter": {"min_ratio": 2}},
        {"perplexity_filter": {"max_ppl": -1}},
        {"perplexity_filter": {"lang": "en"}},  # Data-Juicer's model choice belongs in models.perplexity
        {"images_left_filter": {"min_num": -1}},
        {"image_drop_ratio_filter": {"max_ratio": 1.5}},
    ],
)
def test_impossible_text_and_document_filters_are_refused(entry):
    with pytest.raises(ValidationError):
        steps(entry)
