"""Synthetic, truthfully captioned images and the broken variants the pipeline must survive.

Every picture is a coloured shape on a shaded background, so its caption can be exact
("a red circle on a blue background") and CLIP-style scorers have something real to match.
Everything here is deterministic: the same Scene always renders to the same bytes.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (205, 35, 35),
    "green": (40, 160, 60),
    "blue": (35, 70, 200),
    "yellow": (240, 210, 40),
    "orange": (240, 130, 20),
    "purple": (130, 50, 170),
    "pink": (240, 130, 180),
    "brown": (120, 75, 35),
    "black": (20, 20, 20),
    "white": (245, 245, 245),
    "gray": (128, 128, 128),
    "teal": (20, 140, 140),
}
SHAPES = ("circle", "square", "triangle", "stripes", "cross", "ring")

# Several phrasings, so captions are not all one template (dedup on text would be too easy).
CAPTION_TEMPLATES = (
    "{thing} on a {background} background",
    "a simple drawing of {thing} against a {background} backdrop",
    "{thing} centered on a plain {background} background",
    "close-up of {thing} over a {background} surface",
)

JPEG_QUALITY = 90


@dataclass(frozen=True)
class Scene:
    """What a picture shows; placement is relative so a scene renders at any size."""

    shape: str
    colour: str
    background: str
    width: int
    height: int
    centre_x: float = 0.5
    centre_y: float = 0.5
    scale: float = 0.6
    template: int = 0
    texture_seed: int = 0

    def caption(self) -> str:
        if self.shape == "stripes":
            thing = f"{self.colour} stripes"
        else:
            article = "an" if self.colour[0] in "aeiou" else "a"
            thing = f"{article} {self.colour} {self.shape}"
        return CAPTION_TEMPLATES[self.template].format(thing=thing, background=self.background)


class SceneSampler:
    """Hands out scenes with a distinct (shape, colour, background) each, until the pool runs out.

    Distinct combinations keep ordinary images from being accidental near-duplicates of each
    other, so the only near-duplicates in the demo are the ones the manifest lists.
    """

    def __init__(self, seed: int):
        self._rng = random.Random(seed)
        combos = [
            (shape, colour, background)
            for shape in SHAPES
            for colour in COLOURS
            for background in COLOURS
            if colour != background
        ]
        self._rng.shuffle(combos)
        self._combos = combos

    def next(self, width: int | None = None, height: int | None = None) -> Scene:
        if not self._combos:
            raise RuntimeError("scene pool exhausted; the demo asked for too many distinct images")
        shape, colour, background = self._combos.pop()
        rng = self._rng
        return Scene(
            shape=shape,
            colour=colour,
            background=background,
            width=width or rng.randint(64, 256),
            height=height or rng.randint(64, 256),
            centre_x=round(rng.uniform(0.35, 0.65), 3),
            centre_y=round(rng.uniform(0.35, 0.65), 3),
            scale=round(rng.uniform(0.45, 0.8), 3),
            template=rng.randrange(len(CAPTION_TEMPLATES)),
            texture_seed=rng.getrandbits(32),
        )


def _background(scene: Scene) -> np.ndarray:
    """Background colour under soft, scene-specific light and shadow.

    Without it, pictures differ only in a flat shape, and perceptual hashes of unrelated
    images collide; the blotches give each scene its own low-frequency structure.
    """
    w, h = scene.width, scene.height
    coarse = np.random.default_rng(scene.texture_seed).normal(0.0, 1.0, size=(4, 4)).astype(np.float32)
    blotches = np.asarray(Image.fromarray(coarse, "F").resize((w, h), Image.Resampling.BICUBIC))
    shade = 1.0 + 0.18 * blotches[:, :, None] - np.linspace(0.0, 0.15, h, dtype=np.float32)[:, None, None]
    base = np.array(COLOURS[scene.background], dtype=np.float32)[None, None, :]
    # Brighten dark colours a little too, or black backgrounds would carry no texture.
    pixels = base * shade + 40.0 * (shade - 1.0)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def render(scene: Scene) -> Image.Image:
    """Draw the scene as an RGB image."""
    w, h = scene.width, scene.height
    img = Image.fromarray(_background(scene), "RGB")
    draw = ImageDraw.Draw(img)
    fill = COLOURS[scene.colour]
    cx, cy = scene.centre_x * w, scene.centre_y * h
    r = max(1.0, scene.scale * min(w, h) / 2)
    box = (cx - r, cy - r, cx + r, cy + r)
    if scene.shape == "circle":
        draw.ellipse(box, fill=fill)
    elif scene.shape == "ring":
        draw.ellipse(box, outline=fill, width=max(1, int(r / 3)))
    elif scene.shape == "square":
        draw.rectangle(box, fill=fill)
    elif scene.shape == "triangle":
        draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=fill)
    elif scene.shape == "cross":
        arm = max(1.0, r / 3)
        draw.rectangle((cx - r, cy - arm, cx + r, cy + arm), fill=fill)
        draw.rectangle((cx - arm, cy - r, cx + arm, cy + r), fill=fill)
    elif scene.shape == "stripes":
        # Stripes run across the long side so they stay visible on extreme aspect ratios.
        period = max(4, int(min(w, h) * scene.scale / 2))
        if w >= h:
            for x in range(0, w, period):
                draw.rectangle((x, 0, x + period // 2 - 1, h), fill=fill)
        else:
            for y in range(0, h, period):
                draw.rectangle((0, y, w, y + period // 2 - 1), fill=fill)
    else:
        raise ValueError(f"unknown shape {scene.shape!r}")
    return img


def jpeg_bytes(img: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def webp_bytes(img: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="WEBP", quality=quality)
    return buf.getvalue()


def scene_jpeg(scene: Scene) -> bytes:
    return jpeg_bytes(render(scene))


# --- defects that still decode (kept, but flagged for later filters) ---------------------------


def near_duplicate_variants(scene: Scene) -> list[bytes]:
    """Three lightly altered copies of one picture: re-encoded at q60, resized 0.8x, slightly cropped."""
    img = render(scene)
    w, h = img.size
    requality = jpeg_bytes(img, quality=60)
    resized = jpeg_bytes(img.resize((max(1, int(w * 0.8)), max(1, int(h * 0.8))), Image.Resampling.LANCZOS))
    dx, dy = max(1, w * 3 // 100), max(1, h * 3 // 100)
    cropped = jpeg_bytes(img.crop((dx, dy, w - dx, h - dy)))
    return [requality, resized, cropped]


def tiny_scene(scene: Scene) -> Scene:
    return replace(scene, width=8, height=8)


def extreme_aspect_scene(scene: Scene) -> Scene:
    # Stripes keep the caption true at 64:1, where a circle would be a dot.
    return replace(scene, shape="stripes", width=1024, height=16)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow built without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def watermarked(scene: Scene) -> bytes:
    """The scene under a stock-photo style overlay: repeated diagonal '(c) STOCKPHOTO' plus a logo box."""
    img = render(scene).convert("RGBA")
    w, h = img.size
    side = int((w * w + h * h) ** 0.5) + 2
    text_layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(text_layer)
    font = _font(max(10, min(w, h) // 10))
    step_y = max(12, min(w, h) // 6)
    for row, y in enumerate(range(0, side, step_y)):
        offset = (row % 2) * step_y
        draw.text((offset - step_y, y), "(c) STOCKPHOTO  " * 8, fill=(255, 255, 255, 110), font=font)
    text_layer = text_layer.rotate(30, resample=Image.Resampling.BILINEAR)
    left, top = (side - w) // 2, (side - h) // 2
    img.alpha_composite(text_layer.crop((left, top, left + w, top + h)))
    logo = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    logo_draw = ImageDraw.Draw(logo)
    bw, bh = max(16, w // 4), max(10, h // 8)
    x0, y0 = w - bw - 4, h - bh - 4
    logo_draw.rectangle((x0, y0, x0 + bw, y0 + bh), fill=(255, 255, 255, 150), outline=(0, 0, 0, 200))
    logo_draw.text((x0 + 3, y0 + 1), "SP", fill=(0, 0, 0, 220), font=_font(max(8, bh - 3)))
    img.alpha_composite(logo)
    return jpeg_bytes(img)


# --- defects that must be quarantined ----------------------------------------------------------


def truncated(data: bytes, keep: float = 0.6) -> bytes:
    """The first `keep` fraction of an encoded image: the header parses, decoding fails."""
    return data[: int(len(data) * keep)]


def random_bytes(rng: random.Random, size: int = 2048) -> bytes:
    data = bytes(rng.getrandbits(8) for _ in range(size))
    # Never let chance produce a real image signature.
    return b"\x00NOTIMG" + data


def decompression_bomb_png(width: int = 10240, height: int = 10240) -> bytes:
    """A valid 1-bit PNG of width*height pixels (over 100M by default) that is tiny on disk.

    Written by hand with zlib rather than through PIL, which would first allocate one byte per
    pixel (100 MB) just to produce an all-black image.
    """

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    # bit depth 1, colour type 0 (grayscale), default compression/filter, no interlace
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")
