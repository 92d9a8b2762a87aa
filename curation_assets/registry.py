"""Every table the pipeline writes, declared once.

A table's name is its stage: asset key `<kind>/<name>`, folder `<data root>/<kind>/<name>/`. The
asset factories, the table store, the checks, the analysis, the filters' column lookup, the demo
summary and the tests all take names, paths and columns from here. No other module spells a stage.

Adding a per-shard score table: declare it here, and write its computation with
`@computes(SPEC)` in a scoring module (see scoring/caption_tables.py). Its asset, coverage check,
analysis columns, filter column lookup and spec snapshot follow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from curation_assets.sources import SourceKind
from curation_assets.table_spec import Column, Product, Scope, TableSpec

if TYPE_CHECKING:
    from curation_assets.recipe import Recipe

CAPTION, INTERLEAVED, TEXT = SourceKind.caption, SourceKind.interleaved, SourceKind.text

# Tables that read the stored CLIP embeddings read the CLIP model too.
CLIP_SECTIONS = ("models.profile", "models.clip")


def _text_stats_columns() -> tuple[Column, ...]:
    return (
        Column("num_words", pl.Int32, "whitespace-separated words", analysed=True),
        Column("num_chars", pl.Int32, "characters (code points)", analysed=True),
        Column("special_char_ratio", pl.Float32, "symbols and emoji over non-whitespace characters", analysed=True),
        Column("word_repetition_ratio", pl.Float32, "share of repeated word 3-grams", analysed=True),
        Column("char_repetition_ratio", pl.Float32, "Data-Juicer's character repetition", analysed=True),
        Column("alnum_ratio", pl.Float32, "letters and digits over non-whitespace characters", analysed=True),
    )


def _image_stats_columns() -> tuple[Column, ...]:
    return (
        Column("width", pl.Int32, "pixels", analysed=True),
        Column("height", pl.Int32, "pixels", analysed=True),
        Column("aspect_ratio", pl.Float32, "width / height", analysed=True),
        Column("num_bytes", pl.Int64, "encoded size", analysed=True),
        Column("format", pl.String),
        Column("mode", pl.String),
    )


def _ingest_tables(kind: SourceKind) -> tuple[TableSpec, TableSpec]:
    # Columns of the canonical tables live in tables.py (SCHEMAS); the registry names the stage.
    from curation_assets.tables import QUARANTINE_SCHEMA, SCHEMAS

    def columns(schema: pl.Schema) -> tuple[Column, ...]:
        return tuple(Column(name, dtype) for name, dtype in schema.items() if name != "sample_id")

    normalized = TableSpec(
        kind,
        "normalized",
        f"Validated {kind.value} rows of one shard, in the canonical {kind.value} schema.",
        columns(SCHEMAS[kind]),
        group="ingest",
        recipe_sections=("ingest",),
        content_versioned=True,
    )
    quarantine = TableSpec(
        kind,
        "quarantine",
        f"Rows of one {kind.value} shard that could not be used, each with a reason and detail.",
        columns(QUARANTINE_SCHEMA),
        group="ingest",
        recipe_sections=("ingest",),
        content_versioned=True,
    )
    return normalized, quarantine


def _score_table(kind: SourceKind, name: str, description: str, columns: tuple[Column, ...], **options) -> TableSpec:
    """A per-shard score table: read from the shard's rows unless told otherwise, with provenance."""
    return TableSpec(
        kind, name, description, columns, reads=options.pop("reads", ("normalized",)), provenance=True, **options
    )


NORMALIZED = {kind: _ingest_tables(kind)[0] for kind in SourceKind}
QUARANTINE = {kind: _ingest_tables(kind)[1] for kind in SourceKind}

# --- caption score tables (per shard) -------------------------------------------------------------

CLIP_EMBEDDINGS = _score_table(
    CAPTION,
    "clip_embeddings",
    "L2-normalised CLIP image and caption embeddings (float16), computed once per shard.",
    (Column("image_embedding", pl.Array, "CLIP image embedding"), Column("text_embedding", pl.Array)),
    recipe_sections=CLIP_SECTIONS,
    resources=frozenset({"clip"}),
    gpu=True,
)
CLIP_SIMILARITY = _score_table(
    CAPTION,
    "clip_similarity",
    "Cosine similarity of image and caption CLIP embeddings (Data-Juicer's image_text_similarity).",
    (Column("clip_similarity", pl.Float32, "cosine of the stored embeddings", analysed=True),),
    reads=("clip_embeddings",),
)
AESTHETICS = _score_table(
    CAPTION,
    "aesthetics",
    "LAION aesthetics head over the stored CLIP image embeddings.",
    (Column("aesthetics", pl.Float32, "LAION aesthetic score (about 1-10 with real weights)", analysed=True),),
    reads=("clip_embeddings",),
    recipe_sections=("models.aesthetics",),
    resources=frozenset({"aesthetics"}),
)
ITM = _score_table(
    CAPTION,
    "itm",
    "BLIP image-text matching probability.",
    (Column("itm_probability", pl.Float32, "P(image and caption match)", analysed=True),),
    recipe_sections=("models.profile", "models.itm"),
    resources=frozenset({"itm"}),
    gpu=True,
)
WATERMARK = _score_table(
    CAPTION,
    "watermark",
    "LAION watermark detector probability.",
    (Column("watermark_probability", pl.Float32, "P(watermark)", analysed=True),),
    recipe_sections=("models.profile", "models.watermark"),
    resources=frozenset({"watermark"}),
    gpu=True,
)
NSFW = _score_table(
    CAPTION,
    "nsfw",
    "Open-NSFW probability.",
    (Column("nsfw_probability", pl.Float32, "P(not safe for work)", analysed=True),),
    recipe_sections=("models.nsfw",),
    resources=frozenset({"nsfw"}),
    gpu=True,
)
IMAGE_STATS = _score_table(
    CAPTION,
    "image_stats",
    "Width, height, aspect ratio, bytes, format and mode.",
    _image_stats_columns(),
)
CAPTION_TEXT_STATS = _score_table(
    CAPTION,
    "text_stats",
    "Caption word and character counts (special tokens ignored), special-character and repetition ratios.",
    _text_stats_columns(),
)
IMAGE_PHASH = _score_table(
    CAPTION,
    "image_phash",
    "64-bit perceptual hash of each image (hex).",
    (Column("phash", pl.String, "imagehash.phash, 16 hex digits"),),
)


