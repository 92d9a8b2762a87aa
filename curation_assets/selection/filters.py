"""Filter rules named and parameterised as Data-Juicer's operators, so recipes carry over.

A recipe's `filters` is an ordered list; each entry names one operator and its parameters, e.g.
`- image_text_similarity_filter: {min_score: 0.28}`. A bound is a number, or `"p10"`: the 10th
percentile of that score over all shards, resolved when thresholds are computed. Every sample is
kept or dropped, and a drop names the first failing rule and the value that failed it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Union

import polars as pl
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

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
    """One bound check on one score column: fail when below `lower` or above `upper`."""

    op: str
    column: str
    lower: Bound | None = None
    upper: Bound | None = None
    upper_inclusive: bool = True  # False: values equal to `upper` fail too (probability thresholds)


@dataclass(frozen=True)
class ResolvedRule:
    op: str
    column: str
    lower: float | None
    upper: float | None
    upper_inclusive: bool

    def failing(self, float_column: bool) -> pl.Expr:
        """True where the sample fails; a missing score fails too (it cannot be shown to pass)."""
        value = pl.col(self.column)
        fails = (value.is_null() | value.is_nan()) if float_column else value.is_null()
        if self.lower is not None:
            fails = fails | (value < self.lower)
        if self.upper is not None:
            fails = fails | ((value > self.upper) if self.upper_inclusive else (value >= self.upper))
        return fails


class FilterOp(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # The score column each bound reads, and that column's possible range (to reject impossible values).
    column: ClassVar[str]
    value_range: ClassVar[tuple[float, float]] = (float("-inf"), float("inf"))

    def rules(self, name: str) -> list[Rule]:
        raise NotImplementedError

    def _check_bounds(self, low: Bound | None, high: Bound | None) -> None:
        lo, hi = self.value_range
        for bound in (low, high):
            if isinstance(bound, int | float) and not lo <= bound <= hi:
                raise ValueError(f"{bound} is outside the possible range [{lo}, {hi}] of {self.column}")
        if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
            raise ValueError(f"the lower bound {low} is above the upper bound {high}: nothing could pass")


def _bound(value: Any) -> Any:
    if isinstance(value, str) and not PERCENTILE.match(value):
        raise ValueError(f"{value!r} is neither a number nor a percentile like 'p10' (0-100)")
    return value


def bounds_validator(*fields: str):
    """A validator accepting, for each named field, a number or a percentile string."""
    return field_validator(*fields, mode="before")(classmethod(lambda cls, value: _bound(value)))


class ScoreRange(FilterOp):
    min_score: Bound | None = None
    max_score: Bound | None = None
    _check = bounds_validator("min_score", "max_score")

    @model_validator(mode="after")
    def _possible(self):
        self._check_bounds(self.min_score, self.max_score)
        return self

    def rules(self, name: str) -> list[Rule]:
        return [Rule(name, self.column, self.min_score, self.max_score)]


class ImageTextSimilarityFilter(ScoreRange):
    """CLIP cosine similarity, as Data-Juicer's image_text_similarity_filter (0.28 / 0.32 are common)."""

    column = "clip_similarity"
    value_range = (-1.0, 1.0)


class ImageTextMatchingFilter(ScoreRange):
    column = "itm_probability"
    value_range = (0.0, 1.0)


class ImageAestheticsFilter(ScoreRange):
    column = "aesthetics"


class RatioRange(FilterOp):
    min_ratio: Bound | None = None
    max_ratio: Bound | None = None
    _check = bounds_validator("min_ratio", "max_ratio")

    @model_validator(mode="after")
    def _possible(self):
        self._check_bounds(self.min_ratio, self.max_ratio)
        return self

    def rules(self, name: str) -> list[Rule]:
        return [Rule(name, self.column, self.min_ratio, self.max_ratio)]


class ImageAspectRatioFilter(RatioRange):
    column = "aspect_ratio"
    value_range = (0.0, float("inf"))


class SpecialCharactersFilter(RatioRange):
    column = "special_char_ratio"
    value_range = (0.0, 1.0)


class WordRepetitionFilter(RatioRange):
    column = "word_repetition_ratio"
    value_range = (0.0, 1.0)


class CharacterRepetitionFilter(RatioRange):
    column = "char_repetition_ratio"
    value_range = (0.0, 1.0)


class AlphanumericFilter(RatioRange):
    column = "alnum_ratio"
    value_range = (0.0, 1.0)


class WordsNumFilter(FilterOp):
    column = "num_words"
    value_range = (0, float("inf"))
    min_num: Bound | None = None
    max_num: Bound | None = None
    _check = bounds_validator("min_num", "max_num")

    @model_validator(mode="after")
    def _possible(self):
        self._check_bounds(self.min_num, self.max_num)
        return self

    def rules(self, name: str) -> list[Rule]:
        return [Rule(name, self.column, self.min_num, self.max_num)]


