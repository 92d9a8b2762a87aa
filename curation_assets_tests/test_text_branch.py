"""Text-only documents: the scores behind Data-Juicer's text filters, each filter on its planted demo
defect, exact / near / semantic dedup, DSIR, and the perplexity filter with a user's KenLM model."""

from __future__ import annotations

import json
import math
import sys
from collections import Counter

import numpy as np
import polars as pl
import pytest

from curation_assets.models.availability import ModelUnavailable
from curation_assets.normalize import normalize_shard
from curation_assets.recipe import DsirSelector, Text, TextDedup, default_text_filters, steps
from curation_assets.scoring.hashes import text_minhash
from curation_assets.scoring.language_id import identify_languages
from curation_assets.scoring.perplexity import PerplexityModel, ccnet_normalize, load_language_model, perplexities
from curation_assets.scoring.text_quality import stopwords_ratio, text_quality
from curation_assets.scoring.text_stats import text_stats
from curation_assets.selection.filters import decide, resolve, rules_of
from curation_assets.selection.text_dedup import (
    normalized_text,
    text_duplicate_groups,
    text_duplicate_pairs,
    text_hashes,
)
from curation_assets.selection.text_selection import select_texts
from curation_assets_tests.helpers import shard_file

TEXT_SHARDS = ("web-00000.jsonl", "web-00001.parquet")
# The planted defect each Data-Juicer text filter must catch on its own.
RULE_DEFECTS = {
    "language_id_score_filter": {"non_english"},
    "text_length_filter": {"too_short"},
    "words_num_filter": {"too_short"},
    "alphanumeric_filter": {"symbol_noise", "repetitive_spam"},
    "special_characters_filter": {"symbol_noise"},
    "character_repetition_filter": {"repetitive_spam"},
    "word_repetition_filter": {"repetitive_spam", "symbol_noise"},
    "stopwords_filter": {"keyword_list", "symbol_noise"},
}
DUPLICATES = {"exact_duplicate", "near_duplicate"}


@pytest.fixture(scope="module")
def demo_texts(demo_template, demo_manifest) -> pl.DataFrame:
    """Every valid demo text document with its scores and its planted defect ("" for clean ones)."""
    frames = []
    for name in TEXT_SHARDS:
        valid = normalize_shard(shard_file(demo_template, "text", name)).valid
        planted = {key: defect for defect, keys in demo_manifest[f"text/{name}"]["defects"].items() for key in keys}
        texts = valid["text"].to_list()
        frames.append(
            pl.concat([valid.drop("num_chars"), text_stats(texts), text_quality(texts)], how="horizontal").with_columns(
                pl.col("key").replace_strict(planted, default="").alias("defect"),
                pl.Series("minhash", text_minhash(texts)),
                text_hashes(texts),
            )
        )
    return pl.concat(frames)


def dropped_by(frame: pl.DataFrame, *entries: dict) -> set[str]:
    decisions = decide(frame, resolve(rules_of(steps(*entries)), None))
    return set(frame.join(decisions.filter(~pl.col("kept")), on="sample_id")["defect"])


# --- scores ---------------------------------------------------------------------------------------


def test_language_id_names_the_language_with_a_probability():
    languages, scores = identify_languages(
        [
            "The garden is beautiful in spring, and the birds sing in the old apple trees.",
            "Der Garten ist im Frühling sehr schön, und die Vögel singen in den alten Apfelbäumen.",
            "Le jardin est très beau au printemps, et les oiseaux chantent dans les vieux pommiers.",
            "",
        ]
    )
    assert languages == ["en", "de", "fr", "zxx"]
    assert all(score > 0.9 for score in scores[:3]) and scores[3] == 0.0


def test_stopwords_ratio_uses_the_list_of_the_predicted_language():
    text = "Der Hund und die Katze schlafen in dem Haus."
    german, as_english = stopwords_ratio([text, text], ["de", "en"])
    assert german == pytest.approx(5 / 9)  # der, und, die, in, dem
    assert as_english < german
    # Unknown language: every list at once; no words: 0.0 (a min_ratio filter drops it).
    assert stopwords_ratio(["the xylophone", "!!!"], ["xx", "en"]).to_list() == [pytest.approx(0.5), 0.0]


# --- every filter on its planted defect -----------------------------------------------------------


@pytest.mark.parametrize("op", sorted(RULE_DEFECTS))
def test_each_text_filter_drops_its_planted_defect_and_no_clean_document(demo_texts, op):
    [entry] = [step.model_dump() for step in default_text_filters() if next(iter(step.model_dump())) == op]
    dropped = dropped_by(demo_texts, entry)
    assert RULE_DEFECTS[op] <= dropped, op
    assert "" not in dropped and not dropped & DUPLICATES, (op, dropped)


