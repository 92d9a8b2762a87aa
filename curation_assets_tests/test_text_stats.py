"""Text statistics on tiny texts with known answers, and against a plain per-text reference."""

import json
import math
import random
import unicodedata
from collections import Counter

import polars as pl
import pytest

from curation_assets.scoring import text_stats as text_stats_module
from curation_assets.scoring.text_stats import TEXT_STATS_SCHEMA, text_stats
from curation_assets.text_checks import strip_special_tokens
from curation_assets_tests.helpers import require_shared


def row(text: str, **options) -> dict:
    return text_stats([text], **options).row(0, named=True)


def test_columns_and_types():
    frame = text_stats(["a dog", "a cat"])
    assert frame.schema == pl.Schema(TEXT_STATS_SCHEMA)
    assert frame.columns == [
        "num_words",
        "num_chars",
        "special_char_ratio",
        "word_repetition_ratio",
        "char_repetition_ratio",
        "alnum_ratio",
    ]


def test_special_tokens_are_not_words():
    stats = row("<__dj__image> a dog runs <|__dj__eoc|>")
    assert stats["num_words"] == 3
    assert stats["num_chars"] == len("a dog runs")
    assert stats["special_char_ratio"] == 0.0
    assert stats["alnum_ratio"] == 1.0


def test_text_that_is_only_tokens_counts_nothing():
    stats = row("<image>\n<__dj__image> <|__dj__eoc|>")
    assert stats == {name: 0 for name in TEXT_STATS_SCHEMA}


def test_empty_list_gives_empty_frame_with_schema():
    frame = text_stats([])
    assert frame.height == 0
    assert frame.schema == pl.Schema(TEXT_STATS_SCHEMA)


def test_rows_keep_input_order():
    texts = [" ".join(["w"] * count) for count in (5, 1, 3, 0, 2)]
    assert text_stats(texts)["num_words"].to_list() == [5, 1, 3, 0, 2]


def test_repeated_phrase_scores_high_and_a_sentence_scores_zero():
    repeated = row("buy now buy now buy now buy now")
    sentence = row("a brown dog runs along the beach at sunset")
    # word 3-grams: "buy now buy" x3, "now buy now" x3, every one repeated
    assert repeated["word_repetition_ratio"] == 1.0
    # 22 char 10-grams over 8 distinct (the phrase has period 8); floor(sqrt(8)) = 2 top n-grams, 3 each
    assert repeated["char_repetition_ratio"] == pytest.approx(6 / 22)
    assert sentence["word_repetition_ratio"] == 0.0
    assert sentence["char_repetition_ratio"] == 0.0


def test_word_repetition_ignores_case_and_edge_punctuation():
    # 5 trigrams; "the cat sat" occurs twice only once "The" and "sat." / "sat," are normalised
    assert row("The cat sat. the cat sat, down")["word_repetition_ratio"] == pytest.approx(2 / 5)


def test_fewer_words_than_n_means_no_repetition():
    assert row("dog dog")["word_repetition_ratio"] == 0.0
    assert row("dog dog", word_ngram=1)["word_repetition_ratio"] == 1.0


def test_special_characters():
    # non-whitespace: a # b ★ ★ $ 5 . -> specials are # ★ ★ $ (4 of 8); alphanumeric a b 5 (3 of 8)
    stats = row("a #b ★★ $5.")
    assert stats["special_char_ratio"] == pytest.approx(4 / 8)
    assert stats["alnum_ratio"] == pytest.approx(3 / 8)


def test_unicode_letters_marks_and_punctuation():
    # Decomposed accents, CJK, Cyrillic and non-ASCII punctuation are not special; the emoji and its
    # variation selector are.
    text = "cafe\u0301 «猫» — кот… ❤\ufe0f"
    stats = row(text)
    assert stats["num_chars"] == len(text)
    assert stats["num_words"] == 5
    letters = len("cafe\u0301") + len("猫") + len("кот")
    non_space = len(text.replace(" ", ""))
    assert stats["alnum_ratio"] == pytest.approx(letters / non_space)
    assert stats["special_char_ratio"] == pytest.approx(2 / non_space)


def test_ratios_of_alnum_special_and_punctuation_add_up():
    stats = text_stats(["x, y; (z)!", "@@@ ###", "§¶ ok"])
    for alnum, special in zip(stats["alnum_ratio"], stats["special_char_ratio"]):
        assert 0.0 <= alnum + special <= 1.0 + 1e-6
    assert stats["special_char_ratio"][1] == 1.0


def test_null_text_counts_as_empty():
    assert text_stats([None])["num_words"].to_list() == [0]


# A plain, per-text statement of the definitions (Data-Juicer's formulas), to check the vectorised code.
def reference_word_repetition(text: str, n: int) -> float:
    words = []
    for token in text.lower().split():
        start, end = 0, len(token)
        while start < end and not (token[start].isalnum() or _is_mark(token[start])):
            start += 1
        while end > start and not (token[end - 1].isalnum() or _is_mark(token[end - 1])):
            end -= 1
        if start < end:
            words.append(token[start:end])
    counts = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    total = sum(counts.values())
    return sum(count for count in counts.values() if count > 1) / total if total else 0.0


def reference_char_repetition(text: str, n: int) -> float:
    counts = sorted(Counter(text[i : i + n] for i in range(len(text) - n + 1)).values(), reverse=True)
    if not counts:
        return 0.0
    k = min(math.isqrt(len(counts)), sum(1 for count in counts if count > 1))
    return sum(counts[:k]) / sum(counts)


def _is_mark(char: str) -> bool:
    return unicodedata.category(char).startswith("M") and not 0xFE00 <= ord(char) <= 0xFE0F


def random_texts(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    vocab = ["dog", "Dog.", "a", "the", "red", "ball,", "(park)", "<image>", "★", "naïve", "東京", "buy", "now"]
    return [" ".join(rng.choices(vocab, k=rng.randint(0, 30))) for _ in range(count)]


def test_vectorised_repetition_matches_the_reference():
    texts = random_texts(300)
    frame = text_stats(texts, word_ngram=2, char_ngram=6)
    for text, word, char in zip(texts, frame["word_repetition_ratio"], frame["char_repetition_ratio"]):
        cleaned = strip_special_tokens(text).strip()
        assert word == pytest.approx(reference_word_repetition(cleaned, 2), abs=1e-6), text
        assert char == pytest.approx(reference_char_repetition(cleaned, 6), abs=1e-6), text


def test_slicing_by_length_does_not_change_results(monkeypatch):
    texts = random_texts(200, seed=3)
    whole = text_stats(texts)
    monkeypatch.setattr(text_stats_module, "_CHARS_PER_SLICE", 50)
    assert text_stats(texts).equals(whole)


def test_real_coco_captions():
    folder = require_shared("coco-cc")
    pairs = [json.loads(line) for line in (folder / "pairs.jsonl").read_text().splitlines()]
    captions = [caption for pair in pairs for caption in pair["captions"]]
    stats = text_stats(captions)
    assert stats["num_words"].to_list() == [len(caption.split()) for caption in captions]
    assert stats["num_chars"].to_list() == [len(caption.strip()) for caption in captions]
    # Plain human captions: no symbols, mostly letters, no degenerate repetition.
    assert stats["special_char_ratio"].max() == 0.0
    assert stats["alnum_ratio"].min() > 0.85
    assert stats["char_repetition_ratio"].max() < 0.3