def _minhash_table(kind: SourceKind, name: str, of_what: str) -> TableSpec:
    return _score_table(
        kind,
        name,
        f"MinHash signature of each {of_what}, for near-duplicate search.",
        (Column("minhash", pl.Array, "datasketch affine32 values (MINHASH parameters)"),),
    )


def _sentence_embedding_table(kind: SourceKind, name: str, of_what: str) -> TableSpec:
    return _score_table(
        kind,
        name,
        f"Sentence embedding of each {of_what} (all-MiniLM-L6-v2 by default).",
        (Column("text_embedding", pl.Array, "L2-normalised, float16"),),
        recipe_sections=("models.text_embedding",),
        resources=frozenset({"text_embedding"}),
        gpu=True,
    )


CAPTION_MINHASH = _minhash_table(CAPTION, "caption_minhash", "caption")
CAPTION_EMBEDDING = _sentence_embedding_table(CAPTION, "caption_embedding", "caption")

RECAPTIONED = TableSpec(
    CAPTION,
    "recaptioned",
    "Pairs in the recipe's weak band with acceptable images, recaptioned: candidates, their CLIP scores, the "
    "chosen caption, scores before and after, the captioner, and whether the new caption is kept.",
    (
        Column("original_caption", pl.String),
        Column("new_caption", pl.String, "the best candidate by CLIP similarity"),
        Column("candidates", pl.List(pl.String)),
        Column("candidate_scores", pl.List(pl.Float32), "CLIP similarity of each candidate"),
        Column("score_before", pl.Float32),
        Column("score_after", pl.Float32),
        Column("captioner", pl.String),
        Column("kept", pl.Boolean, "the new caption replaces the original"),
        Column("decision", pl.String, "why it was kept or not"),
    ),
    reads=("normalized", "clip_embeddings"),
    recipe_reads=lambda recipe: _recaption_reads(recipe),
    recipe_sections=("recaption", "models.captioner"),
    resources=frozenset({"captioner", "clip"}),
    gpu=True,
    group="recaption",
    provenance=True,
)

# --- text score tables (per shard) ------------------------------------------------------------------

TEXT_STATS = _score_table(
    TEXT,
    "text_stats",
    "Word and character counts, special-character and repetition ratios of each document.",
    _text_stats_columns(),
)
TEXT_MINHASH = _minhash_table(TEXT, "text_minhash", "document")
# Long documents are truncated by the model (256 word pieces for MiniLM).
TEXT_EMBEDDING = _sentence_embedding_table(TEXT, "text_embedding", "document")


def _text_quality_table(kind: SourceKind) -> TableSpec:
    return _score_table(
        kind,
        "text_quality",
        "Predicted language and its probability (py3langid, inside its package), and the share of stopwords of "
        "that language, per document (language_id_score_filter, stopwords_filter).",
        (
            Column("language", pl.String, "ISO 639 code of the predicted language (zxx: no linguistic content)"),
            Column("language_score", pl.Float32, "probability of the predicted language", analysed=True),
            Column("stopwords_ratio", pl.Float32, "share of words that are stopwords of that language", analysed=True),
        ),
        recipe_sections=("models.language_id",),
    )


TEXT_QUALITY = _text_quality_table(TEXT)
TEXT_HASH = _score_table(
    TEXT,
    "text_hash",
    "MD5 of each document's normalised text (Data-Juicer's document_deduplicator), for exact dedup: one column "
    "per combination of its options, so editing them re-runs only text/dedup.",
    (
        Column("text_hash", pl.String, "hex, of the NFKC, whitespace-collapsed, lowercased text"),
        Column("text_hash_cased", pl.String, "same, case kept (lowercase: false)"),
        Column("text_hash_letters", pl.String, "lowercased, no whitespace, digits, punctuation (ignore_non_character)"),
        Column("text_hash_cased_letters", pl.String, "case kept, no whitespace, digits, punctuation"),
    ),
)
TEXT_PERPLEXITY = _score_table(
    TEXT,
    "text_perplexity",
    "KenLM perplexity of each document under the user's language model (perplexity_filter); made only when "
    "a text filter reads it.",
    (Column("perplexity", pl.Float32, "10 ** (-log10 score / tokens), CCNet's formula", analysed=True),),
    recipe_sections=("models.perplexity",),
    resources=frozenset({"perplexity"}),
)

# --- interleaved score tables (per shard): per image, per text element, per document -------------------
# Per-image tables hold one row per image (`image_id` = <sample_id>/<position in the aligned lists>),
# sentence tables one per text element (`sentence_id`, same form); both carry the document's sample_id.

IMAGE_ID, SENTENCE_ID = "image_id", "sentence_id"
_IMAGE_KEY = (Column(IMAGE_ID, pl.String, "<sample_id>/<image position>"), Column("image_index", pl.Int32))


def _image_table(name: str, description: str, columns: tuple[Column, ...], **options) -> TableSpec:
    return _score_table(INTERLEAVED, name, description, (*_IMAGE_KEY, *columns), key_columns=(IMAGE_ID,), **options)


