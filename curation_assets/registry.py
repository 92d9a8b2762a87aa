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


NORMALIZED = {kind: _ingest_tables(kind)[0] for kind in SourceKind}
QUARANTINE = {kind: _ingest_tables(kind)[1] for kind in SourceKind}

# --- caption score tables (per shard) -------------------------------------------------------------

CLIP_EMBEDDINGS = TableSpec(
    CAPTION,
    "clip_embeddings",
    "L2-normalised CLIP image and caption embeddings (float16), computed once per shard.",
    (Column("image_embedding", pl.Array, "CLIP image embedding"), Column("text_embedding", pl.Array)),
    reads=("normalized",),
    recipe_sections=CLIP_SECTIONS,
    resources=frozenset({"clip"}),
    gpu=True,
    provenance=True,
)
CLIP_SIMILARITY = TableSpec(
    CAPTION,
    "clip_similarity",
    "Cosine similarity of image and caption CLIP embeddings (Data-Juicer's image_text_similarity).",
    (Column("clip_similarity", pl.Float32, "cosine of the stored embeddings", analysed=True),),
    reads=("clip_embeddings",),
    provenance=True,
)
AESTHETICS = TableSpec(
    CAPTION,
    "aesthetics",
    "LAION aesthetics head over the stored CLIP image embeddings.",
    (Column("aesthetics", pl.Float32, "LAION aesthetic score (about 1-10 with real weights)", analysed=True),),
    reads=("clip_embeddings",),
    recipe_sections=("models.aesthetics",),
    resources=frozenset({"aesthetics"}),
    provenance=True,
)
ITM = TableSpec(
    CAPTION,
    "itm",
    "BLIP image-text matching probability.",
    (Column("itm_probability", pl.Float32, "P(image and caption match)", analysed=True),),
    reads=("normalized",),
    recipe_sections=("models.profile", "models.itm"),
    resources=frozenset({"itm"}),
    gpu=True,
    provenance=True,
)
WATERMARK = TableSpec(
    CAPTION,
    "watermark",
    "LAION watermark detector probability.",
    (Column("watermark_probability", pl.Float32, "P(watermark)", analysed=True),),
    reads=("normalized",),
    recipe_sections=("models.profile", "models.watermark"),
    resources=frozenset({"watermark"}),
    gpu=True,
    provenance=True,
)
NSFW = TableSpec(
    CAPTION,
    "nsfw",
    "Open-NSFW probability.",
    (Column("nsfw_probability", pl.Float32, "P(not safe for work)", analysed=True),),
    reads=("normalized",),
    recipe_sections=("models.nsfw",),
    resources=frozenset({"nsfw"}),
    gpu=True,
    provenance=True,
)
IMAGE_STATS = TableSpec(
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
    reads=("normalized",),
    provenance=True,
)
CAPTION_TEXT_STATS = TableSpec(
    CAPTION,
    "text_stats",
    "Caption word and character counts (special tokens ignored), special-character and repetition ratios.",
    _text_stats_columns(),
    reads=("normalized",),
    provenance=True,
)
IMAGE_PHASH = TableSpec(
    CAPTION,
    "image_phash",
    "64-bit perceptual hash of each image (hex).",
    (Column("phash", pl.String, "imagehash.phash, 16 hex digits"),),
    reads=("normalized",),
    provenance=True,
)
CAPTION_MINHASH = TableSpec(
    CAPTION,
    "caption_minhash",
    "MinHash signature of each caption, for near-duplicate search.",
    (Column("minhash", pl.Array, "datasketch affine32 values (MINHASH parameters)"),),
    reads=("normalized",),
    provenance=True,
)
CAPTION_EMBEDDING = TableSpec(
    CAPTION,
    "caption_embedding",
    "Sentence embedding of each caption (all-MiniLM-L6-v2 by default).",
    (Column("text_embedding", pl.Array, "L2-normalised, float16"),),
    reads=("normalized",),
    recipe_sections=("models.text_embedding",),
    resources=frozenset({"text_embedding"}),
    gpu=True,
    provenance=True,
)

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

# --- caption decisions -----------------------------------------------------------------------------

