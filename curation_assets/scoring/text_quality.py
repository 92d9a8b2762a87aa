"""Per-text scores for the text filters that text_stats does not cover: language, its probability,
and the share of stopwords. One table, computed once per shard and language-id model; the filters
only threshold it.

`stopwords_ratio` (Data-Juicer's stopwords_filter): words as in text_stats' word repetition
(lowercased whitespace tokens with non-alphanumeric characters trimmed from both ends), over all
words, the share that is a stopword of the text's predicted language. The lists are those of the
`stop-words` package (33 languages, shipped inside it, so offline); a text predicted in a language
without a list is measured against all lists together. Data-Juicer instead takes one list from
the filter's `lang` parameter; taking the predicted language's list keeps the score independent of
any threshold, so editing the filter never recomputes it. The English list is long (1,333 entries,
e.g. "able", "according"), so English prose scores ~0.5-0.7, higher than with short lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import polars as pl

from curation_assets.scoring.language_id import identify_languages
from curation_assets.scoring.text_stats import _WORD  # one word definition for every word-level ratio

TEXT_QUALITY_SCHEMA = {"language": pl.String, "language_score": pl.Float32, "stopwords_ratio": pl.Float32}
# Texts predicted in a language without a list of its own use the union of all lists.
ALL_LANGUAGES = "all"


@lru_cache(maxsize=1)
def stopword_table() -> pl.DataFrame:
    """(language, word) for every list of the stop-words package, plus the union under "all"."""
    from stop_words import LANGUAGE_MAPPING, get_stop_words

    rows = {
        (code, word.lower()) for code in LANGUAGE_MAPPING for word in get_stop_words(code, cache=False) if word.strip()
    }
    table = pl.DataFrame(sorted(rows), schema={"language": pl.String, "word": pl.String}, orient="row")
    union = table.select(pl.lit(ALL_LANGUAGES).alias("language"), "word").unique()
    return pl.concat([table, union]).with_columns(pl.lit(True).alias("is_stopword"))


def stopwords_ratio(texts: Sequence[str | None], languages: Sequence[str]) -> pl.Series:
    """Share of each text's words that are stopwords of its language (0.0 for a text without words)."""
    table = stopword_table()
    listed = set(table["language"].unique().to_list())
    frame = pl.DataFrame(
        {"text": list(texts), "language": list(languages)}, schema={"text": pl.String, "language": pl.String}
    ).with_row_index("row")
    words = (
        frame.select(
            "row",
            pl.when(pl.col("language").is_in(list(listed)))
            .then(pl.col("language"))
            .otherwise(pl.lit(ALL_LANGUAGES))
            .alias("language"),
            word=pl.col("text").fill_null("").str.to_lowercase().str.extract_all(_WORD),
        )
        .explode("word")
        .drop_nulls("word")
        .join(table, on=["language", "word"], how="left")
        .group_by("row")
        .agg(ratio=pl.col("is_stopword").fill_null(False).mean())
    )
    ratios = frame.select("row").join(words, on="row", how="left").sort("row")["ratio"]
    return ratios.fill_null(0.0).cast(pl.Float32).rename("stopwords_ratio")


def text_quality(texts: Sequence[str | None]) -> pl.DataFrame:
    """One row per text, in input order: language, language_score, stopwords_ratio."""
    languages, scores = identify_languages(texts)
    return pl.DataFrame(
        {
            "language": pl.Series(languages, dtype=pl.String),
            "language_score": pl.Series(scores, dtype=pl.Float32),
            "stopwords_ratio": stopwords_ratio(texts, languages),
        }
    )
