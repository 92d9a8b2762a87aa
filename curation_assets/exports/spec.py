"""The recipe's `exports` section: which trainer formats to write, and how big their shards are."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Toggle(_Section):
    enabled: bool = Field(default=True, description="write this export")


class Sharded(_Section):
    enabled: bool = Field(default=True, description="write this export")
    samples_per_shard: int = Field(
        default=10_000, ge=1, le=10_000_000, description="mixed samples per output file (the last one holds the rest)"
    )


class TextShards(Sharded):
    format: Literal["jsonl", "parquet"] = Field(
        default="jsonl", description="jsonl (what most LLM data loaders and Data-Juicer read) or parquet"
    )


class Exports(_Section):
    """Exports of the mix for trainers. Image bytes are copied once per source shard into `images/`;
    the LLaVA json, Data-Juicer jsonl and interleaved parquet name those files, the tars hold copies."""

    shuffle_seed: int = Field(
        default=0, ge=0, lt=2**63, description="seed of the order of samples across output shards"
    )
    llava: Toggle = Field(
        default_factory=Toggle, description="LLaVA / Mini-Gemini stage-1 json of the caption samples + image folder"
    )
    webdataset: Sharded = Field(
        default_factory=Sharded, description="caption samples as WebDataset tars in img2dataset layout"
    )
    interleaved: Sharded = Field(
        default_factory=lambda: Sharded(samples_per_shard=1_000),
        description="interleaved documents as OBELICS-style parquet (aligned texts / image paths)",
    )
    text: TextShards = Field(default_factory=TextShards, description="text-only documents as jsonl or parquet shards")
    data_juicer: Toggle = Field(
        default_factory=Toggle, description="Data-Juicer jsonl per kind (<__dj__image> / <|__dj__eoc|> tokens)"
    )