INTERLEAVED_IMAGE_STATS = _image_table(
    "image_stats",
    "Width, height, aspect ratio, bytes, format and mode of every image of every document.",
    _image_stats_columns(),
)
INTERLEAVED_IMAGE_EMBEDDINGS = _image_table(
    "image_embeddings",
    "L2-normalised CLIP image embedding (float16) of every image, computed once per shard.",
    (Column("image_embedding", pl.Array, "CLIP image embedding"),),
    recipe_sections=CLIP_SECTIONS,
    resources=frozenset({"clip"}),
    gpu=True,
)
INTERLEAVED_SENTENCE_EMBEDDINGS = _score_table(
    INTERLEAVED,
    "sentence_embeddings",
    "L2-normalised CLIP text embedding (float16) of every text element, from CLIP's text tower as MMC4 did.",
    (
        Column(SENTENCE_ID, pl.String, "<sample_id>/<text position>"),
        Column("text_index", pl.Int32),
        Column("text_embedding", pl.Array, "CLIP text embedding"),
    ),
    key_columns=(SENTENCE_ID,),
    recipe_sections=CLIP_SECTIONS,
    resources=frozenset({"clip"}),
    gpu=True,
)
INTERLEAVED_SIMILARITY = _score_table(
    INTERLEAVED,
    "similarity_matrices",
    "Per document, the CLIP cosine similarity of each image to each text element (MMC4's similarity_matrix, "
    "reading order).",
    (
        Column("image_indices", pl.List(pl.Int32), "the positions the matrix's rows stand for"),
        Column("text_indices", pl.List(pl.Int32), "the positions its columns stand for"),
        Column("similarity_matrix", pl.List(pl.List(pl.Float32)), "images x text elements"),
    ),
    reads=("normalized", "image_embeddings", "sentence_embeddings"),
)
INTERLEAVED_IMAGE_MATCHES = _image_table(
    "image_matches",
    "Each image's best text element (argmax) and its assigned one (MMC4's linear assignment), with both similarities.",
    (
        # Null for the images of a document without text: nothing to compare them with.
        Column("best_text_index", pl.Int32, nullable=True),
        Column("best_similarity", pl.Float32, "similarity to its best text element", analysed=True, nullable=True),
        Column("assigned_text_index", pl.Int32, nullable=True),
        Column(
            "assigned_similarity", pl.Float32, "similarity to its assigned text element", analysed=True, nullable=True
        ),
    ),
    reads=("similarity_matrices",),
)
INTERLEAVED_NSFW = _image_table(
    "nsfw",
    "Open-NSFW probability of every image.",
    (Column("nsfw_probability", pl.Float32, "P(not safe for work)", analysed=True),),
    recipe_sections=("models.nsfw",),
    resources=frozenset({"nsfw"}),
    gpu=True,
)
INTERLEAVED_PHASH = _image_table(
    "image_phash",
    "64-bit perceptual hash of every image (hex), for dedup across documents and against the caption pool.",
    (Column("phash", pl.String, "imagehash.phash, 16 hex digits"),),
)
INTERLEAVED_TEXT_STATS = _score_table(
    INTERLEAVED,
    "text_stats",
    "Word and character counts, special-character and repetition ratios of each document's text.",
    _text_stats_columns(),
)
INTERLEAVED_TEXT_QUALITY = _text_quality_table(INTERLEAVED)
INTERLEAVED_MINHASH = _minhash_table(INTERLEAVED, "text_minhash", "document's text")

# Per-shard tables computed in one step when several are due: one read and one decode of each image
# feed every model of the pass (scoring/image_pass.py). Each stays its own asset with its own code
# version, so a changed model re-runs only its table (the step computes just the tables selected).
CAPTION_IMAGE_PASS = (CLIP_EMBEDDINGS, ITM, WATERMARK, NSFW, IMAGE_PHASH)
INTERLEAVED_IMAGE_PASS = (INTERLEAVED_IMAGE_EMBEDDINGS, INTERLEAVED_NSFW, INTERLEAVED_PHASH)
COMPUTED_TOGETHER = (CAPTION_IMAGE_PASS, INTERLEAVED_IMAGE_PASS)

CAPTION_SCORE_TABLES = (
    CLIP_EMBEDDINGS,
    CLIP_SIMILARITY,
    AESTHETICS,
    ITM,
    WATERMARK,
    NSFW,
    IMAGE_STATS,
    CAPTION_TEXT_STATS,
    IMAGE_PHASH,
    CAPTION_MINHASH,
    CAPTION_EMBEDDING,
)
# --- the global chain of each kind: helpers ----------------------------------------------------------


def _index_shards(kind: SourceKind) -> TableSpec:
    return TableSpec(
        kind,
        "sample_shards",
        f"The shards in {kind.value}/sample_index: the inputs each shard's rows came from and their content version.",
        (
            Column("inputs", pl.String),
            Column("version", pl.String),
            Column("rows", pl.Int64),
            Column("quarantined", pl.String, "JSON: reason -> [rows, one example detail]"),
        ),
        scope=Scope.whole,
        file_name="shards.parquet",
        group="index",
        key_columns=("shard_id",),
        written_by="sample_index",
    )


def _decided(kind: SourceKind, what: str, **options) -> TableSpec:
    return TableSpec(
        kind,
        "filtered",
        f"Every {what} kept or dropped: the first failing rule (recipe order) and its value, then dedup, which "
        "keeps the best member of each duplicate group that passes every rule.",
        (
            Column("shard_id", pl.String),
            Column("kept", pl.Boolean),
            Column("drop_rule", pl.String, "the first failing rule (recipe order), or dedup"),
            Column("drop_value", pl.String, "the value that failed it"),
            Column("duplicate_of", pl.String, "the member kept in its duplicate group"),
        ),
        scope=Scope.whole,
        group="selection",
        content_versioned=True,
        **options,
    )


def _thresholds(kind: SourceKind, sections: tuple[str, ...]) -> TableSpec:
    return TableSpec(
        kind,
        "selection_thresholds",
        f"The {kind.value} recipe's filter bounds as numbers: percentile bounds ('p10') resolved over all shards.",
        (),
        scope=Scope.whole,
        file_name="thresholds.json",
        reads=("sample_index",),
        recipe_sections=sections,
        group="selection",
        key_columns=(),
        content_versioned=True,
    )


