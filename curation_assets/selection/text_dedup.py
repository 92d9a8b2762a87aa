"""Dedup of text-only documents across all shards: exact (normalised text hash), near (MinHash-LSH
over the stored `text_minhash` signatures) and semantic (SemDeDup over the stored `text_embedding`).

The pair finders and the grouping are selection/dedup.py's; this module only supplies the text key
and picks the methods the recipe turns on.
"""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from collections.abc import Sequence

import numpy as np
import polars as pl

from curation_assets.selection.dedup import (
    Pairs,
    duplicate_groups,
    exact_duplicate_pairs,
    near_text_pairs,
    semantic_duplicate_pairs,
)

_WHITESPACE = re.compile(r"\s+")
# Data-Juicer's document_deduplicator `ignore_non_character`: whitespace, digits and ASCII punctuation go.
_NON_CHARACTER = re.compile(rf"\s+|\d+|[{re.escape(string.punctuation)}]")


def normalized_text(text: str, lowercase: bool = True, ignore_non_character: bool = False) -> str:
    """The form two texts must share to be exact duplicates: Unicode NFKC (full-width and composed
    forms unified), runs of whitespace as one space, ends trimmed; optionally lowercased and, as
    Data-Juicer's `ignore_non_character`, without whitespace, digits and punctuation."""
    text = _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()
    if lowercase:
        text = text.lower()
    if ignore_non_character:
        text = _NON_CHARACTER.sub("", text)
    return text


def text_hashes(texts: Sequence[str | None], lowercase: bool = True, ignore_non_character: bool = False) -> pl.Series:
    """`text_hash`: MD5 (Data-Juicer's document_deduplicator hash) of each normalised text, hex; a
    missing text has none and matches nothing."""
    return pl.Series(
        "text_hash",
        [
            None
            if text is None
            else hashlib.md5(normalized_text(text, lowercase, ignore_non_character).encode()).hexdigest()
            for text in texts
        ],
        dtype=pl.String,
    )


# One hash column per combination of document_deduplicator's options, all stored per shard, so editing
# the options re-runs only the global dedup, never a pass over every shard's text.
HASH_COLUMNS = {
    (True, False): "text_hash",
    (False, False): "text_hash_cased",
    (True, True): "text_hash_letters",
    (False, True): "text_hash_cased_letters",
}


def hash_column(lowercase: bool, ignore_non_character: bool) -> str:
    return HASH_COLUMNS[(lowercase, ignore_non_character)]


def all_text_hashes(texts: Sequence[str | None]) -> pl.DataFrame:
    """Every HASH_COLUMNS variant of each text's hash, one column each."""
    return pl.DataFrame([text_hashes(texts, *options).rename(name) for options, name in HASH_COLUMNS.items()])


def exact_text_pairs(hashes: Sequence[str | None] | pl.Series) -> Pairs:
    """Rows with the same text hash, each linked to the first row of its hash (a star, as for images)."""
    # exact_duplicate_pairs links rows by equal keys in its `image_sha256` column; the key here is the text's.
    return exact_duplicate_pairs(pl.DataFrame({"image_sha256": pl.Series(hashes, dtype=pl.String)}))


def text_duplicate_pairs(
    frame: pl.DataFrame,
    *,
    exact: bool | str,
    minhash_threshold: float | None,
    semantic_epsilon: float | None,
    semantic_clusters: int = 100,
) -> dict[str, Pairs]:
    """Pairs per method, in the order they are reported: "exact" (`text_hash`, or the hash column `exact`
    names), "minhash"
    (`minhash`, Array(UInt32, num_perm)) and "semantic" (`text_embedding`); None turns a method off."""
    pairs: dict[str, Pairs] = {}
    if exact:
        pairs["exact"] = exact_text_pairs(frame[exact if isinstance(exact, str) else "text_hash"])
    if minhash_threshold is not None:
        pairs["minhash"] = near_text_pairs(frame["minhash"].to_numpy(), minhash_threshold)
    if semantic_epsilon is not None:
        embeddings = frame["text_embedding"].to_numpy().astype(np.float32)
        # More clusters than half the rows leaves most clusters with one row: no pair could form.
        clusters = min(semantic_clusters, max(1, frame.height // 2))
        pairs["semantic"] = semantic_duplicate_pairs(embeddings, semantic_epsilon, clusters)
    return pairs


def text_duplicate_groups(frame: pl.DataFrame, pairs: dict[str, Pairs], keep_score: str | None = None) -> pl.DataFrame:
    """duplicate_groups over `frame` (sample_id, shard_id, ...) plus each member's shard_id.

    The representative is the highest `keep_score` column when given (e.g. language_score), else the
    smallest sample_id: text has no one quality score the way image-text pairs have CLIP similarity."""
    scores = frame[keep_score].to_numpy() if keep_score else None
    groups = duplicate_groups(frame.height, pairs, scores, frame["sample_id"])
    return groups.join(frame.select("sample_id", "shard_id"), on="sample_id", how="left")
