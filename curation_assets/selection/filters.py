"""Filter rules named and parameterised as Data-Juicer's operators, so recipes carry over.

A recipe's `filters` is an ordered list; each entry names one operator and its parameters, e.g.
`- image_text_similarity_filter: {min_score: 0.28}`. A bound is a number, or `"p10"`: the 10th
percentile of that score over all shards, resolved when thresholds are computed. An operator may also
name allowed values of a categorical column (language_id_score_filter's `lang`). Every sample is kept
or dropped, and a drop names the first failing rule and the value that failed it.

Operators read score columns only; which model or statistic fills a column is the scoring tables'
business, so a threshold edit re-runs decisions and never a model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Union

import polars as pl
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationInfo, field_validator, model_validator

PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b)?\s*$", re.IGNORECASE)
SIZE_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}

Bound = float | str  # a number, or "pNN" for a percentile over all shards


def parse_size(value: float | str) -> float:
    """Data-Juicer style sizes: 1024, "6kb", "1MB", "2MiB"."""
    if isinstance(value, int | float):
        return float(value)
    match = SIZE.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a size (examples: 6kb, 1MB, 2MiB, 1024)")
    number, unit = match.groups()
    return float(number) * SIZE_UNITS[(unit or "b").lower()]


def is_percentile(bound: Bound | None) -> bool:
    return isinstance(bound, str) and PERCENTILE.match(bound) is not None


@dataclass(frozen=True)
class Rule:
    """One check on one score column: fail when below `lower`, above `upper`, or (for a categorical
    column) not one of `allowed`."""

    op: str
    column: str
    lower: Bound | None = None
    upper: Bound | None = None
    upper_inclusive: bool = True  # False: values equal to `upper` fail too (probability thresholds)
    allowed: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ResolvedRule:
    op: str
    column: str
    lower: float | None
    upper: float | None
    upper_inclusive: bool
    # Defaulted so thresholds stored before categorical rules existed still load.
    allowed: tuple[str, ...] | None = None

    def __post_init__(self):
        # Stored thresholds come back from JSON with a list; keep the rule hashable and comparable.
        if self.allowed is not None and not isinstance(self.allowed, tuple):
            object.__setattr__(self, "allowed", tuple(self.allowed))

    def failing(self, float_column: bool) -> pl.Expr:
        """True where the sample fails; a missing score fails too (it cannot be shown to pass)."""
        value = pl.col(self.column)
        fails = (value.is_null() | value.is_nan()) if float_column else value.is_null()
        if self.lower is not None:
            fails = fails | (value < self.lower)
        if self.upper is not None:
            fails = fails | ((value > self.upper) if self.upper_inclusive else (value >= self.upper))
        if self.allowed is not None:
            fails = fails | ~value.is_in(list(self.allowed))
        return fails


class FilterOp(BaseModel):
    """One recipe filter entry. Subclasses declare only their fields and which score column each
    pair of fields bounds; the base validates the bounds and turns them into rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # score column -> (lower-bound field, upper-bound field); either may be None.
    bounds: ClassVar[dict[str, tuple[str | None, str | None]]] = {}
    # categorical column -> the field holding its allowed values (one or a list; empty: any value).
    # Checked before the bounds, so a drop names the category when both fail.
    categories: ClassVar[dict[str, str]] = {}
    # The column's possible values: bounds outside them are refused at recipe load.
    value_range: ClassVar[tuple[float, float]] = (float("-inf"), float("inf"))
    # False: a value equal to the upper bound fails too (Data-Juicer's probability thresholds).
    upper_inclusive: ClassVar[bool] = True

    @field_validator("*", mode="before")
    @classmethod
    def _bounds_are_numbers_or_percentiles(cls, value: Any, info: ValidationInfo) -> Any:
        is_bound = any(info.field_name in pair for pair in cls.bounds.values())
        return cls.parse_bound(value) if is_bound else value

    @classmethod
    def parse_bound(cls, value: Any) -> Any:
        if isinstance(value, str) and not PERCENTILE.match(value):
            raise ValueError(f"{value!r} is neither a number nor a percentile like 'p10' (0-100)")
        return value

    @model_validator(mode="after")
    def _bounds_possible(self):
        lo, hi = self.value_range
        for column, (lower, upper) in self.bounds.items():
            low, high = (getattr(self, f) if f else None for f in (lower, upper))
            for bound in (low, high):
                if isinstance(bound, int | float) and not lo <= bound <= hi:
                    raise ValueError(f"{bound} is outside the possible range [{lo}, {hi}] of {column}")
            if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
                raise ValueError(f"the lower bound {low} is above the upper bound {high}: nothing could pass")
        return self

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        return (*cls.categories, *cls.bounds)

    def allowed_values(self, column: str) -> tuple[str, ...] | None:
        values = getattr(self, self.categories[column])
        values = (values,) if isinstance(values, str) else tuple(values or ())
        values = tuple(value for value in values if value)
        return values or None

    def rules(self, name: str) -> list[Rule]:
        categorical = [
            Rule(name, column, allowed=self.allowed_values(column))
            for column in self.categories
            if self.allowed_values(column) is not None
        ]
        return categorical + [
            Rule(
                name,
                column,
                getattr(self, lower) if lower else None,
                getattr(self, upper) if upper else None,
                self.upper_inclusive,
            )
            for column, (lower, upper) in self.bounds.items()
        ]


