"""Pictures of the data near each bound: the samples just below and just above it, with captions.

What a threshold means is easiest judged by looking at what sits on either side of it: if the
samples just dropped look as good as those just kept, the bound is too tight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import polars as pl

from curation_assets.report.format import number, png_image
from curation_assets.report.histogram import Bound
from curation_assets.report.panels import bound_fails, rule_bounds
from curation_assets.report.thumbnails import DROPPED, KEPT, Card, CardRow, render_rows
from curation_assets.selection.filters import ResolvedRule

ImageBytes = Callable[[Sequence[str]], Mapping[str, bytes]]


def nearest(samples: pl.DataFrame, column: str, bound: Bound, per_side: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(dropped side, kept side): the `per_side` present values nearest the bound on each side, both
    in ascending order of value (ties: sample_id), so a row reads left to right along the axis."""
    present = samples.filter(pl.col(column).is_not_null() & ~pl.col(column).cast(pl.Float64).is_nan())
    fails = bound_fails(bound, column)
    dropped, kept = present.filter(fails), present.filter(~fails)
    # Nearest to the bound: the highest values below a lower bound, the lowest above it (and the
    # other way round for an upper bound).
    below, above = (dropped, kept) if bound.side == "lower" else (kept, dropped)
    below = below.sort([column, "sample_id"], descending=[True, False]).head(per_side).reverse()
    above = above.sort([column, "sample_id"]).head(per_side)
    return (below, above) if bound.side == "lower" else (above, below)


def bound_examples(
    samples: pl.DataFrame, rules: Sequence[ResolvedRule], image_bytes: ImageBytes, per_side: int = 3
) -> str:
    """Markdown: one composed PNG with a row per bound, the `per_side` samples just on its dropped
    side (red frames) and just on its kept side (green), a dashed line between them, each card with
    its thumbnail, value and caption. `samples`: sample_id, caption and the rules' columns;
    `image_bytes(sample_ids)` returns the images it can find (the others show as placeholders)."""
    plans = []
    for rule in rules:
        for bound in rule_bounds(rule):
            dropped, kept = nearest(samples, rule.column, bound, per_side)
            plans.append((rule, bound, dropped, kept))
    if not plans:
        return "_The recipe has no numeric bounds: nothing to show._"
    wanted = list(dict.fromkeys(_ids(frame for _, _, dropped, kept in plans for frame in (dropped, kept))))
    images = image_bytes(wanted) if wanted else {}
    rows = []
    for rule, bound, dropped, kept in plans:
        sides = "dropped | kept" if bound.side == "lower" else "kept | dropped"
        row = CardRow(f"{rule.column} {bound.ascii_label} ({rule.op}): {sides}")
        # On the axis, the dropped side of a lower bound is on the left; of an upper bound, on the right.
        left, right = (dropped, kept) if bound.side == "lower" else (kept, dropped)
        left_frame, right_frame = (DROPPED, KEPT) if bound.side == "lower" else (KEPT, DROPPED)
        row.cards += [_card(sample, rule.column, images, left_frame) for sample in left.iter_rows(named=True)]
        row.divider_after = len(row.cards)
        row.cards += [_card(sample, rule.column, images, right_frame) for sample in right.iter_rows(named=True)]
        rows.append(row)
    png = render_rows(rows, card_width=150, text_lines=5)
    count = sum(len(dropped) + len(kept) for _, _, dropped, kept in plans)
    return (
        f"{count} samples nearest the {len(plans)} bounds, "
        f"up to {per_side} per side (red: dropped by the bound, green: kept by it; values ascend left to right)\n\n"
        + png_image(png, "samples near each bound")
    )


def _ids(frames: Iterable[pl.DataFrame]) -> list[str]:
    return [sample_id for frame in frames for sample_id in frame["sample_id"].to_list()]


def _card(sample: dict, column: str, images: Mapping[str, bytes], frame) -> Card:
    return Card(
        images.get(sample["sample_id"]), [f"{column} {number(sample[column])}", str(sample.get("caption") or "")], frame
    )
