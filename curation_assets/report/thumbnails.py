"""Cards (a thumbnail with a few lines of text under it) composed into one PNG per panel.

One picture per panel, not one per sample: the UI decodes one image instead of dozens, and the
markdown stays one line. Text is drawn with Pillow's bundled font, so no system font is needed.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont, ImageOps

THUMB = 96
PAD = 8
FONT_SIZE = 11
LINE_PX = 14
KEPT, DROPPED, NEUTRAL = (46, 139, 87), (196, 78, 82), (200, 200, 200)
BACKGROUND, PLACEHOLDER, INK, MUTED = (255, 255, 255), (236, 236, 236), (30, 30, 30), (110, 110, 110)


@dataclass(frozen=True)
class Card:
    """One sample: its image bytes (None: no picture), lines under it, and a frame colour saying
    what happened to it (KEPT, DROPPED or NEUTRAL). The first line is the headline, drawn darker."""

    image: bytes | None
    lines: Sequence[str]
    frame: tuple[int, int, int] = NEUTRAL


@dataclass
class CardRow:
    """A titled row of cards; `divider_after` draws a red rule after that many cards (a bound)."""

    title: str
    cards: list[Card] = field(default_factory=list)
    divider_after: int | None = None


def _font(size: int = FONT_SIZE) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def thumbnail(data: bytes | None, size: int = THUMB) -> Image.Image:
    """The image fitted into a size x size square on a light background; a grey square saying why
    when there is no image or it cannot be decoded (never an exception: a report must render)."""
    square = Image.new("RGB", (size, size), PLACEHOLDER)
    if data:
        try:
            with Image.open(io.BytesIO(data)) as image:
                # draft() lets JPEG decode at a fraction of full size: thumbnails of large photos
                # cost little. Pixel counts were checked at ingest (decompression bombs).
                image.draft("RGB", (size * 2, size * 2))
                picture = ImageOps.exif_transpose(image).convert("RGB")
                picture.thumbnail((size, size))
                square.paste(picture, ((size - picture.width) // 2, (size - picture.height) // 2))
                return square
        except Exception:  # any undecodable input becomes a placeholder, never a failed report
            message = "unreadable"
    else:
        message = "no image"
    ImageDraw.Draw(square).text((size // 2, size // 2), message, fill=MUTED, font=_font(), anchor="mm")
    return square


def wrap(lines: Sequence[str], width_px: int, max_lines: int) -> list[tuple[str, int]]:
    """(text, which of `lines` it came from), wrapped to the card's width, at most `max_lines` in
    all, the last cut with an ellipsis when something did not fit."""
    chars = max(int(width_px / (FONT_SIZE * 0.55)), 8)
    wrapped: list[tuple[str, int]] = []
    for source, line in enumerate(lines):
        wrapped.extend((text, source) for text in textwrap.wrap(" ".join(str(line).split()), chars) or [""])
    if len(wrapped) > max_lines:
        wrapped = wrapped[:max_lines]
        text, source = wrapped[-1]
        wrapped[-1] = (text[: chars - 1].rstrip() + "…", source)
    return wrapped


def render_rows(rows: Sequence[CardRow], card_width: int = 150, text_lines: int = 5) -> bytes:
    """The rows stacked in one PNG: each a title line, then its cards left to right."""
    font, bold = _font(), _font(FONT_SIZE + 1)
    card_height = THUMB + 6 + text_lines * LINE_PX + PAD
    row_height = LINE_PX + 6 + card_height + PAD
    most = max((len(row.cards) + (1 if row.divider_after is not None else 0) for row in rows), default=1)
    width = PAD + max(most, 1) * (card_width + PAD)
    canvas = Image.new("RGB", (width, PAD + row_height * max(len(rows), 1)), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        top = PAD + r * row_height
        draw.text((PAD, top), row.title, fill=INK, font=bold)
        x = PAD
        for c, card in enumerate(row.cards):
            if row.divider_after is not None and c == row.divider_after:
                x = _divider(draw, x, top + LINE_PX + 6, card_height)
            _draw_card(canvas, draw, card, x, top + LINE_PX + 6, card_width, text_lines, font)
            x += card_width + PAD
        if row.divider_after is not None and row.divider_after >= len(row.cards):
            _divider(draw, x, top + LINE_PX + 6, card_height)
    # 256 colours (dithered) cut a panel of photo thumbnails to about a third of its RGB size, with
    # no visible loss at thumbnail scale; the text stays sharp, which JPEG would blur.
    buffer = io.BytesIO()
    canvas.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _divider(draw: ImageDraw.ImageDraw, x: int, top: int, height: int) -> int:
    middle = x + 4
    for y in range(top, top + height, 8):  # dashed, as the bound lines on the histograms
        draw.line([(middle, y), (middle, min(y + 4, top + height))], fill=DROPPED, width=2)
    return x + 12


def _draw_card(canvas, draw, card: Card, x: int, y: int, width: int, text_lines: int, font) -> None:
    draw.rectangle([x, y, x + width - 1, y + THUMB + 6 + text_lines * LINE_PX + PAD - 1], outline=card.frame, width=2)
    canvas.paste(thumbnail(card.image), (x + (width - THUMB) // 2, y + 4))
    for i, (line, source) in enumerate(wrap(card.lines, width - 8, text_lines)):
        draw.text((x + 4, y + THUMB + 8 + i * LINE_PX), line, fill=INK if source == 0 else MUTED, font=font)
