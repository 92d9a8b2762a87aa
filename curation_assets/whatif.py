"""What-if: the kept counts an edited recipe's filters would give, from stored scores, before any run.

    python -m curation_assets.whatif --recipe edited.yaml [--data-root DIR] [--json] [--per-shard]
                                     [--recompute-dedup]

Reads caption/sample_index (every pair with every score) and caption/dedup (the duplicate groups),
resolves the edited recipe's `filters` exactly as caption/selection_thresholds does (percentiles over
the index) and decides every pair exactly as caption/filtered does (selection/decisions.py
decide_samples, same columns, same groups, same ranking), then prints the funnel: for each rule in
recipe order, the pairs it drops first and the pairs left, next to what caption/filtered holds now.
Nothing is written and Dagster is not involved; 1M stored pairs take seconds (benchmarks/whatif.py).

What it can answer: edits to `filters`, and to `dedup` with --recompute-dedup (groups found again
over the index, as caption/dedup would). Edits to models or recaptioning change the scores
themselves: those need a run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from curation_assets import registry
from curation_assets.recipe import Dedup, Recipe, RecipeError, load_recipe
from curation_assets.report.format import number, share
from curation_assets.report.funnel import IN, KEPT, funnel_steps, per_shard_funnel, step_names
from curation_assets.selection.decisions import CAPTION_RANK_BY, decide_samples, filter_columns
from curation_assets.selection.filters import ResolvedRule
from curation_assets.selection.thresholds import percentile_columns, resolve_thresholds, to_payload
from curation_assets.table_store import TableStore

DATA_ROOT_ENV = "CURATION_DATA_ROOT"  # the same variable the Dagster resource reads
DEDUP_INPUTS = ["image_sha256", "phash", "minhash"]


def decisions_for(
    steps: Sequence[Any], samples: pl.DataFrame, groups: pl.DataFrame | None
) -> tuple[list[ResolvedRule], pl.DataFrame]:
    """(resolved rules, decisions) for recipe `filters` over `samples` (sample_id, shard_id and
    filter_columns(steps)) and duplicate `groups` (None: dedup off): the thresholds caption/
    selection_thresholds would resolve and the decisions caption/filtered would make. Also what a
    report needs before caption/filtered has run (caption/dedup's panel marks the member kept)."""
    percentiles = sorted(percentile_columns(steps))
    rules = resolve_thresholds(steps, samples.select(percentiles) if percentiles else None)
    return rules, decide_samples(samples, rules, groups, rank_by=CAPTION_RANK_BY)


@dataclass
class WhatIf:
    recipe: str
    rules: list[ResolvedRule]
    decisions: pl.DataFrame
    steps: pl.DataFrame  # step, dropped, left (the edited recipe)
    current: pl.DataFrame | None  # the same for caption/filtered as stored, if it exists
    dedup: str  # how duplicate groups were obtained: stored, recomputed or off
    notes: list[str]
    seconds: float

    @property
    def rows(self) -> int:
        return self.decisions.height

    @property
    def kept(self) -> int:
        return int(self.decisions["kept"].sum())

    def to_json(self, per_shard: bool = False) -> dict[str, Any]:
        bounds = _bounds_by_step(self.rules)
        payload: dict[str, Any] = {
            "recipe": self.recipe,
            "rows": self.rows,
            "kept": self.kept,
            "kept_fraction": round(self.kept / self.rows, 6) if self.rows else 0.0,
            "dedup": self.dedup,
            "steps": [
                {"step": step, "bounds": bounds.get(step, ""), "dropped": dropped, "left": left}
                for step, dropped, left in self.steps.iter_rows()
            ],
            "thresholds": to_payload(self.rules),
            "current": None,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }
        if self.current is not None:
            payload["current"] = {
                "kept": int(self.current["left"][-1]) if self.current.height else 0,
                "steps": self.current.to_dicts(),
            }
        if per_shard:
            payload["per_shard"] = per_shard_funnel(self.decisions, self.steps["step"].to_list()).to_dicts()
        return payload


def what_if(store: TableStore, recipe: Recipe, recompute_dedup: bool = False) -> WhatIf:
    """Decide every stored pair under `recipe`'s filters (and dedup), from the stored tables."""
    started = time.perf_counter()
    notes = []
    dedup_on = recipe.dedup.enabled
    extra = DEDUP_INPUTS if recompute_dedup and dedup_on else []
    samples = read_columns(store, registry.SAMPLES, ["sample_id", "shard_id", *filter_columns(recipe.filters), *extra])
    if not dedup_on:
        groups, how = None, "off"
    elif recompute_dedup:
        groups, how = recomputed_groups(store, samples, recipe.dedup), "recomputed"
    else:
        groups, how = store.read(registry.DEDUP), "stored"
        recorded = recorded_recipe(store)
        if recorded is not None and recorded.dedup != recipe.dedup:
            notes.append(
                f"the stored duplicate groups were found under {recorded.source}, whose dedup section differs "
                "from this recipe's: pass --recompute-dedup to find them again under the edit"
            )
    rules, decisions = decisions_for(recipe.filters, samples, groups)
    steps = funnel_steps(decisions, rules)
    current = None
    if store.exists(registry.FILTERED):
        stored = read_columns(store, registry.FILTERED, ["shard_id", "kept", "drop_rule", "duplicate_of"])
        current = funnel_steps(stored, steps["step"].to_list())
        if stored.height != decisions.height:
            notes.append(
                f"caption/filtered holds {stored.height:,} pairs, the index {decisions.height:,}: it is behind the "
                "index (materialize it to compare like with like)"
            )
    return WhatIf(recipe.source, rules, decisions, steps, current, how, notes, time.perf_counter() - started)


def read_columns(store: TableStore, spec, columns: Sequence[str]) -> pl.DataFrame:
    """Only these columns of a whole-scope table. TableStore.read decodes every column first; the
    index also holds captions and 128-value MinHash signatures, which are most of its bytes and most
    of the reading time at 1M rows, and the what-if needs neither."""
    path = store.path(spec)
    if not path.exists():
        store.read(spec)  # raises the store's own "materialize ... first" message
    with path.open("rb") as handle:
        return pl.read_parquet(handle, columns=list(dict.fromkeys(columns)))


def recomputed_groups(store: TableStore, samples: pl.DataFrame, spec: Dedup) -> pl.DataFrame:
    """Duplicate groups found again over the index, as caption/dedup finds them (its inputs and call)."""
    from curation_assets.selection.dedup import find_duplicates

    frame = samples.select("sample_id", "shard_id", *DEDUP_INPUTS)
    if spec.semantic_deduplicator:
        shards = sorted(frame["shard_id"].unique().to_list())
        stored = store.read_shards(registry.CLIP_EMBEDDINGS, shards, ["sample_id", "image_embedding"])
        vectors = frame.select("sample_id").join(stored, on="sample_id", how="left")["image_embedding"]
        frame = frame.with_columns(pl.Series("image_embedding", vectors.to_numpy().astype(np.float32)))
    return find_duplicates(frame, spec)


def recorded_recipe(store: TableStore) -> Recipe | None:
    """The recipe caption/selection_thresholds last recorded, if its file still loads."""
    if not store.exists(registry.SELECTION_THRESHOLDS):
        return None
    source = store.read_json(registry.SELECTION_THRESHOLDS).get("recipe")
    try:
        return load_recipe(source) if source and Path(source).is_file() else None
    except RecipeError:
        return None


def format_table(result: WhatIf, per_shard: bool = False) -> str:
    """The funnel as aligned text: step, its bounds, dropped, left; and caption/filtered now."""
    bounds = _bounds_by_step(result.rules)
    now = dict(zip(result.current["step"], result.current.iter_rows())) if result.current is not None else {}
    header = ["step", "bounds", "dropped", "left"] + (["now dropped", "now left"] if result.current is not None else [])
    rows = [[IN, "", "", f"{result.rows:,}"] + (["", f"{_current_in(result):,}"] if now else [])]
    for step, dropped, left in result.steps.iter_rows():
        row = [step, bounds.get(step, ""), f"{dropped:,}", f"{left:,}"]
        if now:
            row += [f"{now[step][1]:,}", f"{now[step][2]:,}"] if step in now else ["", ""]
        rows.append(row)
    kept_now = [f"{int(result.current['left'][-1]):,}"] if now else []
    rows.append(
        [KEPT, "", "", f"{result.kept:,} ({share(result.kept, result.rows)})"] + ([""] + kept_now if now else [])
    )
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    numeric = {2, 3, 4, 5}
    lines = [
        "  ".join(
            str(cell).rjust(w) if i in numeric else str(cell).ljust(w) for i, (cell, w) in enumerate(zip(row, widths))
        )
        for row in [header, *rows]
    ]
    text = [
        f"what-if for {result.recipe}: {result.rows:,} stored pairs (caption/sample_index), "
        f"duplicate groups: {result.dedup}",
        "",
        *lines,
        "",
        f"computed in {result.seconds:.2f} s; 'now' is caption/filtered as stored",
    ]
    text += [f"note: {note}" for note in result.notes]
    if per_shard:
        frame = per_shard_funnel(result.decisions, result.steps["step"].to_list())
        with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=400, tbl_hide_column_data_types=True):
            text += ["", "per shard (dropped by each step):", str(frame)]
    return "\n".join(text).rstrip()