class ImageTextSimilarityFilter(FilterOp):
    """CLIP cosine similarity, as Data-Juicer's image_text_similarity_filter (0.28 / 0.32 are common)."""

    bounds = {"clip_similarity": ("min_score", "max_score")}
    value_range = (-1.0, 1.0)
    min_score: Bound | None = None
    max_score: Bound | None = None


class ImageTextMatchingFilter(FilterOp):
    bounds = {"itm_probability": ("min_score", "max_score")}
    value_range = (0.0, 1.0)
    min_score: Bound | None = None
    max_score: Bound | None = None


class ImageAestheticsFilter(FilterOp):
    bounds = {"aesthetics": ("min_score", "max_score")}
    min_score: Bound | None = None
    max_score: Bound | None = None


class ImageAspectRatioFilter(FilterOp):
    bounds = {"aspect_ratio": ("min_ratio", "max_ratio")}
    value_range = (0.0, float("inf"))
    min_ratio: Bound | None = None
    max_ratio: Bound | None = None


class SpecialCharactersFilter(FilterOp):
    bounds = {"special_char_ratio": ("min_ratio", "max_ratio")}
    value_range = (0.0, 1.0)
    min_ratio: Bound | None = None
    max_ratio: Bound | None = None


class WordRepetitionFilter(FilterOp):
    bounds = {"word_repetition_ratio": ("min_ratio", "max_ratio")}
    value_range = (0.0, 1.0)
    min_ratio: Bound | None = None
    max_ratio: Bound | None = None


class CharacterRepetitionFilter(FilterOp):
    bounds = {"char_repetition_ratio": ("min_ratio", "max_ratio")}
    value_range = (0.0, 1.0)
    min_ratio: Bound | None = None
    max_ratio: Bound | None = None


class AlphanumericFilter(FilterOp):
    bounds = {"alnum_ratio": ("min_ratio", "max_ratio")}
    value_range = (0.0, 1.0)
    min_ratio: Bound | None = None
    max_ratio: Bound | None = None


class WordsNumFilter(FilterOp):
    bounds = {"num_words": ("min_num", "max_num")}
    value_range = (0, float("inf"))
    min_num: Bound | None = None
    max_num: Bound | None = None


class TextLengthFilter(FilterOp):
    bounds = {"num_chars": ("min_len", "max_len")}
    value_range = (0, float("inf"))
    min_len: Bound | None = None
    max_len: Bound | None = None


class ImageShapeFilter(FilterOp):
    bounds = {"width": ("min_width", "max_width"), "height": ("min_height", "max_height")}
    value_range = (0, float("inf"))
    min_width: Bound | None = None
    max_width: Bound | None = None
    min_height: Bound | None = None
    max_height: Bound | None = None


class ImageSizeFilter(FilterOp):
    """File size of the encoded image; sizes as Data-Juicer writes them ("6kb", "1MB") or bytes."""

    bounds = {"num_bytes": ("min_size", "max_size")}
    value_range = (0, float("inf"))
    min_size: Bound | None = None
    max_size: Bound | None = None

    @classmethod
    def parse_bound(cls, value: Any) -> Any:
        return value if value is None or is_percentile(value) else parse_size(value)


class ImageWatermarkFilter(FilterOp):
    """Drops images whose watermark probability is at or above `prob_threshold` (Data-Juicer semantics)."""

    bounds = {"watermark_probability": (None, "prob_threshold")}
    upper_inclusive = False
    prob_threshold: float = Field(default=0.8, ge=0.0, le=1.0)


