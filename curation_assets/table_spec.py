"""What a table is: its name, where it lives, its columns, what it reads and what makes it stale.

Every table the pipeline writes is one `TableSpec`, declared once in `registry.py`. The Dagster layer
builds its asset from the spec, the table store derives its path, the checks and the analysis take
its columns, and its code version comes from `registry.code_version`: the one rule for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

import polars as pl

from curation_assets.sources import SourceKind

if TYPE_CHECKING:
    from curation_assets.recipe import Recipe


class Product(str, Enum):
    """What is made of every kind at once, under its own key prefix: `mix/mix`, `mix/exports`,
    `eval/eval_results`."""

    mix = "mix"
    eval = "eval"


class Scope(str, Enum):
    shard = "shard"  # one file per shard: <root>/<kind>/<name>/<shard id>.parquet, a Dagster partition each
    whole = "whole"  # one file over every shard: <root>/<kind>/<name>/<file name>
    # One file per shard, all written by one global asset (a curated pool decided over every shard):
    # <root>/<kind>/<name>/<shard id>.parquet, no partitions.
    shard_files = "shard_files"


@dataclass(frozen=True)
class Column:
    name: str
    # A polars dtype; for vectors the class (pl.Array, pl.List) matches any width or inner type.
    dtype: pl.DataType | type[pl.DataType]
    description: str = ""
    analysed: bool = False  # a score worth a distribution in the analysis (and a filter bound)
    nullable: bool = False  # may be null (coverage checks then only ask that the row is there)

    def accepts(self, dtype: pl.DataType) -> bool:
        if isinstance(self.dtype, type):
            return dtype.base_type() == self.dtype
        return dtype == self.dtype


# Every per-shard score table also says what made it (model and weights), with which profile, and
# whether its scores mean anything (False for random smoke weights).
PROVENANCE = (
    Column("produced_by", pl.String, "the model and weights (or logic) that made the table"),
    Column("model_profile", pl.String, "the recipe's model profile: pretrained or smoke"),
    Column("scores_meaningful", pl.Boolean, "False when the model had random weights"),
)


@dataclass(frozen=True)
class TableSpec:
    kind: SourceKind | Product
    name: str  # the stage: asset key <kind>/<name>, folder <root>/<kind>/<name>/
    description: str  # one sentence; it becomes the asset's description in the UI
    columns: tuple[Column, ...]  # the table's own columns, besides sample_id (per-shard tables)
    scope: Scope = Scope.shard
    reads: tuple[str, ...] = ()  # tables of the same kind whose data it reads
    # Tables it reads only under some recipes (the score tables a filter names, say).
    recipe_reads: Callable[[Recipe], Sequence[str]] | None = None
    recipe_sections: tuple[str, ...] = ()  # dotted recipe paths whose values change its output
    # Dotted recipe paths naming files (relative to the recipe) whose *contents* change its output.
    recipe_files: tuple[str, ...] = ()
    logic_version: str = "1"  # bump when the code changes what the table holds
    resources: frozenset[str] = frozenset()  # model resources its computation uses
    gpu: bool = False  # runs a model: holds the gpu pool and asks Kubernetes for a GPU
    group: str = "scores"  # the UI group, after the kind: caption_scores
    file_name: str | None = None  # whole-scope tables: the file in the table's folder
    provenance: bool = False  # carries the PROVENANCE columns
    # Its data version is a hash of its content, so a re-run that changes nothing stops the ripple
    # there; tables reading it then need none of its recipe sections in their code version.
    content_versioned: bool = False
    key_columns: tuple[str, ...] = ("sample_id",)
    # Written alongside another table's asset (its companion), not by an asset of its own.
    written_by: str | None = None

    @property
    def per_shard_files(self) -> bool:
        return self.scope in (Scope.shard, Scope.shard_files)

    @property
    def id_column(self) -> str:
        """What one row stands for: sample_id (a pair, a document), image_id or sentence_id."""
        return self.key_columns[0] if self.key_columns else "sample_id"

    def __post_init__(self) -> None:
        if (self.scope is Scope.whole) != (self.file_name is not None):
            raise ValueError(f"{self.name}: a whole-scope table names its file; a per-shard one does not")

    @property
    def qualified_name(self) -> str:
        return f"{self.kind.value}/{self.name}"

    @property
    def all_columns(self) -> tuple[Column, ...]:
        return self.columns + (PROVENANCE if self.provenance else ())

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def analysed_columns(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns if column.analysed)

    def reads_under(self, recipe: Recipe) -> tuple[str, ...]:
        extra = tuple(self.recipe_reads(recipe)) if self.recipe_reads else ()
        return tuple(dict.fromkeys((*self.reads, *extra)))

    def check_frame(self, frame: pl.DataFrame) -> None:
        """Refuse to write a frame that does not hold the declared columns with their types."""
        problems = []
        for column in (*self.all_columns,):
            if column.name not in frame.columns:
                problems.append(f"missing column {column.name!r}")
            elif not column.accepts(frame.schema[column.name]):
                problems.append(f"column {column.name!r} is {frame.schema[column.name]}, declared {column.dtype}")
        for key in self.key_columns:
            if key not in frame.columns:
                problems.append(f"missing key column {key!r}")
        if problems:
            raise ValueError(f"table {self.qualified_name}: " + "; ".join(problems))


@dataclass(frozen=True)
class TableOutput:
    """What a per-shard computation returns: the frame and where it came from."""

    frame: pl.DataFrame  # sample_id + the table's columns, one row per upstream row
    produced_by: str  # the model (and weights) that made it, or the logic for model-free tables
    meaningful: bool = True  # False for random weights: recorded in the table and the UI
    notes: dict = field(default_factory=dict)  # small per-shard figures for the UI
    panels: dict[str, str] = field(default_factory=dict)  # per-shard markdown (pictures, tables) for the UI
