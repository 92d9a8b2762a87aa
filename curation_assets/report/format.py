"""Text pieces every report shares: numbers, shares, escaped markdown, tables and inline images.

Dagster's UI shows a markdown metadata entry inline on the asset page only while it is shorter than
INLINE_LIMIT characters (dagster-webserver 1.13, `MetadataEntry.tsx`); a longer one sits behind a
"[Show Markdown]" button that opens a dialog. Renderers that can stay under it say so.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence

import polars as pl

INLINE_LIMIT = 1000

# Characters that would end or restyle a markdown table cell, link text or emphasis.
_MARKDOWN_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_[]<>|#~"})


def number(value: float | int | None, digits: int = 4) -> str:
    """A short, fixed-format number: integers as integers, others to `digits` significant digits,
    never an axis offset or a float artefact (0.1 + 0.2 prints as 0.3)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
    text = f"{value:.{digits}g}"
    return text.replace("e-0", "e-").replace("e+0", "e+")


def distinct_numbers(values: Sequence[float]) -> list[str]:
    """number() of each value, with as many more significant digits as it takes for different
    values to read differently (a nearly constant score spans 0.503091 to 0.503094: "0.5031" twice
    would say nothing)."""
    wanted = len(set(values))
    for digits in range(4, 17):
        labels = [number(value, digits) for value in values]
        if len(set(labels)) >= wanted:
            return labels
    return labels


def share(count: int, total: int) -> str:
    """`count` as a percentage of `total`, "x %", never a bare 0.0 % for a count that is not zero."""
    if total <= 0:
        return "- %"
    percent = 100 * count / total
    if 0 < percent < 0.1:
        return "<0.1 %"
    return f"{percent:.1f} %"


def escape(text: object, limit: int | None = None) -> str:
    """Plain text made safe for a markdown paragraph or table cell: one line, specials escaped,
    cut to `limit` characters (with an ellipsis)."""
    flat = " ".join(str(text).split()) if text is not None else ""
    if limit is not None and len(flat) > limit:
        flat = flat[: max(limit - 1, 0)] + "…"
    return flat.translate(_MARKDOWN_SPECIAL)


def table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """A GitHub-flavoured markdown table; `align` holds one of l / r per column (default: left)."""
    align = align or "l" * len(header)
    rule = ["--:" if a == "r" else ":--" for a in align]
    lines = [_row(header), _row(rule, escaped=True)]
    lines += [_row(row) for row in rows]
    return "\n".join(lines)


def frame_table(frame: pl.DataFrame, rows: int | None = None) -> str:
    """A frame as a markdown table with its column names, numbers right-aligned and formatted."""
    shown = frame if rows is None else frame.head(rows)
    align = "".join("r" if dtype.is_numeric() else "l" for dtype in frame.dtypes)
    body = [
        [number(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in row]
        for row in shown.rows()
    ]
    text = table(frame.columns, body, align)
    if rows is not None and frame.height > rows:
        text += f"\n\n_first {rows} of {frame.height:,} rows_"
    return text


def _row(cells: Sequence[object], escaped: bool = False) -> str:
    values = [str(c) if escaped or _is_markup(c) else escape("" if c is None else c) for c in cells]
    return "| " + " | ".join(values) + " |"


class Markup(str):
    """Text that is already markdown (bold, a number with a unit): table cells keep it as it is."""


def _is_markup(cell: object) -> bool:
    return isinstance(cell, Markup)


def png_image(png: bytes, alt: str) -> str:
    """An inline PNG (data URI), which Dagster's markdown renders (its sanitizer allows `data:`)."""
    return f"![{escape(alt)}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def svg_image(svg: str, alt: str) -> str:
    """An inline SVG as a data URI, as short as it can be: in a `<...>` link destination spaces
    may stay raw, so only the characters that would end it or start a fragment are escaped, and "&"
    (markdown decodes entities in a link destination: the SVG's "&lt;" would reach it as "<")."""
    encoded = svg.replace("%", "%25").replace("#", "%23").replace("<", "%3C").replace(">", "%3E").replace("&", "%26")
    return f"![{escape(alt)}](<data:image/svg+xml,{encoded}>)"