class ImageNsfwFilter(FilterOp):
    """Drops images whose NSFW probability is at or above `score_threshold` (Data-Juicer semantics)."""

    bounds = {"nsfw_probability": (None, "score_threshold")}
    upper_inclusive = False
    score_threshold: float = Field(default=0.5, ge=0.0, le=1.0)


# ISO 639-1 / 639-3 codes, as language identifiers report them ("en", "de", "yue").
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")


class LanguageIDScoreFilter(FilterOp):
    """Data-Juicer's language_id_score_filter: keep a text whose predicted language is one of `lang`
    (any language when `lang` is empty) and whose prediction confidence is at least `min_score`.

    Reads `language` and `language_score` (scoring/language_id.py: py3langid, a model inside its
    package). Data-Juicer predicts with fastText lid.176; both confidences are the top language's
    probability, but from different models: re-derive `min_score` from the analysis."""

    categories = {"language": "lang"}
    bounds = {"language_score": ("min_score", None)}
    value_range = (0.0, 1.0)
    lang: str | list[str] = Field(default="", description="language code(s) to keep, e.g. en or [en, de]; empty: any")
    min_score: Bound = Field(default=0.8, description="lowest confidence of the predicted language")

    @field_validator("lang")
    @classmethod
    def _language_codes(cls, value: str | list[str]) -> str | list[str]:
        for code in [value] if isinstance(value, str) else value:
            if code and not LANGUAGE_CODE.match(code):
                raise ValueError(f"{code!r} is not a lowercase ISO 639 language code such as 'en'")
        return value


class StopwordsFilter(FilterOp):
    """Data-Juicer's stopwords_filter: the share of a text's words that are stopwords of its language.

    Reads `stopwords_ratio` (scoring/text_quality.py). Data-Juicer takes the stopword list from its
    `lang` parameter; here the scorer uses the list of each text's predicted language, so the
    ratio is computed once and this operator has only the bounds."""

    bounds = {"stopwords_ratio": ("min_ratio", "max_ratio")}
    value_range = (0.0, 1.0)
    min_ratio: Bound | None = Field(default=0.3, description="lowest share of stopwords (Data-Juicer's default)")
    max_ratio: Bound | None = Field(default=None, description="highest share of stopwords")


class PerplexityFilter(FilterOp):
    """Data-Juicer's perplexity_filter: drop texts whose KenLM perplexity is above `max_ppl`.

    The language model is the user's (recipe `models.perplexity`), not a parameter here: a threshold
    edit then re-runs only decisions, never the model."""

    bounds = {"perplexity": (None, "max_ppl")}
    value_range = (0.0, float("inf"))
    max_ppl: Bound = Field(default=1500, description="highest perplexity kept (Data-Juicer's default)")


class ImagesLeftFilter(FilterOp):
    """Interleaved documents (ours, not a Data-Juicer operator): how many images a document still
    has after the image rules and image dedup removed theirs."""

    bounds = {"num_images_kept": ("min_num", "max_num")}
    value_range = (0, float("inf"))
    min_num: Bound | None = Field(default=1, description="fewest images left")
    max_num: Bound | None = Field(default=None, description="most images left")


class ImageDropRatioFilter(FilterOp):
    """Interleaved documents (ours): the share of a document's images that the image rules dropped.
    A document that lost most of its pictures no longer reads as its author laid it out."""

    bounds = {"image_drop_ratio": (None, "max_ratio")}
    value_range = (0.0, 1.0)
    max_ratio: Bound | None = Field(default=None, description="highest share of images dropped")


FILTER_OPS: dict[str, type[FilterOp]] = {
    "image_text_similarity_filter": ImageTextSimilarityFilter,
    "image_text_matching_filter": ImageTextMatchingFilter,
    "image_aesthetics_filter": ImageAestheticsFilter,
    "words_num_filter": WordsNumFilter,
    "text_length_filter": TextLengthFilter,
    "image_shape_filter": ImageShapeFilter,
    "image_aspect_ratio_filter": ImageAspectRatioFilter,
    "image_size_filter": ImageSizeFilter,
    "image_watermark_filter": ImageWatermarkFilter,
    "image_nsfw_filter": ImageNsfwFilter,
    "special_characters_filter": SpecialCharactersFilter,
    "word_repetition_filter": WordRepetitionFilter,
    "character_repetition_filter": CharacterRepetitionFilter,
    "alphanumeric_filter": AlphanumericFilter,
    "language_id_score_filter": LanguageIDScoreFilter,
    "stopwords_filter": StopwordsFilter,
    "perplexity_filter": PerplexityFilter,
    "images_left_filter": ImagesLeftFilter,
    "image_drop_ratio_filter": ImageDropRatioFilter,
}


