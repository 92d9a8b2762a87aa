"""The mix: one row per sample drawn (sample id, kind, source shard, repeat index, tokens).

Each pool is put in draw order by its seeded keys (`keys.draw_order`); a kind's target is met by
whole passes over the pool (repeat 0, 1, ...) plus a prefix of the next pass. Every draw is a prefix
of one fixed order, so it is stable under new shards and nested across budgets.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from curation_assets.mix.budget import EPSILON, Plan, plan_mix
from curation_assets.mix.keys import draw_order, id_hashes
from curation_assets.mix.report import PoolFigures, build_report
from curation_assets.mix.spec import Mix

MIX_SCHEMA = pl.Schema(
    {"sample_id": pl.String, "kind": pl.String, "shard_id": pl.String, "repeat_index": pl.Int32, "tokens": pl.Int64}
)


@dataclass(frozen=True)
class MixResult:
    frame: pl.DataFrame  # MIX_SCHEMA, kinds in recipe order, each kind in draw order
    report: dict


@dataclass(frozen=True)
class RankedPool:
    frame: pl.DataFrame  # sample_id, shard_id, tokens: in draw order
    unscored: int  # rows without a usable weight (drawn last)


def rank_pool(
    kind: str, pool: pl.DataFrame, spec: Mix, tokens: pl.DataFrame | None = None, scores: pl.DataFrame | None = None
) -> RankedPool:
    """A kind's pool in draw order. Token counts come from a `tokens` column of the pool, else from
    the `tokens` frame (sample_id, tokens); weights from the score frame's `weight_by` column."""
    frame = pool.select("sample_id", "shard_id", *(["tokens"] if "tokens" in pool.columns else []))
    if "tokens" not in frame.columns:
        if tokens is not None:
            frame = frame.join(tokens.select("sample_id", "tokens"), on="sample_id", how="left")
        else:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Int64).alias("tokens"))
    frame = frame.with_columns(pl.col("tokens").cast(pl.Int64))
    missing = frame["tokens"].null_count()
    if spec.unit == "tokens" and missing:
        raise ValueError(f"unit is tokens but {missing} of {frame.height} {kind} samples have no token count")

    weights, unscored = None, 0
    column = spec.weight_column(kind)
    if column is not None:
        if scores is None or column not in scores.columns:
            raise ValueError(f"mix.weight_by asks for {column!r} for {kind}, but no score frame carries it")
        weight = scores.select("sample_id", pl.col(column).cast(pl.Float64).alias("_weight"))
        # Joined into the frame itself: the keys are computed from the same rows, whatever order the join leaves.
        frame = frame.join(weight.unique("sample_id", keep="first"), on="sample_id", how="left")
        weights = frame["_weight"].to_numpy()
        frame = frame.drop("_weight")
        unscored = int((~(np.isfinite(weights) & (weights > 0))).sum())
    hashes = id_hashes(frame["sample_id"])
    order = draw_order(hashes, spec.seed, weights)
    # A repeated id has the same key, so its copies sit side by side in draw order.
    duplicated = int((hashes[order][1:] == hashes[order][:-1]).sum())
    if duplicated:
        raise ValueError(f"the {kind} pool lists {duplicated} sample ids more than once")
    return RankedPool(frame[order], unscored)


