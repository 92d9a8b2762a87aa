"""Per-text statistics that filters threshold on: length, special characters, repetition.

All of them are computed on the text with the formats' special tokens removed (they mark structure,
not words) and the ends trimmed. Everything is vectorised with polars; the n-gram counts explode
texts into one row per n-gram, so the input is processed in slices of bounded total length to keep
memory flat for long documents.

Definitions (every ratio is 0.0 for a text with nothing to count, so a `min_ratio` filter drops it
and a `max_ratio` filter keeps it, without null handling):

- `num_words`: whitespace-separated tokens.
- `num_chars`: characters (Unicode code points).
- `alnum_ratio`: letters (with their combining marks) and digits over the non-whitespace characters.
- `special_char_ratio`: special characters over the non-whitespace characters. A character is
  special when it is neither alphanumeric (as above) nor common punctuation. Common punctuation is
  ASCII `. , ; : ! ? ' " ( ) -` and every non-ASCII Unicode punctuation character (typographic
  quotes and dashes, the ellipsis, CJK punctuation, inverted marks). So symbols and emoji (including
  their variation selectors), currency and math signs, arrows and box drawing, control / format /
  private-use characters, and the remaining ASCII punctuation (# $ % & * + / < = > @ [ \\ ] ^ _
  { | } ~ and the backtick) are special. This follows Data-Juicer's `special_characters_filter` in
  spirit (a ratio of characters from a junk set), but unlike it, whitespace, digits and ordinary
  sentence punctuation are not special, so a clean caption scores 0 and Data-Juicer's thresholds
  do not transfer as they are.
  By construction `alnum_ratio + special_char_ratio + common punctuation ratio == 1` for a text that
  has any non-whitespace character.
- `word_repetition_ratio` (Data-Juicer `word_repetition_filter`): words are lowercased whitespace
  tokens with leading and trailing non-alphanumeric characters stripped (empty ones dropped); over
  all word n-grams, the share of occurrences whose n-gram occurs more than once in the text.
- `char_repetition_ratio` (Data-Juicer `character_repetition_filter`, as is): over the text's
  character n-grams (case kept), the occurrences of the k most frequent distinct n-grams over all
  occurrences, with k = min(floor(sqrt(distinct n-grams)), distinct n-grams seen more than once).
"""

from __future__ import annotations

import polars as pl

from curation_assets.text_checks import SPECIAL_TOKENS

TEXT_STATS_PRODUCER = "curation_assets.scoring.text_stats"  # produced_by of these model-free statistics
TEXT_STATS_SCHEMA = {
    "num_words": pl.Int32,
    "num_chars": pl.Int32,
    "special_char_ratio": pl.Float32,
    "word_repetition_ratio": pl.Float32,
    "char_repetition_ratio": pl.Float32,
    "alnum_ratio": pl.Float32,
}

# Rust-regex character classes (polars). Variation selectors are combining marks, but they only
# pick an emoji's presentation, so they go with the symbol they decorate.
_ALNUM_CHARS = r"\p{L}\p{N}[\p{M}--\p{Variation_Selector}]"
_COMMON_PUNCTUATION_CHARS = r".,;:!?'\"()\-[\p{P}--[\x00-\x7F]]"
_ALNUM = f"[{_ALNUM_CHARS}]"
_SPECIAL = rf"[^\s{_ALNUM_CHARS}{_COMMON_PUNCTUATION_CHARS}]"
# A whitespace token with non-alphanumeric characters trimmed from both ends.
_WORD = _ALNUM + r"(?:\S*" + _ALNUM + ")?"

# Bound on the characters exploded into n-grams at once (about 16 bytes of memory per n-gram row).
_CHARS_PER_SLICE = 4_000_000


def text_stats(
    texts: list[str],
    *,
    word_ngram: int = 3,
    char_ngram: int = 10,
) -> pl.DataFrame:
    """One row per text, in input order, with the columns of TEXT_STATS_SCHEMA (see module docstring)."""
    if word_ngram < 1 or char_ngram < 1:
        raise ValueError("n-gram lengths must be at least 1")
    cleaned = pl.Series("text", texts, dtype=pl.String).fill_null("")
    for token in SPECIAL_TOKENS:
        cleaned = cleaned.str.replace_all(token, " ", literal=True)
    cleaned = cleaned.str.strip_chars()

    slices = [
        _stats_of_slice(cleaned.slice(start, length), word_ngram, char_ngram)
        for start, length in _slices_by_length(cleaned.str.len_chars(), _CHARS_PER_SLICE)
    ]
    if not slices:
        return pl.DataFrame(schema=TEXT_STATS_SCHEMA)
    return pl.concat(slices)