def _step_name(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value))
    if isinstance(value, BaseModel):
        return next(iter(type(value).model_fields))
    return None


def _step_model(name: str, op: type[FilterOp]) -> type[BaseModel]:
    return type(
        f"{op.__name__}Step",
        (BaseModel,),
        {"__annotations__": {name: op}, "model_config": ConfigDict(extra="forbid", frozen=True)},
    )


def _filter_step_type():
    """A recipe filter entry: a one-key mapping, validated by the operator its key names."""
    members = tuple(Annotated[_step_model(name, op), Tag(name)] for name, op in FILTER_OPS.items())
    return Annotated[
        Union[members],  # noqa: UP007 - built at run time from FILTER_OPS
        Discriminator(
            _step_name,
            custom_error_type="unknown_filter",
            custom_error_message=f"each filter entry is one operator, one of: {', '.join(FILTER_OPS)}",
        ),
    ]


FilterStep = _filter_step_type()


def step_op(step: BaseModel) -> tuple[str, FilterOp]:
    name = next(iter(type(step).model_fields))
    return name, getattr(step, name)


def rules_of(steps: Sequence[BaseModel]) -> list[Rule]:
    return [rule for step in steps for rule in step_op(step)[1].rules(step_op(step)[0])]


def percentile_value(bound: str) -> float:
    return float(PERCENTILE.match(bound).group(1)) / 100


def resolve(rules: Sequence[Rule], quantile: Callable[[str, float], float]) -> list[ResolvedRule]:
    """Numbers for every bound: percentiles become the score's quantile over all shards."""

    def value(rule: Rule, bound: Bound | None) -> float | None:
        if bound is None:
            return None
        return quantile(rule.column, percentile_value(bound)) if is_percentile(bound) else float(bound)

    return [
        ResolvedRule(
            rule.op, rule.column, value(rule, rule.lower), value(rule, rule.upper), rule.upper_inclusive, rule.allowed
        )
        for rule in rules
        if rule.lower is not None or rule.upper is not None or rule.allowed is not None
    ]


def decide(
    scores: pl.DataFrame,
    rules: Sequence[ResolvedRule],
    duplicate_of: pl.DataFrame | None = None,
    id_column: str = "sample_id",
) -> pl.DataFrame:
    """One row per sample: kept, and for drops the first failing rule and the value that failed it.

    `scores` has `id_column` and every column a rule reads; `duplicate_of` (id_column, duplicate_of,
    method) marks dedup losers, which fail as the last rule ("dedup") after every threshold. The id
    is `sample_id` for captions and documents, `image_id` for the images inside documents.
    """
    frame = scores
    checks: list[tuple[str, pl.Expr, pl.Expr]] = []
    for rule in rules:
        fail = rule.failing(frame.schema[rule.column].is_float())
        checks.append((rule.op, fail, pl.format("{}={}", pl.lit(rule.column), pl.col(rule.column).cast(pl.String))))
    if duplicate_of is not None:
        frame = frame.join(duplicate_of.select(id_column, "duplicate_of", "method"), on=id_column, how="left")
        checks.append(
            (
                "dedup",
                pl.col("duplicate_of").is_not_null(),
                pl.format("{} duplicate of {}", pl.col("method"), pl.col("duplicate_of")),
            )
        )
    if not checks:
        return frame.select(
            id_column,
            pl.lit(True).alias("kept"),
            pl.lit(None, pl.String).alias("drop_rule"),
            pl.lit(None, pl.String).alias("drop_value"),
        )
    drop_rule = pl.coalesce([pl.when(fail).then(pl.lit(name)) for name, fail, _ in checks])
    drop_value = pl.coalesce([pl.when(fail).then(value.fill_null("missing")) for _, fail, value in checks])
    return frame.select(
        id_column, drop_rule.is_null().alias("kept"), drop_rule.alias("drop_rule"), drop_value.alias("drop_value")
    )
