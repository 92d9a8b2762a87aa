"""The recipe's `mix` section: how much of each curated pool goes into the pretraining mix."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from curation_assets.sources import SourceKind

KINDS = tuple(kind.value for kind in SourceKind)
# MM1's best balance of captions, interleaved documents and text-only documents.
DEFAULT_RATIO = {"caption": 5.0, "interleaved": 5.0, "text": 1.0}
# The LLM of Mini-Gemini / LLaVA-1.5 stage 1 (Vicuna-7B v1.5). The smoke profile swaps in a tiny
# offline tokenizer built from code, as it does for every model.
DEFAULT_TOKENIZER = "lmsys/vicuna-7b-v1.5"
# A 336 px CLIP ViT-L/14 gives 24 x 24 patch tokens per image in LLaVA-1.5 and Mini-Gemini.
DEFAULT_IMAGE_TOKENS = 576


class Mix(BaseModel):
    """The pretraining mix: a ratio per kind counted in samples or tokens, a budget, how often one
    sample may repeat, how to sample inside a pool, and the seed of the stable draw."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ratio: dict[SourceKind, float] = Field(
        default_factory=lambda: {SourceKind(kind): value for kind, value in DEFAULT_RATIO.items()},
        description="relative share per kind, counted in `unit` (MM1: caption 5, interleaved 5, text 1); "
        "a kind left out or at 0 is not mixed",
    )
    unit: Literal["samples", "tokens"] = Field(
        default="samples",
        description="what the ratio and the budget count: samples, or tokens of `tokenizer` "
        "(text tokens plus `image_tokens` per image)",
    )
    tokenizer: str = Field(
        default=DEFAULT_TOKENIZER,
        description="tokenizer that counts tokens: hub id or local folder; the smoke profile uses a tiny "
        "offline tokenizer instead unless this is a local folder",
    )
    image_tokens: int = Field(
        default=DEFAULT_IMAGE_TOKENS, ge=0, le=65_536, description="tokens one image costs the trainer's LLM"
    )
    budget: int | None = Field(
        default=None,
        ge=1,
        description="total samples or tokens of the mix; null: the largest mix that repeats no kind more than "
        "its max_repeat",
    )
    max_repeat: dict[SourceKind, int] = Field(
        default_factory=dict,
        description="most times one sample of a kind may appear (kinds not named: 1). Repeating a small clean "
        "pool beat using it once for the Better Synth teams",
    )
    weight_by: dict[SourceKind, str] = Field(
        default_factory=dict,
        description="score column to sample a kind by (higher: drawn earlier), e.g. caption: clip_similarity; "
        "kinds not named are sampled uniformly",
    )
    when_short: Literal["keep_ratio", "keep_budget"] = Field(
        default="keep_ratio",
        description="when a pool cannot fill its share of the budget: keep_ratio shrinks the whole mix, "
        "keep_budget fills the gap from the other kinds (the ratio check then fails)",
    )
    tolerance: float = Field(
        default=0.02, gt=0.0, lt=1.0, description="largest gap between realized and target share the check accepts"
    )
    seed: int = Field(default=0, ge=0, lt=2**63, description="seed of the hash that orders each pool")

    @field_validator("ratio")
    @classmethod
    def _ratios_usable(cls, ratio: dict[SourceKind, float]) -> dict[SourceKind, float]:
        for kind, value in ratio.items():
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"ratio of {kind.value} is {value}: give a finite number >= 0")
        if not any(value > 0 for value in ratio.values()):
            raise ValueError("every ratio is 0: at least one kind must enter the mix")
        return ratio

    @field_validator("max_repeat")
    @classmethod
    def _repeats_usable(cls, max_repeat: dict[SourceKind, int]) -> dict[SourceKind, int]:
        for kind, value in max_repeat.items():
            if not 1 <= value <= 1000:
                raise ValueError(f"max_repeat of {kind.value} is {value}: give 1 (each sample once) to 1000")
        return max_repeat

    @field_validator("weight_by")
    @classmethod
    def _weights_named(cls, weight_by: dict[SourceKind, str]) -> dict[SourceKind, str]:
        for kind, column in weight_by.items():
            if not column.strip() or column in ("sample_id", "shard_id"):
                raise ValueError(f"weight_by of {kind.value} is {column!r}: name a score column")
        return weight_by

    @model_validator(mode="after")
    def _tokens_need_a_tokenizer(self):
        if self.unit == "tokens" and not self.tokenizer.strip():
            raise ValueError("unit is tokens but no tokenizer is named")
        return self

    def target_shares(self) -> dict[str, float]:
        """Each mixed kind's share of the mix (ratios normalised to sum to 1), in `unit`."""
        total = sum(self.ratio.values())
        return {kind.value: value / total for kind, value in self.ratio.items() if value > 0}

    def repeat_limit(self, kind: str) -> int:
        return self.max_repeat.get(SourceKind(kind), 1)

    def weight_column(self, kind: str) -> str | None:
        return self.weight_by.get(SourceKind(kind))