def test_the_default_text_recipe_keeps_clean_documents_and_drops_every_planted_defect(demo_texts):
    decisions = decide(demo_texts, resolve(rules_of(Text().filters), None)).join(
        demo_texts.select("sample_id", "defect"), on="sample_id"
    )
    kept = set(decisions.filter("kept")["defect"])
    assert kept == {"", *DUPLICATES}  # duplicates are dedup's, below
    drops = dict(decisions.filter(~pl.col("kept")).select("defect", "drop_rule").iter_rows())
    assert drops == {
        "non_english": "language_id_score_filter",
        "repetitive_spam": "language_id_score_filter",  # exclamation runs confuse the language model too
        "symbol_noise": "language_id_score_filter",
        "too_short": "text_length_filter",
        "keyword_list": "stopwords_filter",
    }


def test_text_rules_on_columns_text_documents_do_not_have_are_refused():
    with pytest.raises(ValueError, match="clip_similarity"):
        Text(filters=steps({"image_text_similarity_filter": {"min_score": 0.2}}))


# --- dedup --------------------------------------------------------------------------------------


def test_normalised_hash_ignores_case_width_and_spacing_but_not_words():
    a, b, c, d = text_hashes(["Hello  World\n", "hello world", "Ｈｅｌｌｏ world", "hello words"])
    assert a == b == c != d
    assert normalized_text("Tea, 2 cups!", ignore_non_character=True) == "teacups"
    assert text_hashes([None])[0] is None


def test_exact_and_minhash_dedup_group_every_planted_duplicate_with_its_source(demo_texts):
    threshold = TextDedup().document_minhash_deduplicator.jaccard_threshold
    pairs = text_duplicate_pairs(demo_texts, exact=True, minhash_threshold=threshold, semantic_epsilon=None)
    groups = text_duplicate_groups(demo_texts, pairs, keep_score="language_score").join(
        demo_texts.select("sample_id", "defect"), on="sample_id"
    )
    planted = set(demo_texts.filter(pl.col("defect").is_in(list(DUPLICATES)))["sample_id"])
    assert planted <= set(groups["sample_id"])
    for _, members in groups.group_by("group_id"):
        assert members["representative"].sum() == 1
        assert members.height == 2 and set(members["defect"]) & DUPLICATES  # a copy and its source
    exact = groups.filter(pl.col("defect") == "exact_duplicate")
    assert exact["method"].to_list() == ["exact,minhash"]


def test_semantic_dedup_links_documents_whose_embeddings_nearly_coincide():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(6, 16)).astype(np.float32)
    vectors[5] = vectors[1] + 0.001  # a paraphrase, say
    frame = pl.DataFrame({"sample_id": list("abcdef"), "shard_id": ["s"] * 6, "text_embedding": vectors})
    pairs = text_duplicate_pairs(frame, exact=False, minhash_threshold=None, semantic_epsilon=0.01, semantic_clusters=2)
    groups = text_duplicate_groups(frame, pairs)
    assert sorted(groups["sample_id"]) == ["b", "f"] and groups["duplicate_of"].to_list() == [None, "b"]


# --- DSIR -------------------------------------------------------------------------------------------


def topic_of(source_meta: str) -> str:
    meta = json.loads(source_meta)["meta"]
    return (json.loads(meta) if isinstance(meta, str) else meta)["topic"]  # parquet shards store meta as JSON


def test_dsir_on_documents_moves_the_selection_toward_the_target(demo_texts, tmp_path):
    clean = demo_texts.filter(pl.col("defect") == "").with_columns(
        pl.col("source_meta").map_elements(topic_of, pl.String).alias("topic")
    )
    target = clean.filter(pl.col("topic") == "cooking")["text"].to_list()
    report = select_texts(clean, DsirSelector(target=str(tmp_path / "unused"), fraction=0.25), lambda: target)
    chosen = clean.join(report.frame.filter("selected"), on="sample_id")
    assert chosen.height == round(0.25 * clean.height)
    share_before = (clean["topic"] == "cooking").mean()
    assert (chosen["topic"] == "cooking").mean() > 2 * share_before
    assert report.notes["dsir_kl_reduction"] > 0
    assert set(report.frame.filter(~pl.col("selected"))["dropped_by"]) == {"dsir_selector"}


# --- perplexity with a user's KenLM model -----------------------------------------------------------