SELECTION_THRESHOLDS = TableSpec(
    CAPTION,
    "selection_thresholds",
    "The recipe's filter bounds as numbers: percentile bounds ('p10') resolved over all shards.",
    (),
    scope=Scope.whole,
    file_name="thresholds.json",
    recipe_reads=lambda recipe: _percentile_reads(recipe),
    recipe_sections=("filters",),
    group="selection",
    key_columns=(),
    content_versioned=True,
)
DEDUP = TableSpec(
    CAPTION,
    "dedup",
    "Duplicate groups across all shards (identical bytes, pHash neighbours, caption MinHash-LSH, SemDeDup "
    "clusters); one representative per group: the highest CLIP similarity, then the smallest sample_id.",
    (
        Column("group_id", pl.String, "the representative's sample_id"),
        Column("representative", pl.Boolean),
        Column("method", pl.String, "methods linking this sample, comma-separated"),
        Column("duplicate_of", pl.String, "the representative, null for itself"),
        Column("shard_id", pl.String),
    ),
    scope=Scope.whole,
    file_name="duplicates.parquet",
    # Representatives are chosen by CLIP similarity, so the CLIP model is part of the decision.
    reads=("normalized", "clip_similarity"),
    recipe_reads=lambda recipe: _dedup_reads(recipe),
    recipe_sections=("dedup",),
    group="selection",
    content_versioned=True,
)
FILTERED = TableSpec(
    CAPTION,
    "filtered",
    "Every valid sample of a shard, kept or dropped; a drop names the first failing rule and its value.",
    (
        Column("kept", pl.Boolean),
        Column("drop_rule", pl.String, "the first failing rule (recipe order), or dedup"),
        Column("drop_value", pl.String, "the value that failed it"),
    ),
    reads=("normalized", "selection_thresholds"),
    recipe_reads=lambda recipe: _filter_reads(recipe),
    recipe_sections=("filters",),
    group="selection",
    content_versioned=True,
)
SELECTED = TableSpec(
    CAPTION,
    "selected",
    "The recipe's optional global selectors (top-k by a score, coreset, DSIR) over every kept row; without "
    "selectors, every kept row is selected.",
    (
        Column("shard_id", pl.String),
        Column("selected", pl.Boolean),
        Column("dropped_by", pl.String, "the selector that let it go"),
    ),
    scope=Scope.whole,
    file_name="selected.parquet",
    reads=("filtered", "normalized"),
    recipe_reads=lambda recipe: _selector_reads(recipe),
    recipe_sections=("selectors",),
    recipe_files=("selectors.dsir_selector.target",),
    group="selection",
    content_versioned=True,
)
CURATED = TableSpec(
    CAPTION,
    "curated",
    "The shard's curated caption pool: selected kept pairs with their caption, plus recaptioned pairs whose new "
    "caption was kept, each with its final caption and where it came from.",
    (
        Column("shard_id", pl.String),
        Column("image_ref", pl.String),
        Column("caption", pl.String, "the final caption"),
        Column("caption_source", pl.String, "original or recaptioned"),
        Column("original_caption", pl.String),
    ),
    reads=("normalized", "filtered", "selected"),
    recipe_reads=lambda recipe: ("recaptioned",) if recipe.recaption.enabled else (),
    group="curated",
    content_versioned=True,
)
CURATED_MANIFEST = TableSpec(
    CAPTION,
    "curated_manifest",
    "Every curated caption pair over all shards with its mix weight: the recipe's curated.repeat, the number of "
    "times the pair enters the pretraining mix.",
    (Column("shard_id", pl.String), Column("caption_source", pl.String), Column("repeat", pl.Int32)),
    scope=Scope.whole,
    file_name="manifest.parquet",
    reads=("curated",),
    recipe_sections=("curated",),
    group="curated",
    content_versioned=True,
)

# --- text score tables (per shard) ------------------------------------------------------------------

TEXT_STATS = TableSpec(
    TEXT,
    "text_stats",
    "Word and character counts, special-character and repetition ratios of each document.",
    _text_stats_columns(),
    reads=("normalized",),
    provenance=True,
)
TEXT_MINHASH = TableSpec(
    TEXT,
    "text_minhash",
    "MinHash signature of each document, for near-duplicate search.",
    (Column("minhash", pl.Array, "datasketch affine32 values (MINHASH parameters)"),),
    reads=("normalized",),
    provenance=True,
)
TEXT_EMBEDDING = TableSpec(
    TEXT,
    "text_embedding",
    "Sentence embedding of each document (all-MiniLM-L6-v2 by default; long texts are truncated by the model).",
    (Column("text_embedding", pl.Array, "L2-normalised, float16"),),
    reads=("normalized",),
    recipe_sections=("models.text_embedding",),
    resources=frozenset({"text_embedding"}),
    gpu=True,
    provenance=True,
)

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
SCORE_ANALYSIS = TableSpec(
    CAPTION,
    "score_analysis",
    "Per-score quantiles (5/25/50/75/95%), counts and histograms over every caption shard.",
    (Column("score", pl.String), Column("count", pl.Int64), Column("nulls", pl.Int64)),
    scope=Scope.whole,
    file_name="summary.parquet",
    reads=tuple(spec.name for spec in CAPTION_SCORE_TABLES if spec.analysed_columns),
    group="analysis",
    key_columns=("score",),
)
TEXT_SCORE_TABLES = (TEXT_STATS, TEXT_MINHASH, TEXT_EMBEDDING)
SCORE_TABLES = CAPTION_SCORE_TABLES + TEXT_SCORE_TABLES

TABLES: tuple[TableSpec, ...] = (
    *NORMALIZED.values(),
    *QUARANTINE.values(),
    *SCORE_TABLES,
    RECAPTIONED,
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


def _filter_reads(recipe: Recipe) -> tuple[str, ...]:
    from curation_assets.selection.filters import rules_of

    dedup = ("dedup",) if recipe.dedup.enabled else ()
    return _columns_tables(rule.column for rule in rules_of(recipe.filters)) + dedup


def _percentile_reads(recipe: Recipe) -> tuple[str, ...]:
    from curation_assets.selection.filters import is_percentile, rules_of

    rules = rules_of(recipe.filters)
    return _columns_tables(rule.column for rule in rules if is_percentile(rule.lower) or is_percentile(rule.upper))


def _dedup_reads(recipe: Recipe) -> tuple[str, ...]:
    spec = recipe.dedup
    return (
        *(("image_phash",) if spec.image_deduplicator else ()),
        *(("caption_minhash",) if spec.document_minhash_deduplicator else ()),
        *(("clip_embeddings",) if spec.semantic_deduplicator else ()),
    )


def _selector_reads(recipe: Recipe) -> tuple[str, ...]:
    spec = recipe.selectors
    topk = _columns_tables([spec.topk_specified_field_selector.field_key]) if spec.topk_specified_field_selector else ()
    return (*topk, *(("clip_embeddings",) if spec.coreset_selector else ()))


def _recaption_reads(recipe: Recipe) -> tuple[str, ...]:
    from curation_assets.selection.filters import rules_of

    spec = recipe.recaption
    columns = {spec.band.field_key, "clip_similarity", *(rule.column for rule in rules_of(spec.image_conditions))}
    dedup = ("dedup",) if recipe.dedup.enabled and spec.skip_duplicates else ()
    return _columns_tables(columns) + dedup


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