class TextLengthFilter(FilterOp):
    column = "num_chars"
    value_range = (0, float("inf"))
    min_len: Bound | None = None
    max_len: Bound | None = None
    _check = bounds_validator("min_len", "max_len")

    @model_validator(mode="after")
    def _possible(self):
        self._check_bounds(self.min_len, self.max_len)
        return self

    def rules(self, name: str) -> list[Rule]:
        return [Rule(name, self.column, self.min_len, self.max_len)]


class ImageShapeFilter(FilterOp):
    column = "width"
    value_range = (0, float("inf"))
    min_width: Bound | None = None
    max_width: Bound | None = None
    min_height: Bound | None = None
    max_height: Bound | None = None
    _check = bounds_validator("min_width", "max_width", "min_height", "max_height")

    @model_validator(mode="after")
    def _possible(self):
        self._check_bounds(self.min_width, self.max_width)
        self._check_bounds(self.min_height, self.max_height)
        return self

    def rules(self, name: str) -> list[Rule]:
        return [
            Rule(name, "width", self.min_width, self.max_width),
            Rule(name, "height", self.min_height, self.max_height),
        ]


class ImageSizeFilter(FilterOp):
    """File size of the encoded image; sizes as Data-Juicer writes them ("6kb", "1MB") or bytes."""

    column = "num_bytes"
    value_range = (0, float("inf"))
    min_size: float | str | None = None
    max_size: float | str | None = None

    @field_validator("min_size", "max_size", mode="before")
    @classmethod
    def _size(cls, value):
        if value is None or is_percentile(value):
            return value
        return parse_size(value)

    @model_validator(mode="after")
    def _possible(self):
        self._check_bounds(self.min_size, self.max_size)
        return self

    def rules(self, name: str) -> list[Rule]:
        return [Rule(name, self.column, self.min_size, self.max_size)]


class ImageWatermarkFilter(FilterOp):
    """Drops images whose watermark probability is at or above `prob_threshold` (Data-Juicer semantics)."""

    column = "watermark_probability"
    prob_threshold: float = Field(default=0.8, ge=0.0, le=1.0)

    def rules(self, name: str) -> list[Rule]:
        return [Rule(name, self.column, None, self.prob_threshold, upper_inclusive=False)]


class ImageNsfwFilter(FilterOp):
    """Drops images whose NSFW probability is at or above `score_threshold` (Data-Juicer semantics)."""

    column = "nsfw_probability"
    score_threshold: float = Field(default=0.5, ge=0.0, le=1.0)

    def rules(self, name: str) -> list[Rule]:
        return [Rule(name, self.column, None, self.score_threshold, upper_inclusive=False)]


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
}

# The score table each column lives in (per shard), so the filter knows what to read.
COLUMN_TABLES = {
    "clip_similarity": "clip_similarity",
    "itm_probability": "itm",
    "aesthetics": "aesthetics",
    "watermark_probability": "watermark",
    "nsfw_probability": "nsfw",
    **{c: "image_stats" for c in ("width", "height", "aspect_ratio", "num_bytes")},
    **{c: "text_stats" for c in ("num_words", "num_chars", "special_char_ratio", "word_repetition_ratio",
                                  "char_repetition_ratio", "alnum_ratio")},
}  # fmt: skip


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
        ResolvedRule(rule.op, rule.column, value(rule, rule.lower), value(rule, rule.upper), rule.upper_inclusive)
        for rule in rules
        if rule.lower is not None or rule.upper is not None
    ]


def decide(
    scores: pl.DataFrame, rules: Sequence[ResolvedRule], duplicate_of: pl.DataFrame | None = None
) -> pl.DataFrame:
    """One row per sample: kept, and for drops the first failing rule and the value that failed it.

    `scores` has `sample_id` and every column a rule reads; `duplicate_of` (sample_id, duplicate_of,
    method) marks dedup losers, which fail as the last rule ("dedup") after every threshold.
    """
    frame = scores
    checks: list[tuple[str, pl.Expr, pl.Expr]] = []
    for rule in rules:
        fail = rule.failing(frame.schema[rule.column].is_float())
        checks.append((rule.op, fail, pl.format("{}={}", pl.lit(rule.column), pl.col(rule.column).cast(pl.String))))
    if duplicate_of is not None:
        frame = frame.join(duplicate_of.select("sample_id", "duplicate_of", "method"), on="sample_id", how="left")
        checks.append(
            (
                "dedup",
                pl.col("duplicate_of").is_not_null(),
                pl.format("{} duplicate of {}", pl.col("method"), pl.col("duplicate_of")),
            )
        )
    if not checks:
        return frame.select(
            "sample_id",
            pl.lit(True).alias("kept"),
            pl.lit(None, pl.String).alias("drop_rule"),
            pl.lit(None, pl.String).alias("drop_value"),
        )
    drop_rule = pl.coalesce([pl.when(fail).then(pl.lit(name)) for name, fail, _ in checks])
    drop_value = pl.coalesce([pl.when(fail).then(value.fill_null("missing")) for _, fail, value in checks])
    return frame.select(
        "sample_id", drop_rule.is_null().alias("kept"), drop_rule.alias("drop_rule"), drop_value.alias("drop_value")
    )