def draw(ranked: pl.DataFrame, target: float, unit: str, max_repeat: int) -> pl.DataFrame:
    """Whole passes over the ranked pool, then the prefix of the next pass that comes closest to
    the target without a sample exceeding `max_repeat`."""
    size = ranked.height
    if size == 0 or target <= 0:
        return ranked.clear().with_columns(pl.lit(0, dtype=pl.Int32).alias("repeat_index"))
    if unit == "samples":
        passes, prefix = divmod(int(target), size)
    else:
        cumulative = ranked["tokens"].cum_sum().to_numpy()
        pool_tokens = float(cumulative[-1])
        passes = math.floor(target / pool_tokens + EPSILON) if pool_tokens > 0 else 0
        prefix = _closest_prefix(cumulative, target - passes * pool_tokens)
    if passes >= max_repeat:
        passes, prefix = max_repeat, 0
    parts = [ranked.with_columns(pl.lit(r, dtype=pl.Int32).alias("repeat_index")) for r in range(passes)]
    if prefix:
        parts.append(ranked.head(prefix).with_columns(pl.lit(passes, dtype=pl.Int32).alias("repeat_index")))
    return pl.concat(parts) if parts else ranked.clear().with_columns(pl.lit(0, dtype=pl.Int32).alias("repeat_index"))


def _closest_prefix(cumulative: np.ndarray, remainder: float) -> int:
    """How many leading rows make a token sum closest to `remainder` (ties: the shorter prefix)."""
    if remainder <= EPSILON:
        return 0
    below = int(np.searchsorted(cumulative, remainder + EPSILON, side="right"))
    if below < len(cumulative):
        under = remainder - (cumulative[below - 1] if below else 0.0)
        over = cumulative[below] - remainder
        if over < under:
            return below + 1
    return below


def mix_pools(
    pools: Mapping[str, pl.DataFrame],
    spec: Mix,
    tokens: Mapping[str, pl.DataFrame] | None = None,
    scores: pl.DataFrame | None = None,
) -> MixResult:
    """The mix of the curated pools (kind -> frame with sample_id, shard_id[, tokens]) by `spec`.

    `tokens`: kind -> (sample_id, tokens), needed when unit is tokens and used for the report's token
    figures otherwise. `scores`: sample_id plus the score columns `spec.weight_by` names.
    """
    shares = spec.target_shares()
    ranked: dict[str, RankedPool] = {}
    for kind in shares:
        pool = pools.get(kind)
        if pool is None:
            pool = pl.DataFrame(schema={"sample_id": pl.String, "shard_id": pl.String})
        ranked[kind] = rank_pool(kind, pool, spec, (tokens or {}).get(kind), scores)
    amounts = {kind: _pool_amount(ranked[kind].frame, spec.unit) for kind in ranked}
    repeats = {kind: spec.repeat_limit(kind) for kind in ranked}
    plan: Plan = plan_mix(amounts, repeats, shares, spec.budget, spec.when_short, spec.unit)
    parts = {
        kind: draw(pool.frame, plan.targets.get(kind, 0), spec.unit, repeats[kind])
        .with_columns(pl.lit(kind).alias("kind"))
        .select(MIX_SCHEMA.names())
        .cast(dict(MIX_SCHEMA))
        for kind, pool in ranked.items()
    }
    frame = pl.concat(list(parts.values())) if parts else pl.DataFrame(schema=MIX_SCHEMA)
    pool_figures = {
        kind: PoolFigures(pool.frame.height, _token_sum(pool.frame), pool.unscored) for kind, pool in ranked.items()
    }
    return MixResult(frame, build_report(parts, spec, plan, pool_figures))


def _pool_amount(ranked: pl.DataFrame, unit: str) -> float:
    return float(ranked.height) if unit == "samples" else float(_token_sum(ranked) or 0)


def _token_sum(frame: pl.DataFrame) -> int | None:
    """Tokens of the rows, or None when any row has no count (the report then shows none)."""
    if frame["tokens"].null_count():
        return None
    return int(frame["tokens"].sum())


def mix_version(frame: pl.DataFrame) -> str:
    """A version of the mix's content, independent of row order. Row hashes, not JSON: a 10M-row
    mix is versioned in a second. Polars' row hash may change between versions; a new version then
    only re-runs the exports once, which find their files unchanged."""
    hashes = np.sort(frame.select(sorted(frame.columns)).hash_rows(seed=0).to_numpy())
    return hashlib.sha256(hashes.tobytes()).hexdigest()[:24]
