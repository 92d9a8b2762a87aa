"""Recipe sections of the interleaved and text-only branches: `interleaved:` and `text:` at the top of
the recipe, beside the caption branch's `filters` / `dedup` / `selectors`.

Written to sit in recipe.py (they use only its sections and FilterStep); until they move there they
live here, importing recipe.py, so recipe.py must not import this module.

Every filter list takes the caption branch's operators (Data-Juicer names, numbers or percentiles),
validated against the level it decides: an image rule may only read per-image scores, a document or
text rule only per-document ones, so a rule on a column the level does not have fails at load time
with its line, not at run time.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, TypeAdapter, field_validator

from curation_assets.recipe import (
    DocumentMinhashDeduplicator,
    DsirSelector,
    ImageDeduplicator,
    RecipeSection,
    SemanticDeduplicator,
)
from curation_assets.selection.filters import FilterStep, is_percentile, rules_of

_STEPS = TypeAdapter(list[FilterStep])

TEXT_STATS_COLUMNS = frozenset(
    {"num_words", "num_chars", "special_char_ratio", "word_repetition_ratio", "char_repetition_ratio", "alnum_ratio"}
)
TEXT_QUALITY_COLUMNS = frozenset({"language", "language_score", "stopwords_ratio", "perplexity"})
# Per image of an interleaved document (image_stats, image_matches, nsfw tables).
IMAGE_COLUMNS = frozenset(
    {"width", "height", "aspect_ratio", "num_bytes", "clip_similarity", "nsfw_probability", "watermark_probability"}
)
# Known only once the image rules have run, so no percentile of them exists when thresholds resolve.
DECIDED_COLUMNS = frozenset({"num_images_kept", "image_drop_ratio"})
DOCUMENT_COLUMNS = TEXT_STATS_COLUMNS | TEXT_QUALITY_COLUMNS | DECIDED_COLUMNS | {"num_images", "num_sentences"}
TEXT_COLUMNS = TEXT_STATS_COLUMNS | TEXT_QUALITY_COLUMNS


def steps(*entries: dict) -> list:
    """Filter steps from plain recipe entries, e.g. steps({"words_num_filter": {"min_num": 10}})."""
    return _STEPS.validate_python(list(entries))


def check_columns(steps_: Sequence, allowed: frozenset[str], level: str) -> Sequence:
    """Refuse rules on columns this level does not have, and percentiles of decided columns."""
    for rule in rules_of(steps_):
        if rule.column not in allowed:
            raise ValueError(
                f"{rule.op} reads {rule.column}, which {level} do not have; they have: {', '.join(sorted(allowed))}"
            )
        if rule.column in DECIDED_COLUMNS and (is_percentile(rule.lower) or is_percentile(rule.upper)):
            raise ValueError(f"{rule.op}: {rule.column} is known only while deciding; give a number, not a percentile")
    return steps_


def default_image_filters() -> list:
    # The caption branch's image bounds (default.yaml). MMC4 was stricter: both sides >= 150 px, aspect
    # ratio within [0.5, 2], and a best-sentence CLIP ViT-L/14 similarity >= 0.15 (which is used here).
    return steps(
        {"image_shape_filter": {"min_width": 64, "min_height": 64}},
        {"image_aspect_ratio_filter": {"min_ratio": 0.333, "max_ratio": 3.0}},
        {"image_text_similarity_filter": {"min_score": 0.15}},
        {"image_nsfw_filter": {"score_threshold": 0.5}},
    )


def default_document_filters() -> list:
    return steps(
        {"images_left_filter": {"min_num": 1}},
        {"image_drop_ratio_filter": {"max_ratio": 0.5}},
        {"words_num_filter": {"min_num": 10}},
        {"language_id_score_filter": {"lang": "en", "min_score": 0.8}},
        {"word_repetition_filter": {"max_ratio": 0.5}},
    )


def default_text_filters() -> list:
    """Data-Juicer's text filters, with bounds re-derived for this project's statistics (measured on
    ../shared/data/text-docs and the demo). They keep every English C4 / CommonCrawl / NIH / USPTO
    document, drop the Spanish StackExchange ones, and drop arXiv fragments (a section title, LaTeX
    with hardly a sentence) and each planted demo defect.

    - word_repetition_filter: this project counts 3-grams (Data-Juicer 10-grams, max 0.5). Real prose
      stays under 0.26, the demo's grammar-made articles reach 0.75, a repeated sentence is 1.0.
    - stopwords_filter: Data-Juicer's 0.3 would drop a real NIH abstract (0.285 with the long
      stop-words list); prose scores 0.29-0.66, keyword stuffing 0.0.
    """
    return steps(
        {"language_id_score_filter": {"lang": "en", "min_score": 0.8}},
        {"text_length_filter": {"min_len": 100}},
        {"words_num_filter": {"min_num": 20}},
        {"alphanumeric_filter": {"min_ratio": 0.6}},
        {"special_characters_filter": {"max_ratio": 0.25}},
        {"character_repetition_filter": {"max_ratio": 0.5}},
        {"word_repetition_filter": {"max_ratio": 0.8}},
        {"stopwords_filter": {"min_ratio": 0.2}},
    )


class InterleavedDedup(RecipeSection):
    """Dedup of interleaved documents across all shards. A duplicate image is dropped from its
    document like an image that failed a rule (rule `dedup`); a duplicate document is dropped whole."""

    image_deduplicator: ImageDeduplicator | None = Field(
        default_factory=ImageDeduplicator,
        description="identical bytes and pHash neighbours across documents; one copy survives",
    )
    against_caption_pool: bool = Field(
        default=True,
        description="also drop images that are in the caption pool (exact or pHash): the pair data has them already",
    )
    document_minhash_deduplicator: DocumentMinhashDeduplicator | None = Field(
        default_factory=DocumentMinhashDeduplicator, description="MinHash-LSH over each document's text"
    )


class Interleaved(RecipeSection):
    """Recipe `interleaved`: two levels of rules. Image rules drop an image from its document; then
    document rules (which may read how many images are left) drop whole documents. Each drop records
    its first failing rule and the value."""

    image_filters: list[FilterStep] = Field(
        default_factory=default_image_filters,
        description="in order, per image; `image_text_similarity_filter` reads the image's similarity to its "
        "best (or, with reassign_images, its assigned) sentence",
    )
    document_filters: list[FilterStep] = Field(
        default_factory=default_document_filters,
        description="in order, per document, after the image rules: images_left_filter, image_drop_ratio_filter "
        "and any text filter over the document's text",
    )
    reassign_images: bool = Field(
        default=False,
        description="MMC4's re-assignment: match images to sentences by a linear assignment of CLIP similarities "
        "(each sentence takes at most one image), judge each image by its assigned sentence, and move it right "
        "before that sentence in the curated document",
    )
    dedup: InterleavedDedup = Field(default_factory=InterleavedDedup, description="dedup across all shards")
    repeat: int = Field(default=1, ge=1, le=100, description="times the curated interleaved pool enters the mix")

    _images = field_validator("image_filters")(
        classmethod(lambda cls, value: check_columns(value, IMAGE_COLUMNS, "images of interleaved documents"))
    )
    _documents = field_validator("document_filters")(
        classmethod(lambda cls, value: check_columns(value, DOCUMENT_COLUMNS, "interleaved documents"))
    )


class DocumentDeduplicator(RecipeSection):
    """Data-Juicer's document_deduplicator: exact duplicates by the hash of the normalised text
    (NFKC, whitespace collapsed; Data-Juicer leaves those as they are)."""

    lowercase: bool = Field(default=True, description="compare texts lowercased")
    ignore_non_character: bool = Field(
        default=False, description="compare texts without whitespace, digits and punctuation"
    )


class TextDedup(RecipeSection):
    """Dedup of text-only documents across all shards; each group keeps its document with the highest
    language_score (ties: the smallest sample_id)."""

    document_deduplicator: DocumentDeduplicator | None = Field(
        default_factory=DocumentDeduplicator, description="exact, by normalised text hash"
    )
    document_minhash_deduplicator: DocumentMinhashDeduplicator | None = Field(
        default_factory=DocumentMinhashDeduplicator, description="MinHash-LSH over the stored text_minhash"
    )
    semantic_deduplicator: SemanticDeduplicator | None = Field(
        default=None, description="SemDeDup over the stored sentence embeddings (text_embedding)"
    )


class TextSelectors(RecipeSection):
    dsir_selector: DsirSelector | None = Field(
        default=None, description="resample kept documents toward a target text set (DSIR)"
    )


class Text(RecipeSection):
    """Recipe `text`: Data-Juicer's text filters over each document, dedup, optional DSIR."""

    filters: list[FilterStep] = Field(
        default_factory=default_text_filters, description="in order; the first failing rule is the drop reason"
    )
    dedup: TextDedup = Field(default_factory=TextDedup, description="dedup across all shards")
    selectors: TextSelectors = Field(default_factory=TextSelectors, description="global, over what the filters keep")
    repeat: int = Field(default=1, ge=1, le=100, description="times the curated text pool enters the mix")

    _columns = field_validator("filters")(
        classmethod(lambda cls, value: check_columns(value, TEXT_COLUMNS, "text documents"))
    )
