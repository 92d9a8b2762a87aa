"""Funnels: how many rows go in, how many each step removes, how many are left; overall and per shard.

The filter funnel follows caption/filtered's accounting: a dropped sample is credited to the first
rule it fails in recipe order, then to dedup. A duplicate that had already failed a rule is credited
to that rule, not to dedup; the funnel says how many, in words, so "dedup found 13, dropped 9" reads
as what it is and not as a discrepancy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from curation_assets.report.format import Markup, escape, share, table
from curation_assets.selection.decisions import DEDUP_RULE
from curation_assets.selection.filters import ResolvedRule

IN, KEPT = "in", "kept"


def step_names(rules_in_order: Sequence[ResolvedRule | str]) -> list[str]:
    """Rule names in recipe order, each once (one operator can bound two columns: image_shape_filter)."""
    names = [rule if isinstance(rule, str) else rule.op for rule in rules_in_order]
    return list(dict.fromkeys(name for name in names if name != DEDUP_RULE))


def funnel_steps(decisions: pl.DataFrame, rules_in_order: Sequence[ResolvedRule | str]) -> pl.DataFrame:
    """One row per step, in order: step, dropped, left. Steps are the rules, then dedup; a drop rule
    the recipe no longer names (decisions older than the recipe) comes after them, so the rows
    always add up: in - sum(dropped) = kept."""
    counts = dict(decisions.filter(~pl.col("kept")).group_by("drop_rule").len().iter_rows())
    steps = step_names(rules_in_order)
    steps += sorted(name for name in counts if name not in steps and name != DEDUP_RULE) + [DEDUP_RULE]
    left, rows = decisions.height, []
    for step in steps:
        dropped = int(counts.get(step, 0))
        left -= dropped
        rows.append((step, dropped, left))
    return pl.DataFrame(rows, schema={"step": pl.String, "dropped": pl.Int64, "left": pl.Int64}, orient="row")


def duplicates_caught_earlier(decisions: pl.DataFrame) -> dict[str, int]:
    """Rule -> how many samples that are duplicates of a kept sample were dropped by that rule first."""
    earlier = decisions.filter(pl.col("duplicate_of").is_not_null() & (pl.col("drop_rule") != DEDUP_RULE))
    return dict(sorted(earlier.group_by("drop_rule").len().iter_rows(), key=lambda item: (-item[1], item[0])))


def filter_funnel(decisions: pl.DataFrame, rules_in_order: Sequence[ResolvedRule | str]) -> tuple[str, pl.DataFrame]:
    """(markdown, per-shard frame). The markdown is the overall funnel, a table of step | dropped |
    left from `in` to `kept`, and a sentence on duplicates first caught by an earlier rule; short
    enough to show inline. The frame has one row per shard: shard_id, in, one column per step
    (dropped), kept, kept_fraction."""
    steps = funnel_steps(decisions, rules_in_order)
    total = decisions.height
    rows = [(IN, "", Markup(f"{total:,}"))]
    rows += [(step, Markup(_dropped(dropped, total)), Markup(f"{left:,}")) for step, dropped, left in steps.iter_rows()]
    kept = int(decisions["kept"].sum())
    rows.append((Markup(f"**{KEPT}**"), "", Markup(f"**{kept:,}** ({share(kept, total)})")))
    parts = [table(["step", "dropped", "left"], rows, "lrr")]
    parts.append(_duplicates_sentence(decisions))
    return "\n\n".join(part for part in parts if part), per_shard_funnel(decisions, steps["step"].to_list())


def per_shard_funnel(decisions: pl.DataFrame, steps: Sequence[str]) -> pl.DataFrame:
    dropped = [(~pl.col("kept") & (pl.col("drop_rule") == step)).sum().cast(pl.Int64).alias(step) for step in steps]
    return (
        decisions.group_by("shard_id")
        .agg(pl.len().cast(pl.Int64).alias(IN), *dropped, pl.col("kept").sum().cast(pl.Int64).alias(KEPT))
        .with_columns((pl.col(KEPT) / pl.col(IN)).round(4).alias("kept_fraction"))
        .sort("shard_id")
    )


def _dropped(count: int, total: int) -> str:
    return f"{count:,} ({share(count, total)})" if count else "0"


def _duplicates_sentence(decisions: pl.DataFrame) -> str:
    duplicates = int(decisions["duplicate_of"].is_not_null().sum())
    if not duplicates:
        return "No sample is a duplicate of a kept sample."
    as_duplicates = int((decisions["drop_rule"] == DEDUP_RULE).sum())
    earlier = duplicates_caught_earlier(decisions)
    sentence = (
        f"Dedup found **{duplicates:,}** duplicates of kept samples: {as_duplicates:,} are dropped as duplicates "
        f"(`{DEDUP_RULE}` above)"
    )
    if earlier:
        where = ", ".join(f"{count:,} by `{rule}`" for rule, count in earlier.items())
        sentence += (
            f"; the other {sum(earlier.values()):,} had already failed an earlier rule ({where}) and are counted there"
        )
    return sentence + "."


def quarantine_funnel(
    quarantine: pl.DataFrame, valid_rows: Mapping[str, int] | None = None
) -> tuple[str, pl.DataFrame]:
    """(markdown, per-shard frame) of quarantined rows by reason, most frequent first. `quarantine`:
    one row per quarantined row (shard_id, reason, detail), or counted already (shard_id, reason,
    rows, example: sample_index.quarantine_rows). With
    `valid_rows` (shard -> valid rows), the funnel starts from every row read (valid + quarantined)
    and ends with the valid rows, so shares are of all input; without it, shares are of the
    quarantined rows. The frame: shard_id, reason, rows, example (one row's detail)."""
    if "rows" not in quarantine.columns:
        quarantine = quarantine.group_by("shard_id", "reason").agg(
            pl.len().cast(pl.Int64).alias("rows"), pl.col("detail").sort().first().alias("example")
        )
    per_shard = quarantine.select("shard_id", "reason", "rows", "example").sort(
        ["shard_id", "rows", "reason"], descending=[False, True, False]
    )
    by_reason = (
        quarantine.group_by("reason")
        .agg(pl.col("rows").sum().alias("len"))
        .sort(["len", "reason"], descending=[True, False])
    )
    quarantined = int(quarantine["rows"].sum())
    valid = sum(valid_rows.values()) if valid_rows is not None else None
    total = quarantined + valid if valid is not None else quarantined
    rows = [(IN, Markup(f"{total:,} rows read"))] if valid is not None else []
    rows += [(reason, Markup(f"{count:,} ({share(count, total)})")) for reason, count in by_reason.iter_rows()]
    rows.append((Markup("**quarantined**"), Markup(f"**{quarantined:,}** ({share(quarantined, total)})")))
    if valid is not None:
        rows.append((Markup("**valid**"), Markup(f"**{valid:,}** ({share(valid, total)})")))
    shards = quarantine.filter(pl.col("rows") > 0)["shard_id"].n_unique() if quarantined else 0
    intro = f"{quarantined:,} rows quarantined in {shards:,} shard(s)" + ("" if quarantined else ": nothing set aside")
    return f"{escape(intro)}\n\n{table(['reason', 'rows'], rows, 'lr')}", per_shard
