"""A compact SVG histogram with the recipe's bounds drawn on it, small enough to stay inline.

Why SVG and not a matplotlib PNG: a PNG data URI is tens of kilobytes, so Dagster shows it only
behind a "[Show Markdown]" button; this SVG is a few hundred characters, so a panel stays under the
inline limit (format.INLINE_LIMIT) and the curator sees every score on the asset page without a
click. Hence the terse markup: one path for all bars, one for all bound lines, one for the shading.
Numbers are formatted by format.number: no offset axes, no scientific ticks on constants.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape as xml_escape

import numpy as np

from curation_assets.report.format import distinct_numbers, number

WIDTH, HEIGHT = 320, 100
TOP, BASE = 14, 86  # bars between these y coordinates; bound labels above, range labels below
LEFT, PLOT = 10, 300  # x where the bars start, and their total width
CHAR_PX = 5.6  # about one character of 10 px sans-serif, to keep labels inside the picture


@dataclass(frozen=True)
class Bound:
    """One side of a rule drawn on the histogram: samples beyond `value` on `side` are dropped."""

    value: float
    side: str  # "lower": values below fail; "upper": values above (or at, when not inclusive) fail
    inclusive: bool = True  # upper bounds only: whether the bound value itself passes

    @property
    def label(self) -> str:
        if self.side == "lower":
            return f"≥{number(self.value)}"
        return f"{'≤' if self.inclusive else '<'}{number(self.value)}"

    @property
    def ascii_label(self) -> str:
        """The label for pictures drawn with Pillow's bundled font, which has no "≥" glyph."""
        return self.label.replace("≥", ">=").replace("≤", "<=")


def value_range(finite: np.ndarray, bounds: Sequence[Bound]) -> tuple[float, float]:
    """The x range: the data, widened to take in bounds near it (within one data span), and padded
    when every value is the same, so a constant score is one bar in the middle, not an offset axis."""
    if len(finite):
        low, high = float(finite.min()), float(finite.max())
    else:
        values = [b.value for b in bounds] or [0.0]
        low, high = min(values), max(values)
    reach = max(high - low, abs(low) * 0.5, abs(high) * 0.5, 1e-9)
    for bound in bounds:
        if low - reach <= bound.value <= high + reach:
            low, high = min(low, bound.value), max(high, bound.value)
    if high - low <= max(abs(high), abs(low), 1.0) * 1e-9:
        pad = max(abs(low) * 0.05, 0.5 if float(low).is_integer() else 1e-3)
        low, high = low - pad, high + pad
    return low, high


def histogram_svg(values: np.ndarray, bounds: Sequence[Bound] = (), bins: int = 30, shade: bool = True) -> str:
    """The SVG text: bars of the finite values, the dropped side of each bound shaded, a dashed line
    and a label ("≥0.28") per bound, the range's two ends under the axis. A bound outside the drawn
    range sits on the edge, its label saying "off scale"."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    low, high = value_range(finite, bounds)
    bar = PLOT // bins
    right = LEFT + bar * bins

    def x_of(value: float) -> float:
        return LEFT + (value - low) / (high - low) * (right - LEFT)

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' style='font:10px sans-serif'>"]
    placed = [_place(bound, x_of, right) for bound in bounds]
    if shade:
        regions = "".join(
            f"M{_c(x)} {TOP}H{LEFT if b.side == 'lower' else right}V{BASE}H{_c(x)}z"
            for b, x, off, _ in placed
            if not off and abs(x - (LEFT if b.side == "lower" else right)) >= 0.5
        )
        parts.append(f"<path d='{regions}' fill='red' fill-opacity='.12'/>" if regions else "")
    if len(finite):
        counts, _ = np.histogram(finite, bins=bins, range=(low, high))
        scale = (BASE - TOP) / max(int(counts.max()), 1)
        steps = _steps([BASE - round(int(c) * scale) for c in counts], bar)
        parts.append(f"<path d='M{LEFT} {BASE}{steps}V{BASE}z' fill='steelblue'/>")
    else:
        parts.append(f"<text x='{WIDTH // 2}' y='{(TOP + BASE) // 2}' text-anchor='middle'>no values</text>")
    if placed:
        lines = "".join(f"M{_c(x)} {TOP - 4}V{BASE}" for _, x, _, _ in placed)
        parts.append(f"<path d='{lines}' stroke='firebrick' stroke-dasharray='3'/>")
        labels = "".join(_label(b, x, off, lean) for b, x, off, lean in placed)
        parts.append(f"<text y='{TOP + 6}' fill='firebrick'>{labels}</text>")
    parts.append(f"<path d='M{LEFT} {BASE}H{right}' stroke='gray'/>")
    low_label, high_label = distinct_numbers([low, high])
    parts.append(
        f"<text y='{HEIGHT - 3}'><tspan x='{LEFT}'>{low_label}</tspan>"
        f"<tspan x='{right}' text-anchor='end'>{high_label}</tspan></text></svg>"
    )
    return "".join(parts)


def _place(bound: Bound, x_of: Callable[[float], float], right: int) -> tuple[Bound, float, bool, bool]:
    """(bound, x clamped to the plot, whether it is off scale, whether its label leans left)."""
    x = x_of(bound.value)
    off = not LEFT - 0.5 <= x <= right + 0.5
    x = round(min(max(x, LEFT), right), 1)
    # Each label leans to the dropped side of its line, so a lower and an upper bound never write
    # over each other; near an edge it turns inward to stay in the picture.
    width = (len(bound.label) + (10 if off else 0)) * CHAR_PX
    lean_left = bound.side == "lower"
    if lean_left and x - width < 0:
        lean_left = False
    elif not lean_left and x + width > WIDTH:
        lean_left = True
    return bound, x, off, lean_left


def _label(bound: Bound, x: float, off: bool, lean_left: bool) -> str:
    # Text content of an XML document: a raw "<" (the label of an exclusive upper bound, "<0.5")
    # makes the whole picture invalid, and the browser draws nothing.
    text = xml_escape(bound.label + (" off scale" if off else ""))
    if lean_left:
        return f"<tspan x='{_c(x - 2)}' text-anchor='end'>{text}</tspan>"
    return f"<tspan x='{_c(x + 2)}'>{text}</tspan>"


def _steps(heights: list[int], bar: int) -> str:
    """The bars' outline as path steps; neighbouring bars of one height become one step."""
    steps, run = [], 0
    for i, height in enumerate(heights):
        run += bar
        if i + 1 == len(heights) or heights[i + 1] != height:
            steps.append(f"V{height}h{run}")
            run = 0
    return "".join(steps)


def _c(value: float) -> str:
    """A coordinate, at most one decimal and no trailing ".0"."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text