def _slices_by_length(lengths: pl.Series, budget: int) -> list[tuple[int, int]]:
    """Consecutive (start, length) row ranges whose texts hold about `budget` characters each."""
    slices, start, used = [], 0, 0
    for index, length in enumerate(lengths.to_list()):
        if used and used + length > budget:
            slices.append((start, index - start))
            start, used = index, 0
        used += length
    if start < len(lengths):
        slices.append((start, len(lengths) - start))
    return slices


def _ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    return pl.when(denominator > 0).then(numerator / denominator).otherwise(0.0).cast(pl.Float32)


def _stats_of_slice(cleaned: pl.Series, word_ngram: int, char_ngram: int) -> pl.DataFrame:
    texts = pl.DataFrame(cleaned).with_row_index("row").lazy()
    non_space = pl.col("num_chars") - pl.col("text").str.count_matches(r"\s")
    counts = texts.with_columns(
        num_words=pl.col("text").str.count_matches(r"\S+"),
        num_chars=pl.col("text").str.len_chars(),
    ).select(
        "row",
        pl.col("num_words").cast(pl.Int32),
        pl.col("num_chars").cast(pl.Int32),
        special_char_ratio=_ratio(pl.col("text").str.count_matches(_SPECIAL), non_space),
        alnum_ratio=_ratio(pl.col("text").str.count_matches(_ALNUM), non_space),
    )
    frame = (
        counts.join(_word_repetition(texts, word_ngram), on="row", how="left")
        .join(_char_repetition(texts, char_ngram), on="row", how="left")
        .sort("row")
        .select(
            [
                pl.col(name).fill_null(0.0).cast(dtype) if dtype == pl.Float32 else pl.col(name)
                for name, dtype in TEXT_STATS_SCHEMA.items()
            ]
        )
    )
    return frame.collect()


def _word_repetition(texts: pl.LazyFrame, n: int) -> pl.LazyFrame:
    """Rows that have at least one word n-gram: row, word_repetition_ratio."""
    words = (
        texts.select("row", word=pl.col("text").str.to_lowercase().str.extract_all(_WORD))
        .explode("word")
        .drop_nulls("word")
    )
    # Words of a row are contiguous after the explode, so the n-gram starting at a word is valid
    # exactly when the word n-1 places later still belongs to the same row.
    grams = words.select(
        "row",
        gram=pl.concat_str([pl.col("word").shift(-offset) for offset in range(n)], separator=" "),
        same_row=pl.col("row").shift(-(n - 1)) == pl.col("row"),
    ).filter(pl.col("same_row"))
    occurrences = pl.col("occurrences")
    # Plain sums per group stay on polars' fast aggregation path; a filter inside agg does not.
    return (
        grams.group_by("row", "gram")
        .len("occurrences")
        .with_columns(repeated=pl.when(occurrences > 1).then(occurrences).otherwise(0))
        .group_by("row")
        .agg(word_repetition_ratio=pl.col("repeated").sum() / occurrences.sum())
    )


def _char_repetition(texts: pl.LazyFrame, n: int) -> pl.LazyFrame:
    """Rows that have at least one character n-gram: row, char_repetition_ratio."""
    starts = (
        texts.select(
            "row",
            "text",
            # len_chars is unsigned: subtracting in it would wrap around for texts shorter than n.
            start=pl.int_ranges(0, (pl.col("text").str.len_chars().cast(pl.Int64) - n + 1).clip(lower_bound=0)),
        )
        .explode("start")
        .drop_nulls("start")
    )
    counts = (
        starts.select("row", gram=pl.col("text").str.slice(pl.col("start"), n))
        .group_by("row", "gram")
        .len("occurrences")
        .collect()  # used twice below; collected once so the expensive count is not planned twice
        .lazy()
    )
    totals = counts.group_by("row").agg(distinct=pl.len(), total=pl.col("occurrences").sum())
    # The top k = min(floor(sqrt(distinct)), repeated distinct) n-grams are all repeated ones, and
    # most captions repeat none, so ranking only the repeated n-grams keeps this step small.
    top = (
        counts.filter(pl.col("occurrences") > 1)
        .join(totals, on="row")
        .sort(["row", "occurrences"], descending=[False, True])
        .filter(pl.int_range(pl.len()).over("row") < pl.col("distinct").sqrt().floor())
        .group_by("row")
        .agg(top=pl.col("occurrences").sum())
    )
    return totals.join(top, on="row", how="left").select(
        "row", char_repetition_ratio=pl.col("top").fill_null(0) / pl.col("total")
    )
