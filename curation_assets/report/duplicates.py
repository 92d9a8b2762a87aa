"""Duplicate groups side by side, the member kept marked, with each member's fate and caption."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from curation_assets.report.examples import ImageBytes
from curation_assets.report.format import escape, number, png_image
from curation_assets.report.thumbnails import DROPPED, KEPT, NEUTRAL, Card, CardRow, render_rows
from curation_assets.selection.decisions import DEDUP_RULE

MEMBERS_SHOWN = 6


def duplicate_groups_panel(
    groups: pl.DataFrame,
    decisions: pl.DataFrame,
    samples: pl.DataFrame,
    image_bytes: ImageBytes,
    limit: int = 8,
    rank_by: str = "clip_similarity",
) -> str:
    """Markdown: counts per method, then one composed PNG with a row per group (largest first, up to
    `limit`): the member kept first, framed green and marked KEPT; the others framed red with the rule
    that dropped them ("dedup" when only as a duplicate). `groups`: sample_id, group_id, method;
    `decisions`: sample_id, kept, drop_rule (caption/filtered's, or the same decision computed ahead
    of it, see whatif.decisions_for); `samples`: sample_id, caption, `rank_by`."""
    if groups.is_empty():
        return "No duplicate groups: every sample is unique under the recipe's dedup settings."
    members = (
        groups.select("sample_id", "group_id", "method")
        .join(decisions.select("sample_id", "kept", "drop_rule"), on="sample_id", how="left")
        .join(samples.select("sample_id", "caption", rank_by), on="sample_id", how="left")
    )
    sizes = members.group_by("group_id").agg(pl.len().alias("members"), pl.col("kept").any().alias("has_keeper"))
    count, pairs = sizes.height, members.height
    shown = sizes.sort(["members", "group_id"], descending=[True, False]).head(limit)
    ordered = members.join(shown, on="group_id").sort(
        ["members", "group_id", "kept", rank_by, "sample_id"],
        descending=[True, False, True, True, False],
        nulls_last=True,
    )
    first_members = ordered.group_by("group_id", maintain_order=True).head(MEMBERS_SHOWN)
    images = image_bytes(first_members["sample_id"].to_list())
    rows = []
    for (group_id,), group in first_members.group_by("group_id", maintain_order=True):
        size = int(shown.filter(pl.col("group_id") == group_id)["members"][0])
        methods = sorted({m for value in group["method"].to_list() if value for m in value.split(",")})
        keeper = "one kept" if group["kept"].any() else "none passes every rule: each dropped by its own rule"
        more = f", first {MEMBERS_SHOWN} shown" if size > MEMBERS_SHOWN else ""
        title = f"group {group_id[:8]}: {size} members ({', '.join(methods)}), {keeper}{more}"
        rows.append(CardRow(title, [_card(member, rank_by, images) for member in group.iter_rows(named=True)]))
    png = render_rows(rows, card_width=150, text_lines=5)
    by_method = _by_method(groups)
    return (
        f"**{count:,}** duplicate groups holding **{pairs:,}** samples (linked by {escape(by_method)}); "
        f"the {len(rows)} largest below, the member kept framed green\n\n" + png_image(png, "duplicate groups")
    )


def _card(member: Mapping, rank_by: str, images: Mapping[str, bytes]) -> Card:
    if member["kept"]:
        headline, frame = "KEPT", KEPT
    elif member["drop_rule"] is None:
        headline, frame = "undecided", NEUTRAL
    elif member["drop_rule"] == DEDUP_RULE:
        headline, frame = "dropped: duplicate", DROPPED
    else:
        headline, frame = f"dropped: {member['drop_rule']}", DROPPED
    lines = [headline, f"{rank_by} {number(member[rank_by])}", str(member["caption"] or "")]
    return Card(images.get(member["sample_id"]), lines, frame)


def _by_method(groups: pl.DataFrame) -> str:
    methods = groups.select(pl.col("method").str.split(",")).explode("method").group_by("method").len()
    ordered = methods.sort(["len", "method"], descending=[True, False]).iter_rows()
    return ", ".join(f"{method} {count:,}" for method, count in ordered)
