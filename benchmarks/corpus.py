"""Benchmark shards: one per format, sized like real web data, written with the demo writers."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
from PIL import Image

from curation_assets.demo.writers import (
    CaptionSample,
    DocImage,
    InterleavedDoc,
    TextDoc,
    write_dj_jsonl,
    write_dj_parquet,
    write_img2dataset_parquet,
    write_llava_json,
    write_mmc4_jsonl,
    write_obelics_parquet,
    write_text_jsonl,
    write_text_parquet,
    write_webdataset_tar,
)

WORDS = "a the dog cat red blue small large photo of on in with near two people street tree sky water".split()


def photo_like_jpeg(rng: np.random.Generator, width: int = 512, height: int = 384) -> bytes:
    """A smooth gradient plus texture noise: compresses and decodes like a photo (~40-60 KB at q90),
    unlike flat synthetic shapes (too cheap) or pure noise (too expensive)."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack(
        [(x * rng.uniform(0.2, 0.5) + y * rng.uniform(0.1, 0.4) + rng.uniform(0, 255)) % 256 for _ in range(3)], -1
    )
    pixels = np.clip(base + rng.normal(0, 18, base.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def caption(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 20)))


CAPTION_FORMATS = {
    "webdataset_tar": ("wds.tar", lambda path, samples: write_webdataset_tar(path, samples)),
    "img2dataset_parquet": ("i2d.parquet", write_img2dataset_parquet),
    "dj_parquet": ("djb.parquet", write_dj_parquet),
    "dj_jsonl": ("dj.jsonl", lambda path, samples: write_dj_jsonl(path, samples)),
    "llava_json": ("llava.json", lambda path, samples: write_llava_json(path, samples)),
}


def write_caption_shard(
    folder: Path, fmt: str, rows: int, images: list[bytes], seed: int = 0, name: str | None = None
) -> Path:
    rng = random.Random(seed)
    filename, writer = CAPTION_FORMATS[fmt]
    path = folder / (name or filename)
    writer(path, [CaptionSample(images[i % len(images)], caption(rng), {}) for i in range(rows)])
    return path


def write_interleaved_shard(folder: Path, fmt: str, docs: int, images: list[bytes], seed: int = 0) -> Path:
    rng = random.Random(seed)
    built = []
    for d in range(docs):
        sentences = [caption(rng) for _ in range(6)]
        pictures = [
            DocImage(images[(d * 3 + k) % len(images)], k * 2, url=f"http://example.com/{d}/{k}.jpg") for k in range(3)
        ]
        built.append(InterleavedDoc(url=f"http://example.com/{d}", sentences=sentences, images=pictures))
    path = folder / ("mmc4.jsonl" if fmt == "mmc4_jsonl" else "obelics.parquet")
    (write_mmc4_jsonl if fmt == "mmc4_jsonl" else write_obelics_parquet)(path, built)
    return path


def write_text_shard(folder: Path, fmt: str, docs: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    built = [TextDoc(" ".join(caption(rng) + "." for _ in range(30))) for _ in range(docs)]
    path = folder / ("text.jsonl" if fmt == "text_jsonl" else "text.parquet")
    (write_text_jsonl if fmt == "text_jsonl" else write_text_parquet)(path, built)
    return path


def shard_bytes(path: Path) -> int:
    """The shard plus the image files it references (in `<stem>_images/`)."""
    images = path.parent / f"{path.name.rsplit('.', 1)[0]}_images"
    return (
        path.stat().st_size + sum(f.stat().st_size for f in images.glob("*"))
        if images.exists()
        else path.stat().st_size
    )