def _analysis(kind: SourceKind, what: str, reads: tuple[str, ...], **options) -> TableSpec:
    return TableSpec(
        kind,
        "score_analysis",
        f"The page a curator of {kind.value} data opens first: per score, a histogram with the recipe's bounds "
        "drawn and what each bound drops; the filter funnel in recipe order; the quarantine funnel. The table holds "
        f"per-score quantiles (5/25/50/75/95%) and counts over every {what}.",
        (Column("score", pl.String), Column("count", pl.Int64), Column("nulls", pl.Int64)),
        scope=Scope.whole,
        file_name="summary.parquet",
        reads=reads,
        group="analysis",
        key_columns=("score",),
        **options,
    )


# --- caption decisions (global) -------------------------------------------------------------------
# No global table feeds a per-shard one: adding a shard or editing a threshold re-runs only these.


def _samples_reads(recipe: Recipe) -> tuple[str, ...]:
    scores = [spec.name for spec in CAPTION_SCORE_TABLES if spec.analysed_columns or spec in (IMAGE_PHASH,)]
    return (*scores, CAPTION_MINHASH.name, *(("recaptioned",) if recipe.recaption.enabled else ()))


SAMPLES = TableSpec(
    CAPTION,
    "sample_index",
    "Every valid caption pair of every shard with its final caption (a kept recaption replaces the original) "
    "and every score the decisions read, in one table; refreshed only for shards whose tables changed.",
    (
        Column("shard_id", pl.String),
        Column("image_ref", pl.String),
        Column("image_sha256", pl.String),
        Column("caption", pl.String, "the final caption"),
        Column("original_caption", pl.String),
        Column("caption_source", pl.String, "original or recaptioned"),
        *(
            column
            for spec in (CLIP_SIMILARITY, AESTHETICS, ITM, WATERMARK, NSFW, IMAGE_STATS)
            for column in spec.columns
        ),
        *CAPTION_TEXT_STATS.columns,
        *IMAGE_PHASH.columns,
        *CAPTION_MINHASH.columns,
    ),
    scope=Scope.whole,
    file_name="samples.parquet",
    reads=("normalized", "quarantine"),
    recipe_reads=_samples_reads,
    group="index",
    content_versioned=True,
)
SAMPLE_SHARDS = _index_shards(CAPTION)
# The bounds and the funnel need the resolved thresholds and the duplicate groups; quarantine reasons come
# with the index (caption/sample_shards), so ingest alone never re-runs this.
SCORE_ANALYSIS = _analysis(
    CAPTION,
    "caption pair (final captions)",
    ("sample_index", "selection_thresholds"),
    recipe_reads=lambda recipe: ("dedup",) if recipe.dedup.enabled else (),
)
SELECTION_THRESHOLDS = _thresholds(CAPTION, ("filters",))
DEDUP = TableSpec(
    CAPTION,
    "dedup",
    "Duplicate groups across all shards (identical bytes, pHash neighbours, caption MinHash-LSH, SemDeDup "
    "clusters). Which member survives is decided by caption/filtered: the best one that passes every rule.",
    (
        Column("group_id", pl.String, "the group's smallest sample_id"),
        Column("method", pl.String, "methods linking this sample, comma-separated"),
        Column("shard_id", pl.String),
    ),
    scope=Scope.whole,
    file_name="duplicates.parquet",
    reads=("sample_index",),
    recipe_reads=lambda recipe: ("clip_embeddings",) if recipe.dedup.semantic_deduplicator else (),
    recipe_sections=("dedup",),
    group="selection",
    content_versioned=True,
)
FILTERED = _decided(
    CAPTION,
    "caption pair",
    file_name="decisions.parquet",
    reads=("sample_index", "selection_thresholds"),
    recipe_reads=lambda recipe: ("dedup",) if recipe.dedup.enabled else (),
    recipe_sections=("filters",),
)
SELECTED = TableSpec(
    CAPTION,
    "selected",
    "The recipe's optional global selectors (top-k by a score, coreset, DSIR) over every kept pair; without "
    "selectors, every kept pair is selected.",
    (
        Column("shard_id", pl.String),
        Column("selected", pl.Boolean),
        Column("dropped_by", pl.String, "the selector that let it go"),
    ),
    scope=Scope.whole,
    file_name="selected.parquet",
    reads=("filtered", "sample_index"),
    recipe_reads=lambda recipe: ("clip_embeddings",) if recipe.selectors.coreset_selector else (),
    recipe_sections=("selectors",),
    recipe_files=("selectors.dsir_selector.target",),
    group="selection",
    content_versioned=True,
)
CURATED = TableSpec(
    CAPTION,
    "curated",
    "The curated caption pool: every selected pair with its final caption and where it came from.",
    (
        Column("shard_id", pl.String),
        Column("image_ref", pl.String),
        Column("image_sha256", pl.String),
        Column("caption", pl.String, "the final caption"),
        Column("caption_source", pl.String, "original or recaptioned"),
        Column("original_caption", pl.String),
    ),
    scope=Scope.whole,
    file_name="pool.parquet",
    reads=("selected", "sample_index"),
    group="curated",
    content_versioned=True,
)
# --- the global chain of the text and interleaved branches ------------------------------------------
# As the caption branch's: an index refreshed per shard, thresholds, dedup, decisions, the curated pool
# (one file per shard) and its manifest. Only these re-run for a threshold edit or a new shard.


def uses_perplexity(recipe: Recipe) -> bool:
    from curation_assets.selection.filters import rules_of

    return any(rule.column == "perplexity" for rule in rules_of(recipe.text.filters))


def _text_index_reads(recipe: Recipe) -> tuple[str, ...]:
    return (TEXT_PERPLEXITY.name,) if uses_perplexity(recipe) else ()