def bigram_arpa(sentences: list[str], discount: float = 0.5) -> str:
    """A small but real bigram language model (absolute discounting, backoff to add-one unigrams)."""
    unigrams, bigrams, contexts = Counter(), Counter(), Counter()
    for sentence in sentences:
        tokens = ["<s>", *sentence.split(), "</s>"]
        unigrams.update(tokens[1:])
        contexts.update(tokens[:-1])
        bigrams.update(zip(tokens, tokens[1:]))
    total = sum(unigrams.values()) + len(unigrams) + 1
    followers = Counter(first for first, _ in bigrams)

    def backoff(word: str) -> float:
        return math.log10(discount * followers[word] / contexts[word]) if contexts[word] else 0.0

    ones = [f"{math.log10((unigrams[w] + 1) / total):.6f}\t{w}\t{backoff(w):.6f}" for w in sorted(unigrams)]
    ones += [f"-99\t<s>\t{backoff('<s>'):.6f}", f"{math.log10(1 / total):.6f}\t<unk>\t0"]
    twos = [f"{math.log10((n - discount) / contexts[v]):.6f}\t{v} {w}" for (v, w), n in sorted(bigrams.items())]
    header = ["\\data\\", f"ngram 1={len(ones)}", f"ngram 2={len(twos)}", ""]
    return "\n".join([*header, "\\1-grams:", *ones, "", "\\2-grams:", *twos, "", "\\end\\", ""])


def test_perplexity_filter_with_a_user_model_drops_text_unlike_its_training_text(demo_texts, tmp_path):
    pytest.importorskip("kenlm", reason="perplexity needs the kenlm package (pip install kenlm)")
    training = demo_texts.filter((pl.col("defect") == "") & (pl.col("shard_id") == "web-00000.jsonl"))
    sentences = [ccnet_normalize(line) for text in training["text"] for line in text.replace(". ", ".\n").splitlines()]
    model_path = tmp_path / "demo.arpa"
    model_path.write_text(bigram_arpa([line for line in sentences if line]))
    model = load_language_model(PerplexityModel(model=str(model_path)))

    held_out = demo_texts.filter(pl.col("shard_id") == "web-00001.parquet")
    scored = held_out.with_columns(pl.Series("perplexity", perplexities(held_out["text"].to_list(), model)))
    by_defect = scored.group_by("defect").agg(pl.col("perplexity").max().alias("worst"), pl.col("perplexity").min())
    worst = dict(by_defect.select("defect", "worst").iter_rows())
    best = dict(by_defect.select("defect", "perplexity").iter_rows())
    assert worst[""] < best["non_english"] / 5  # unseen English prose of the same kind vs French
    dropped = dropped_by(scored, {"perplexity_filter": {"max_ppl": float(worst[""]) * 1.5}})
    assert "non_english" in dropped and "" not in dropped


def test_perplexity_fails_fast_naming_the_recipe_field(tmp_path, monkeypatch):
    with pytest.raises(ModelUnavailable, match=r"models\.perplexity\.model"):
        load_language_model(PerplexityModel())
    with pytest.raises(ModelUnavailable, match="does not exist"):
        load_language_model(PerplexityModel(model=str(tmp_path / "missing.arpa")))
    (tmp_path / "lm.arpa").write_text("\\data\\\n")
    monkeypatch.setitem(sys.modules, "kenlm", None)  # as if the package were not installed
    with pytest.raises(ModelUnavailable, match="pip install kenlm"):
        load_language_model(PerplexityModel(model=str(tmp_path / "lm.arpa")))


def test_ccnet_normalisation_folds_case_accents_digits_and_punctuation():
    assert ccnet_normalize("  Café — 2024: «Très» bien… ") == 'cafe  -  0000: "tres" bien...'


def test_the_perplexity_table_exists_only_when_a_filter_reads_it_and_needs_the_users_model(tmp_path):
    from pydantic import ValidationError

    from curation_assets import registry
    from curation_assets.recipe import Recipe

    plain = Recipe()
    assert registry.TEXT_PERPLEXITY not in registry.tables_in_use(plain)
    assert "text_perplexity" not in registry.TEXT_SAMPLES.reads_under(plain)
    filters = [*Text().filters, {"perplexity_filter": {"max_ppl": 1500}}]
    with pytest.raises(ValidationError, match="models.perplexity.model"):
        Recipe.model_validate({"text": {"filters": filters}})
    model = tmp_path / "lm.arpa"
    model.write_text("\\data\\\n")
    recipe = Recipe.model_validate({"text": {"filters": filters}, "models": {"perplexity": {"model": str(model)}}})
    assert registry.TEXT_PERPLEXITY in registry.tables_in_use(recipe)
    assert "text_perplexity" in registry.TEXT_SAMPLES.reads_under(recipe)
    assert registry.table_of_column(registry.TEXT, "perplexity") is registry.TEXT_PERPLEXITY