def _current_in(result: WhatIf) -> int:
    first = result.current.row(0) if result.current.height else None
    return first[1] + first[2] if first else 0


def _bounds_by_step(rules: Sequence[ResolvedRule]) -> dict[str, str]:
    """Rule name -> its resolved bounds in words ("width >= 32, height >= 32")."""
    found: dict[str, list[str]] = {}
    for rule in rules:
        parts = []
        if rule.allowed is not None:
            parts.append(f"{rule.column} in {{{', '.join(rule.allowed)}}}")
        if rule.lower is not None:
            parts.append(f"{rule.column} >= {number(rule.lower)}")
        if rule.upper is not None:
            parts.append(f"{rule.column} {'<=' if rule.upper_inclusive else '<'} {number(rule.upper)}")
        found.setdefault(rule.op, []).extend(parts)
    return {step: ", ".join(parts) for step, parts in found.items() if step in step_names(rules)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m curation_assets.whatif", description=__doc__.split("\n\n")[0].strip()
    )
    parser.add_argument("--recipe", required=True, help="the edited recipe (YAML)")
    parser.add_argument("--data-root", default=None, help=f"data root (default ${DATA_ROOT_ENV} or ./data)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--per-shard", action="store_true", help="add the funnel of every shard")
    parser.add_argument(
        "--recompute-dedup", action="store_true", help="find duplicate groups again under the recipe's dedup section"
    )
    args = parser.parse_args(argv)
    try:
        recipe = load_recipe(args.recipe)
    except RecipeError as error:
        print(error, file=sys.stderr)
        return 2
    store = TableStore(args.data_root or os.environ.get(DATA_ROOT_ENV, "data"))
    try:
        result = what_if(store, recipe, recompute_dedup=args.recompute_dedup)
    except FileNotFoundError as error:
        print(
            f"{error}\n(what-if reads stored scores: run `make demo` or materialize the pipeline first)",
            file=sys.stderr,
        )
        return 2
    except ValueError as error:  # e.g. a filter on a column the index does not hold
        print(f"cannot evaluate {args.recipe}: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result.to_json(args.per_shard), indent=2) if args.json else format_table(result, args.per_shard))
    return 0


if __name__ == "__main__":
    sys.exit(main())