TEXT_SAMPLES = TableSpec(
    TEXT,
    "sample_index",
    "Every valid text document of every shard with every score the decisions read (no text: the pool reads it "
    "from the shard); refreshed only for shards whose tables changed.",
    (
        Column("shard_id", pl.String),
        *TEXT_STATS.columns,
        *TEXT_QUALITY.columns,
        Column("perplexity", pl.Float32, "null unless a text filter reads perplexity"),
        *TEXT_HASH.columns,
        *TEXT_MINHASH.columns,
    ),
    scope=Scope.whole,
    file_name="samples.parquet",
    reads=("normalized", "quarantine", TEXT_STATS.name, TEXT_QUALITY.name, TEXT_HASH.name, TEXT_MINHASH.name),
    recipe_reads=_text_index_reads,
    group="index",
    content_versioned=True,
)
TEXT_SAMPLE_SHARDS = _index_shards(TEXT)
TEXT_THRESHOLDS = _thresholds(TEXT, ("text.filters",))
TEXT_DEDUP = TableSpec(
    TEXT,
    "dedup",
    "Duplicate groups of text documents across all shards (normalised text hash, MinHash-LSH, SemDeDup); "
    "each group keeps its member with the highest language_score that passes every rule (text/filtered).",
    (
        Column("level", pl.String, "image or document (text: document)"),
        Column("member_id", pl.String, "an image_id or a document's sample_id"),
        Column("shard_id", pl.String),
        Column("group_id", pl.String),
        Column("method", pl.String, "methods linking this member, comma-separated"),
        Column("duplicate_of", pl.String, "the group's representative (caption:<id> for a caption pair)"),
    ),
    scope=Scope.whole,
    file_name="duplicates.parquet",
    reads=("sample_index",),
    recipe_reads=lambda recipe: ("text_embedding",) if recipe.text.dedup.semantic_deduplicator else (),
    recipe_sections=("text.dedup",),
    group="selection",
    key_columns=("member_id",),
    content_versioned=True,
)
TEXT_FILTERED = _decided(
    TEXT,
    "text document",
    file_name="decisions.parquet",
    reads=("sample_index", "selection_thresholds", "dedup"),
)
TEXT_SELECTED = TableSpec(
    TEXT,
    "selected",
    "DSIR over the kept documents toward the recipe's target text (text.selectors); without it, every kept "
    "document is selected.",
    SELECTED.columns,
    scope=Scope.whole,
    file_name="selected.parquet",
    reads=("filtered",),
    # DSIR reads the kept documents' text from each shard.
    recipe_reads=lambda recipe: ("normalized",) if recipe.text.selectors.dsir_selector else (),
    recipe_sections=("text.selectors",),
    recipe_files=("text.selectors.dsir_selector.target",),
    group="selection",
    content_versioned=True,
)


def _pool_columns(kind: SourceKind, *extra: Column) -> tuple[Column, ...]:
    from curation_assets.tables import SCHEMAS

    return (*(Column(name, dtype) for name, dtype in SCHEMAS[kind].items() if name != "sample_id"), *extra)


TEXT_CURATED = TableSpec(
    TEXT,
    "curated",
    "The curated text pool, one file per shard: every selected document in the canonical text layout.",
    _pool_columns(TEXT),
    scope=Scope.shard_files,
    reads=("selected", "normalized"),
    group="curated",
    content_versioned=True,
)
TEXT_ANALYSIS = _analysis(TEXT, "text document", ("sample_index", "selection_thresholds", "filtered"))

INTERLEAVED_SAMPLES = TableSpec(
    INTERLEAVED,
    "sample_index",
    "Every valid interleaved document of every shard with its counts and the text scores the document rules "
    "read; its companion interleaved/indexed_images holds every image. Refreshed only for shards whose tables "
    "changed.",
    (
        Column("shard_id", pl.String),
        Column("num_images", pl.Int32),
        Column("num_sentences", pl.Int32, "text elements"),
        *INTERLEAVED_TEXT_STATS.columns,
        *INTERLEAVED_TEXT_QUALITY.columns,
        *INTERLEAVED_MINHASH.columns,
    ),
    scope=Scope.whole,
    file_name="samples.parquet",
    reads=(
        "normalized",
        "quarantine",
        *(
            spec.name
            for spec in (
                INTERLEAVED_IMAGE_STATS,
                INTERLEAVED_IMAGE_MATCHES,
                INTERLEAVED_NSFW,
                INTERLEAVED_PHASH,
                INTERLEAVED_TEXT_STATS,
                INTERLEAVED_TEXT_QUALITY,
                INTERLEAVED_MINHASH,
            )
        ),
    ),
    group="index",
    content_versioned=True,
)
INTERLEAVED_IMAGES = TableSpec(
    INTERLEAVED,
    "indexed_images",
    "Every image of every indexed interleaved document with where it is and every score the image rules read.",
    (
        Column("sample_id", pl.String),
        Column("shard_id", pl.String),
        Column("image_ref", pl.String),
        Column("image_sha256", pl.String),
        *(c for c in INTERLEAVED_IMAGE_STATS.columns if c.name != IMAGE_ID),
        *(c for c in INTERLEAVED_IMAGE_MATCHES.columns if c.name not in (IMAGE_ID, "image_index")),
        *(c for c in INTERLEAVED_NSFW.columns if c.analysed),
        *(c for c in INTERLEAVED_PHASH.columns if c.name not in (IMAGE_ID, "image_index")),
    ),
    scope=Scope.whole,
    file_name="images.parquet",
    group="index",
    key_columns=(IMAGE_ID,),
    written_by="sample_index",
)
INTERLEAVED_SAMPLE_SHARDS = _index_shards(INTERLEAVED)
INTERLEAVED_THRESHOLDS = _thresholds(
    INTERLEAVED, ("interleaved.image_filters", "interleaved.document_filters", "interleaved.reassign_images")
)


def _interleaved_dedup_reads(recipe: Recipe) -> tuple[str, ...]:
    dedup = recipe.interleaved.dedup
    against = dedup.image_deduplicator is not None and dedup.against_caption_pool
    return (CURATED.qualified_name, SAMPLES.qualified_name) if against else ()


