"""Recaptions before and after: the image, the original caption and score, the new one, the verdict."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from curation_assets.report.examples import ImageBytes
from curation_assets.report.format import Markup, escape, number, png_image, share, table
from curation_assets.report.thumbnails import DROPPED, KEPT, Card, CardRow, render_rows


def recaption_counts(recaptioned: pl.DataFrame) -> tuple[str, dict[str, int]]:
    """(markdown table of entered / kept / not kept by reason, the same numbers by name)."""
    entered = recaptioned.height
    kept = int(recaptioned["kept"].sum()) if entered else 0
    reasons = (
        recaptioned.filter(~pl.col("kept"))
        .group_by("decision")
        .len()
        .sort(["len", "decision"], descending=[True, False])
    )
    rows = [
        ("entered the band", Markup(f"{entered:,}")),
        (Markup("**new caption kept**"), Markup(f"**{kept:,}** ({share(kept, entered)})")),
    ]
    rows += [
        (f"not kept: {reason}", Markup(f"{count:,} ({share(count, entered)})")) for reason, count in reasons.iter_rows()
    ]
    return table(["recaptions", "rows"], rows, "lr"), {"entered": entered, "kept": kept, "not_kept": entered - kept}


def recaption_panel(recaptioned: pl.DataFrame, image_bytes: ImageBytes, limit: int = 8) -> str:
    """Markdown: the counts (entered, kept, not kept by reason), then one composed PNG of up to
    `limit` recaptions, kept ones first (then the rest, both by the largest score gain): the image,
    the original caption with its CLIP score, the new caption with its score, and the decision.
    `recaptioned`: one shard's (or every shard's) caption/recaptioned rows."""
    counts, numbers = recaption_counts(recaptioned)
    if not numbers["entered"]:
        return counts + "\n\nNo pair entered the recaption band."
    kept, other = (
        part.with_columns((pl.col("score_after") - pl.col("score_before")).alias("gain")).sort(
            ["gain", "sample_id"], descending=[True, False], nulls_last=True
        )
        for part in (recaptioned.filter(pl.col("kept")), recaptioned.filter(~pl.col("kept")))
    )
    # At least half the places go to recaptions not kept, when there are any: the curator learns as
    # much from a rejected caption as from a kept one.
    take_other = min(other.height, max(limit - kept.height, limit // 2))
    chosen = pl.concat([kept.head(limit - take_other), other.head(take_other)])
    images = image_bytes(chosen["sample_id"].to_list())
    cards = [_card(row, images) for row in chosen.iter_rows(named=True)]
    per_row = 4
    rows = [
        CardRow("before -> after (CLIP similarity)" if i == 0 else "", cards[i : i + per_row])
        for i in range(0, len(cards), per_row)
    ]
    png = render_rows(rows, card_width=230, text_lines=9)
    shown = f"{len(cards)} of {numbers['entered']:,} shown, kept first, each by its score gain"
    return f"{counts}\n\n{escape(shown)}\n\n" + png_image(png, "recaptions before and after")


def _card(row: Mapping, images: Mapping[str, bytes]) -> Card:
    decision = str(row["decision"] or "")
    # Decisions of kept recaptions already start with "kept: ..."; say it once.
    verdict = decision if decision.lower().startswith("kept") or not row["kept"] else f"kept: {decision}"
    if not row["kept"] and not decision.lower().startswith("not kept"):
        verdict = f"not kept: {decision}"
    lines = [
        verdict,
        f"before {number(row['score_before'])}: {row['original_caption']}",
        f"after {number(row['score_after'])}: {row['new_caption']}",
    ]
    return Card(images.get(row["sample_id"]), lines, KEPT if row["kept"] else DROPPED)
