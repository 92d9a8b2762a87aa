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
from typing import TYPE_CHECKING

import polars as pl

from curation_assets.sources import SourceKind
from curation_assets.table_spec import Column, Scope, TableSpec

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
    (
        Column("width", pl.Int32, "pixels", analysed=True),
        Column("height", pl.Int32, "pixels", analysed=True),
        Column("aspect_ratio", pl.Float32, "width / height", analysed=True),
        Column("num_bytes", pl.Int64, "encoded size", analysed=True),
        Column("format", pl.String),
        Column("mode", pl.String),
    ),
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
SAMPLE_SHARDS = TableSpec(
    CAPTION,
    "sample_shards",
    "The shards in caption/sample_index: the inputs each shard's rows came from and their content version.",
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
SCORE_ANALYSIS = TableSpec(
    CAPTION,
    "score_analysis",
    "The page a curator opens first: per score, a histogram with the recipe's bounds drawn and what each "
    "bound drops; the filter funnel in recipe order; the quarantine funnel. The table holds per-score "
    "quantiles (5/25/50/75/95%) and counts over every caption pair (final captions).",
    (Column("score", pl.String), Column("count", pl.Int64), Column("nulls", pl.Int64)),
    scope=Scope.whole,
    file_name="summary.parquet",
    # The bounds and the funnel need the resolved thresholds and the duplicate groups; quarantine
    # reasons come with the index (caption/sample_shards), so ingest alone never re-runs this.
    reads=("sample_index", "selection_thresholds"),
    recipe_reads=lambda recipe: ("dedup",) if recipe.dedup.enabled else (),
    group="analysis",
    key_columns=("score",),
)
SELECTION_THRESHOLDS = TableSpec(
    CAPTION,
    "selection_thresholds",
    "The recipe's filter bounds as numbers: percentile bounds ('p10') resolved over all shards.",
    (),
    scope=Scope.whole,
    file_name="thresholds.json",
    reads=("sample_index",),
    recipe_sections=("filters",),
    group="selection",
    key_columns=(),
    content_versioned=True,
)
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
FILTERED = TableSpec(
    CAPTION,
    "filtered",
    "Every caption pair kept or dropped: the first failing rule and its value, then dedup, which keeps the best "
    "member of each duplicate group that passes every rule.",
    (
        Column("shard_id", pl.String),
        Column("kept", pl.Boolean),
        Column("drop_rule", pl.String, "the first failing rule (recipe order), or dedup"),
        Column("drop_value", pl.String, "the value that failed it"),
        Column("duplicate_of", pl.String, "the member kept in the sample's duplicate group"),
    ),
    scope=Scope.whole,
    file_name="decisions.parquet",
    reads=("sample_index", "selection_thresholds"),
    recipe_reads=lambda recipe: ("dedup",) if recipe.dedup.enabled else (),
    recipe_sections=("filters",),
    group="selection",
    content_versioned=True,
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
CURATED_MANIFEST = TableSpec(
    CAPTION,
    "curated_manifest",
    "Every curated caption pair with its mix weight: the recipe's curated.repeat, the number of times the pair "
    "enters the pretraining mix.",
    (Column("shard_id", pl.String), Column("caption_source", pl.String), Column("repeat", pl.Int32)),
    scope=Scope.whole,
    file_name="manifest.parquet",
    reads=("curated",),
    recipe_sections=("curated",),
    group="curated",
    content_versioned=True,
)

TEXT_SCORE_TABLES = (TEXT_STATS, TEXT_MINHASH, TEXT_EMBEDDING)
SCORE_TABLES = CAPTION_SCORE_TABLES + TEXT_SCORE_TABLES

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
    CURATED_MANIFEST,
)
_BY_NAME = {(spec.kind, spec.name): spec for spec in TABLES}
if len(_BY_NAME) != len(TABLES):
    raise RuntimeError("two tables share a kind and a name")


def table(kind: SourceKind, name: str) -> TableSpec:
    try:
        return _BY_NAME[(kind, name)]
    except KeyError:
        known = sorted(name for k, name in _BY_NAME if k == kind)
        raise KeyError(f"no {kind.value} table {name!r}; known: {', '.join(known)}") from None


def score_tables(kind: SourceKind) -> tuple[TableSpec, ...]:
    return tuple(spec for spec in SCORE_TABLES if spec.kind == kind)


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
        parent = table(spec.kind, name)
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