INTERLEAVED_DEDUP = TableSpec(
    INTERLEAVED,
    "dedup",
    "Duplicate groups of interleaved images (identical bytes and pHash neighbours, across documents and against "
    "the curated caption pool, whose copy always survives) and of documents (MinHash-LSH over their text).",
    TEXT_DEDUP.columns,
    scope=Scope.whole,
    file_name="duplicates.parquet",
    reads=("sample_index",),
    recipe_reads=_interleaved_dedup_reads,
    recipe_sections=("interleaved.dedup",),
    group="selection",
    key_columns=("member_id",),
    content_versioned=True,
)
INTERLEAVED_FILTERED = _decided(
    INTERLEAVED,
    "interleaved document",
    file_name="decisions.parquet",
    reads=("sample_index", "selection_thresholds", "dedup"),
    recipe_sections=("interleaved.reassign_images",),
)
INTERLEAVED_IMAGE_DECISIONS = TableSpec(
    INTERLEAVED,
    "image_decisions",
    "Every image of every indexed document kept or dropped: the first failing image rule and its value, or dedup.",
    (
        Column("sample_id", pl.String),
        Column("shard_id", pl.String),
        Column("image_index", pl.Int32),
        Column("kept", pl.Boolean),
        Column("drop_rule", pl.String),
        Column("drop_value", pl.String),
        Column("duplicate_of", pl.String, "the copy kept (an image_id, or caption:<id> in the caption pool)"),
        Column("matched_text_index", pl.Int32, "the text element it is judged by (best or assigned)"),
    ),
    scope=Scope.whole,
    file_name="image_decisions.parquet",
    group="selection",
    key_columns=(IMAGE_ID,),
    written_by="filtered",
)
INTERLEAVED_CURATED = TableSpec(
    INTERLEAVED,
    "curated",
    "The curated interleaved pool, one file per shard: every kept document without its dropped images, texts "
    "and images still aligned (moved before their assigned sentence under interleaved.reassign_images).",
    _pool_columns(INTERLEAVED, Column("num_images_dropped", pl.Int32)),
    scope=Scope.shard_files,
    reads=("filtered", "normalized"),
    recipe_sections=("interleaved.reassign_images",),
    group="curated",
    content_versioned=True,
)
INTERLEAVED_ANALYSIS = _analysis(
    INTERLEAVED, "document and image", ("sample_index", "selection_thresholds", "filtered")
)

# --- the mix and its exports (global, over every kind's curated pool) ------------------------------------

MIX = Product.mix
CURATED_POOLS = tuple(f"{kind.value}/curated" for kind in SourceKind)


def _weighting_indexes(recipe: Recipe) -> tuple[str, ...]:
    """The sample indexes holding the scores `mix.weight_by` samples by."""
    return tuple(f"{kind.value}/sample_index" for kind in recipe.mix.weight_by)


TOKEN_COUNTS = TableSpec(
    MIX,
    "token_counts",
    "Tokens of every curated sample in the trainer's tokenizer: text tokens plus mix.image_tokens per image. "
    "A sample is counted once and keeps its count while its text and the tokenizer stay the same.",
    (
        Column("kind", pl.String),
        Column("text_tokens", pl.Int64),
        Column("num_images", pl.Int32),
        Column("tokens", pl.Int64, "text tokens + num_images x mix.image_tokens"),
        Column("content_hash", pl.String, "hash of the text that was counted"),
        Column("counted_with", pl.String, "the tokenizer and image cost the count was made with"),
    ),
    scope=Scope.whole,
    file_name="token_counts.parquet",
    reads=CURATED_POOLS,
    recipe_sections=("models.profile", "mix.tokenizer", "mix.image_tokens"),
    group="mix",
    content_versioned=True,
)
MIX_TABLE = TableSpec(
    MIX,
    "mix",
    "The pretraining mix: one row per sample drawn (kind, source shard, repeat index, tokens) at the recipe's "
    "ratio (MM1's caption 5 : interleaved 5 : text 1 by default), by a seeded draw that a new shard only "
    "changes by what its rows displace.",
    (
        Column("kind", pl.String),
        Column("shard_id", pl.String),
        Column("repeat_index", pl.Int32, "0 for a sample's first appearance, 1 for its first repeat, ..."),
        Column("tokens", pl.Int64),
    ),
    scope=Scope.whole,
    file_name="mix.parquet",
    reads=(*CURATED_POOLS, "mix/token_counts"),
    recipe_reads=_weighting_indexes,
    recipe_sections=("mix",),
    group="mix",
    content_versioned=True,
)
MIX_REPORT = TableSpec(
    MIX,
    "mix_report",
    "Target vs realized shares in samples and tokens, counts and repeats per kind, short pools.",
    (),
    scope=Scope.whole,
    file_name="report.json",
    group="mix",
    key_columns=(),
    written_by="mix",
)
EXPORTS = TableSpec(
    MIX,
    "exports",
    "The mix as trainers read it: LLaVA / Mini-Gemini stage-1 json with its image folder, WebDataset tars, "
    "interleaved parquet, text shards and Data-Juicer jsonl, each with a manifest of counts and sha256.",
    (),
    scope=Scope.whole,
    file_name="exports.json",
    reads=("mix/mix", *CURATED_POOLS, "caption/sample_index"),
    recipe_sections=("exports",),
    group="exports",
    key_columns=(),
    content_versioned=True,
)

# --- eval results: the proxy eval on the mix's caption pairs, an external train/eval, their history -------

EVAL = Product.eval
# What the proxy's result depends on besides its data: every part of `evaluation` but the external command.
PROXY_SECTIONS = tuple(
    f"evaluation.{part}" for part in ("eval_sets", "encoders", "proxy", "baselines", "contamination", "sensitivity")
)


def uses_proxy_eval(recipe: Recipe) -> bool:
    return bool(recipe.evaluation.eval_sets)


def uses_external_eval(recipe: Recipe) -> bool:
    return recipe.evaluation.external is not None


