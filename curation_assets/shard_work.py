"""What a per-shard table's computation gets, and the binding of each table to its computation.

A computation is a plain function `ShardWork -> TableOutput`, registered with `@computes(SPEC)`.
It may read only the tables, recipe sections and models its spec declares: `ShardWork` refuses
anything else, so a table's code version and dependencies always cover what it used.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl

from curation_assets import registry
from curation_assets.readers import ShardFile
from curation_assets.recipe import RecipeView
from curation_assets.scores import read_score_columns
from curation_assets.table_spec import TableOutput, TableSpec
from curation_assets.table_store import TableStore

# Progress lines of a long computation, at most this often (each is a row in Dagster's event log).
PROGRESS_SECONDS = 10.0


class Models(Protocol):
    """Loaded models by name (the Dagster layer serves them from its model resources)."""

    def get(self, name: str) -> Any: ...

    def batch_settings(self, name: str) -> Any: ...


@dataclass
class ShardWork:
    table: TableSpec  # for a group computed together: the first; `together` holds them all
    shard_id: str
    shard: ShardFile
    store: TableStore
    recipe: RecipeView
    reads: tuple[str, ...]  # the table's reads under this recipe
    models: Models
    log: Callable[[str], None]
    together: tuple[TableSpec, ...] = ()
    _last_progress: float = field(default_factory=time.monotonic, repr=False)

    def read(self, name: str) -> pl.DataFrame:
        if name not in self.reads:
            raise PermissionError(
                f"{self.table.qualified_name} reads {name} without declaring it; add it to its reads in registry.py"
            )
        spec = registry.table(self.table.kind, name)
        return self.store.read(spec, self.shard_id if spec.per_shard_files else None)

    def score_columns(self, columns: Iterable[str]) -> pl.DataFrame:
        """This shard's named score columns (each from the table the registry says holds it)."""
        columns = set(columns)
        for column in columns:
            if registry.table_of_column(self.table.kind, column).name not in self.reads:
                raise PermissionError(f"{self.table.qualified_name} reads score {column} without declaring its table")
        return read_score_columns(self.store, self.table.kind, [self.shard_id], columns)

    @property
    def normalized(self) -> pl.DataFrame:
        return self.read(registry.NORMALIZED[self.table.kind].name)

    def model(self, name: str) -> Any:
        if not any(name in spec.resources for spec in (self.table, *self.together)):
            raise PermissionError(
                f"{self.table.qualified_name} uses model {name} without declaring it; add it to its resources"
            )
        return self.models.get(name)

    def batch_settings(self, name: str) -> Any:
        return self.models.batch_settings(name)

    def progress(self, done: int, total: int) -> None:
        """Rows done so far, at most every PROGRESS_SECONDS: each log line is an event in the instance."""
        now = time.monotonic()
        if done < total and now - self._last_progress < PROGRESS_SECONDS:
            return
        self._last_progress = now
        self.log(f"{self.shard_id}: {done}/{total} rows")


Compute = Callable[[ShardWork], TableOutput]
COMPUTES: dict[TableSpec, Compute] = {}
# Several tables from one computation: (work, the tables due) -> their outputs.
ComputeTogether = Callable[[ShardWork, tuple[TableSpec, ...]], dict[TableSpec, TableOutput]]
COMPUTES_TOGETHER: dict[tuple[TableSpec, ...], ComputeTogether] = {}


def computes(spec: TableSpec) -> Callable[[Compute], Compute]:
    """Register `function` as the computation of the per-shard table `spec`."""

    def register(function: Compute) -> Compute:
        if spec in COMPUTES:
            raise RuntimeError(f"{spec.qualified_name} has two computations: {COMPUTES[spec].__name__}, {function}")
        COMPUTES[spec] = function
        return function

    return register


def computes_together(group: tuple[TableSpec, ...]) -> Callable[[ComputeTogether], ComputeTogether]:
    """Register `function` as the computation of any subset of `group` (one of registry.COMPUTED_TOGETHER);
    each table of the group also gets a computation of its own: the group's with that table alone due."""

    def register(function: ComputeTogether) -> ComputeTogether:
        if group not in registry.COMPUTED_TOGETHER:
            raise RuntimeError(f"{function.__name__}: {[s.name for s in group]} is not in registry.COMPUTED_TOGETHER")
        COMPUTES_TOGETHER[group] = function
        for spec in group:
            computes(spec)(_alone(function, spec))
        return function

    return register


def _alone(function: ComputeTogether, spec: TableSpec) -> Compute:
    def compute(work: ShardWork) -> TableOutput:
        return function(work, (spec,))[spec]

    compute.__name__ = f"{function.__name__}[{spec.name}]"
    return compute


# The modules whose @computes functions bind the per-shard tables; importing one registers them.
COMPUTATION_MODULES = (
    "curation_assets.scoring.caption_tables",
    "curation_assets.scoring.text_tables",
    "curation_assets.scoring.interleaved_tables",
    "curation_assets.recaption.run",
    "curation_assets.evaluation.feature_table",
)


def _import_computations() -> None:
    for module in COMPUTATION_MODULES:
        importlib.import_module(module)


def computation_together(group: tuple[TableSpec, ...]) -> ComputeTogether:
    """The computation of a group of registry.COMPUTED_TOGETHER (or of any subset of one)."""
    _import_computations()
    for registered, function in COMPUTES_TOGETHER.items():
        if set(group) <= set(registered):
            return function
    names = [spec.qualified_name for spec in group]
    raise KeyError(f"{names} are not computed together; see registry.COMPUTED_TOGETHER")


def computation(spec: TableSpec) -> Compute:
    _import_computations()
    if spec not in COMPUTES:
        raise KeyError(f"{spec.qualified_name} has no computation; decorate one with @computes({spec.name.upper()})")
    return COMPUTES[spec]