PROXY_FEATURES = TableSpec(
    CAPTION,
    "proxy_features",
    "Frozen image (EfficientNet-Lite0) and caption (MiniLM) features of every pair, computed once per shard, "
    "so comparing recipes in the proxy eval costs only training heads. Not the CLIP used for filtering.",
    (
        Column("image_sha256", pl.String),
        Column("phash", pl.String, "the image's pHash, for contamination against eval images"),
        Column("text_sha256", pl.String, "which caption the text feature encodes"),
        Column("image_feature", pl.Array, "pooled penultimate features of the frozen image encoder (float16)"),
        Column("text_feature", pl.Array, "sentence embedding of the caption (float16)"),
    ),
    reads=("normalized",),
    recipe_sections=("evaluation.encoders",),
    resources=frozenset({"proxy_encoders"}),
    gpu=True,
    group="eval",
    provenance=True,
)
EVAL_RESULTS = TableSpec(
    EVAL,
    "eval_results",
    "The proxy eval (DataComp's protocol, made small): linear heads on frozen features trained with the same "
    "budget on the mix's caption pairs, a random sample of the unfiltered pool and the whole of it, scored by "
    "retrieval recall on the recipe's eval sets over several seeds; eval duplicates removed first.",
    (),
    scope=Scope.whole,
    file_name="report.json",
    reads=("mix/mix", "caption/sample_index", "caption/proxy_features"),
    recipe_sections=PROXY_SECTIONS,
    group="eval",
    key_columns=(),
)
EXTERNAL_RESULTS = TableSpec(
    EVAL,
    "external_results",
    "The recipe's external train/eval command (e.g. Mini-Gemini stage 1 + TextVQA / MMBench) run on the exports "
    "through Dagster Pipes, with the metrics it reported.",
    (),
    scope=Scope.whole,
    file_name="external.json",
    reads=("mix/exports",),
    recipe_sections=("evaluation.external",),
    group="eval",
    key_columns=(),
)
EVAL_HISTORY = TableSpec(
    EVAL,
    "eval_history",
    "Every eval result so far, recipe version by recipe version: which data scored what (read from the "
    "materializations of the eval assets, which keep the recipe fingerprint and the metrics).",
    (
        Column("recorded_at", pl.Float64),
        Column("fingerprint", pl.String),
        Column("eval_set", pl.String),
        Column("pool", pl.String),
        Column("metric", pl.String),
        Column("mean", pl.Float64),
        Column("std", pl.Float64, nullable=True),
    ),
    scope=Scope.whole,
    file_name="history.parquet",
    recipe_reads=lambda recipe: (
        *(("eval_results",) if uses_proxy_eval(recipe) else ()),
        *(("external_results",) if uses_external_eval(recipe) else ()),
    ),
    group="eval",
    key_columns=(),
)

TEXT_SCORE_TABLES = (TEXT_STATS, TEXT_QUALITY, TEXT_HASH, TEXT_MINHASH, TEXT_EMBEDDING, TEXT_PERPLEXITY)
INTERLEAVED_SCORE_TABLES = (
    INTERLEAVED_IMAGE_STATS,
    INTERLEAVED_IMAGE_EMBEDDINGS,
    INTERLEAVED_SENTENCE_EMBEDDINGS,
    INTERLEAVED_SIMILARITY,
    INTERLEAVED_IMAGE_MATCHES,
    INTERLEAVED_NSFW,
    INTERLEAVED_PHASH,
    INTERLEAVED_TEXT_STATS,
    INTERLEAVED_TEXT_QUALITY,
    INTERLEAVED_MINHASH,
)
SCORE_TABLES = CAPTION_SCORE_TABLES + TEXT_SCORE_TABLES + INTERLEAVED_SCORE_TABLES

TABLES: tuple[TableSpec, ...] = (
    *NORMALIZED.values(),
    *QUARANTINE.values(),
    *SCORE_TABLES,
    RECAPTIONED,
    SAMPLES,
    SAMPLE_SHARDS,
    SCORE_ANALYSIS,
    SELECTION_THRESHOLDS,
    DEDUP,
    FILTERED,
    SELECTED,
    CURATED,
    TEXT_SAMPLES,
    TEXT_SAMPLE_SHARDS,
    TEXT_THRESHOLDS,
    TEXT_DEDUP,
    TEXT_FILTERED,
    TEXT_SELECTED,
    TEXT_CURATED,
    TEXT_ANALYSIS,
    INTERLEAVED_SAMPLES,
    INTERLEAVED_IMAGES,
    INTERLEAVED_SAMPLE_SHARDS,
    INTERLEAVED_THRESHOLDS,
    INTERLEAVED_DEDUP,
    INTERLEAVED_FILTERED,
    INTERLEAVED_IMAGE_DECISIONS,
    INTERLEAVED_CURATED,
    INTERLEAVED_ANALYSIS,
    TOKEN_COUNTS,
    MIX_TABLE,
    MIX_REPORT,
    EXPORTS,
    PROXY_FEATURES,
    EVAL_RESULTS,
    EXTERNAL_RESULTS,
    EVAL_HISTORY,
)
# Per-shard tables made by a registered computation (shard_work.computes): scores and model outputs.
COMPUTED_PER_SHARD = (*SCORE_TABLES, RECAPTIONED, PROXY_FEATURES)


@dataclass(frozen=True)
class Chain:
    """A kind's global tables, from its index to its curated pool."""

    index: TableSpec
    index_shards: TableSpec
    thresholds: TableSpec
    dedup: TableSpec
    filtered: TableSpec
    selected: TableSpec | None
    curated: TableSpec
    analysis: TableSpec
    indexed_images: TableSpec | None = None  # interleaved: every image of the indexed documents
    image_decisions: TableSpec | None = None  # interleaved: every image kept or dropped


def _chain(kind: SourceKind) -> Chain:
    def named(name: str) -> TableSpec | None:
        return _BY_NAME.get((kind, name))

    return Chain(
        index=named("sample_index"),
        index_shards=named("sample_shards"),
        thresholds=named("selection_thresholds"),
        dedup=named("dedup"),
        filtered=named("filtered"),
        selected=named("selected"),  # interleaved documents have no selectors yet: the pool is what is kept
        curated=named("curated"),
        analysis=named("score_analysis"),
        indexed_images=named("indexed_images"),
        image_decisions=named("image_decisions"),
    )


_BY_NAME = {(spec.kind, spec.name): spec for spec in TABLES}
if len(_BY_NAME) != len(TABLES):
    raise RuntimeError("two tables share a kind and a name")
CHAINS: dict[SourceKind, Chain] = {kind: _chain(kind) for kind in SourceKind}


def namespace(value: str) -> SourceKind | Product:
    """`caption`, `interleaved`, `text` or `mix`: the first part of a table's qualified name."""
    for kinds in (SourceKind, Product):
        if value in kinds.__members__:
            return kinds(value)
    known = ", ".join([*SourceKind.__members__, *Product.__members__])
    raise KeyError(f"no tables under {value!r}; known: {known}")


def table(kind: SourceKind | Product, name: str) -> TableSpec:
    try:
        return _BY_NAME[(kind, name)]
    except KeyError:
        known = sorted(name for k, name in _BY_NAME if k == kind)
        raise KeyError(f"no {kind.value} table {name!r}; known: {', '.join(known)}") from None


def read_spec(spec: TableSpec, name: str) -> TableSpec:
    """A table `spec` reads: `name` of its own kind, or `<kind>/<name>` of another."""
    if "/" in name:
        kind, _, own = name.partition("/")
        return table(namespace(kind), own)
    return table(spec.kind, name)


def score_tables(kind: SourceKind) -> tuple[TableSpec, ...]:
    return tuple(spec for spec in SCORE_TABLES if spec.kind == kind)


def tables_in_use(recipe: Recipe) -> tuple[TableSpec, ...]:
    """The per-shard tables this recipe materializes: those a decision, the analysis, the mix or the
    eval reads under this recipe (directly or through another per-shard table), and those the recipe
    asks for (`scoring.also_compute`). A score nothing reads costs a model pass per shard for nothing."""
    switched_on = {
        TEXT_PERPLEXITY: uses_perplexity(recipe),
        RECAPTIONED: recipe.recaption.enabled,
        PROXY_FEATURES: uses_proxy_eval(recipe),
    }
    available = [spec for spec in COMPUTED_PER_SHARD if switched_on.get(spec, True)]
    asked = [spec for spec in available if spec.qualified_name in recipe.scoring.also_compute]
    readers = [spec for spec in TABLES if spec not in COMPUTED_PER_SHARD]
    read = _read_transitively([*readers, *asked], recipe)
    return tuple(spec for spec in available if spec in read or spec in asked)


def _read_transitively(readers: list[TableSpec], recipe: Recipe) -> set[TableSpec]:
    """Every table `readers` read under `recipe`, and what those read, and so on."""
    found: set[TableSpec] = set()
    stack = list(readers)
    while stack:
        reader = stack.pop()
        for name in reader.reads_under(recipe):
            spec = read_spec(reader, name)
            if spec not in found:
                found.add(spec)
                stack.append(spec)
    return found


def per_shard_steps(recipe: Recipe) -> list[tuple[TableSpec, ...]]:
    """The per-shard tables in use, as the steps that compute them: a group of COMPUTED_TOGETHER
    (those of its tables in use) or one table alone."""
    in_use = tables_in_use(recipe)
    steps: list[tuple[TableSpec, ...]] = []
    grouped: set[TableSpec] = set()
    for group in COMPUTED_TOGETHER:
        members = tuple(spec for spec in group if spec in in_use)
        if members:
            steps.append(members)
            grouped.update(members)
    return steps + [(spec,) for spec in in_use if spec not in grouped]


def column_tables(kind: SourceKind) -> dict[str, TableSpec]:
    """Score column -> the per-shard table holding it (what a filter on that column reads)."""
    found: dict[str, TableSpec] = {}
    for spec in score_tables(kind):
        for column in spec.analysed_columns:
            if column in found:
                raise RuntimeError(f"{column} is declared by {found[column].name} and {spec.name}")
            found[column] = spec
    return found


def table_of_column(kind: SourceKind, column: str) -> TableSpec:
    tables = column_tables(kind)
    if column not in tables:
        raise KeyError(f"{column!r} is not a {kind.value} score; known: {', '.join(sorted(tables))}")
    return tables[column]


def analysed_columns(kind: SourceKind) -> dict[TableSpec, tuple[str, ...]]:
    """Score table -> its columns worth a distribution, in declaration order."""
    return {spec: spec.analysed_columns for spec in score_tables(kind) if spec.analysed_columns}


# --- what a table reads under a given recipe --------------------------------------------------------


def _columns_tables(columns: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(table_of_column(CAPTION, column).name for column in sorted(columns)))


def _recaption_reads(recipe: Recipe) -> tuple[str, ...]:
    from curation_assets.selection.filters import rules_of

    spec = recipe.recaption
    # Only this shard's tables: recaptioning is model work, and a global table upstream of it would
    # re-run it on every shard whenever any shard changed.
    columns = {spec.band.field_key, "clip_similarity", *(rule.column for rule in rules_of(spec.image_conditions))}
    return _columns_tables(columns)


# --- the one code-version rule ------------------------------------------------------------------------


def recipe_sections(spec: TableSpec, recipe: Recipe) -> tuple[str, ...]:
    """The recipe sections a table's output depends on: its own, plus those of every table it reads
    whose data version does not already follow its content (a model's scores change when the model
    does, before any data version says so). Sorted, without repeats."""
    sections = set(spec.recipe_sections)
    for name in spec.reads_under(recipe):
        parent = read_spec(spec, name)
        if not parent.content_versioned:
            sections.update(recipe_sections(parent, recipe))
    return tuple(sorted(sections))


def code_version(spec: TableSpec, recipe: Recipe) -> str:
    """Logic version, plus a hash of exactly the recipe sections (and the contents of the files they
    name) that the table's output depends on. Editing anything else leaves the table fresh."""
    sections = recipe_sections(spec, recipe)
    if not sections and not spec.recipe_files:
        return spec.logic_version
    return f"{spec.logic_version}-{recipe.fingerprint(*sections, files=spec.recipe_files)}"
