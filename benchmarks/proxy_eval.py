"""Proxy eval wall time for 10k and 100k training pairs, with features cached and from scratch.

Cached: a full run as the eval asset does it (contamination, input maps, curated + random + all +
half-shuffled copy, 300 steps x batch 128 x 5 seeds each, recall on the eval set) on synthetic
features of the real widths (EfficientNet-Lite0 1280, MiniLM 384): a curated pool of N pairs, an
unfiltered pool of 2N, an eval set of 1,000 images x 5 captions. Training cost does not depend on
N (fixed steps); contamination and preparing the inputs grow with it.

From scratch: feature extraction throughput (decode + EfficientNet-Lite0, MiniLM) measured end to end
on real COCO photos from ../shared/data/coco-cc when present, else on photo-like demo JPEGs, and
extrapolated linearly to N + 2N training pairs (one image and one caption each) plus the eval set,
then added to the cached figure. Extraction is per shard and runs once; the extrapolation assumes
the measured rate holds (it is the model's, batch after batch).

Figures taken on a shared 2-core machine vary by up to ~50% between runs.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from curation_assets.evaluation.pools import concat
from curation_assets.evaluation.protocol import run_proxy_eval
from curation_assets.evaluation.settings import Encoders, Evaluation
from curation_assets.evaluation.synthetic import synthetic_pairs

SIZES = {"10k": 10_000, "100k": 100_000}
EVAL_IMAGES, EVAL_CAPTIONS = 1_000, 5
IMAGE_DIM, TEXT_DIM = 1280, 384
SHARED_COCO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coco-cc"


def _pools(n: int):
    def pairs(name, count, seed, **kw):
        return synthetic_pairs(name, count, image_dim=IMAGE_DIM, text_dim=TEXT_DIM, noise=4.0, seed=seed, **kw)

    curated = pairs("curated", n, 1)
    rest = pairs("rest", n, 2)
    rest = type(rest)(
        "rest",
        rest.sample_ids,
        rest.captions,
        rest.image_sha256,
        rest.image_phash,
        rest.images,
        np.roll(rest.texts, 7, 0),
    )
    eval_set = pairs("eval", EVAL_IMAGES, 3, captions_per_image=EVAL_CAPTIONS)
    return curated, concat("unfiltered", [curated, rest]), eval_set


def cached_run(n: int) -> dict:
    curated, unfiltered, eval_set = _pools(n)
    started = time.perf_counter()
    report = run_proxy_eval({"curated": curated}, {"eval": eval_set}, Evaluation(), unfiltered=unfiltered)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "breakdown": report["seconds"], "report": report}


def _sample_shard(folder: Path) -> tuple[Path, str]:
    """A caption shard to measure extraction on: real COCO photos if present, else demo JPEGs."""
    if SHARED_COCO.exists():
        rows = [json.loads(line) for line in (SHARED_COCO / "pairs.jsonl").read_text().splitlines() if line.strip()]
        images = folder / "coco_images"
        images.mkdir()
        with (folder / "coco.jsonl").open("w") as out:
            for row in rows:
                name = row["image"].rsplit("/", 1)[-1]
                (images / name).write_bytes((SHARED_COCO / row["image"]).read_bytes())
                text = f"<__dj__image> {row['captions'][0]} <|__dj__eoc|>"
                out.write(json.dumps({"text": text, "images": [f"coco_images/{name}"]}) + "\n")
        return folder / "coco.jsonl", f"{len(rows)} real COCO photos (../shared/data/coco-cc)"
    from benchmarks.corpus import photo_like_jpeg, write_caption_shard

    rng = np.random.default_rng(0)
    jpegs = [photo_like_jpeg(rng, 640, 480) for _ in range(64)]
    return write_caption_shard(folder, "webdataset_tar", 64, jpegs), "64 photo-like demo JPEGs (640x480)"


def extraction_rates() -> dict:
    """Images/s (read + decode + EfficientNet-Lite0 in DataLoader workers) and captions/s (MiniLM)."""
    from upath import UPath

    from curation_assets.evaluation.encoders import load_encoders
    from curation_assets.evaluation.features import encode_shard_images
    from curation_assets.normalize import normalize_shard
    from curation_assets.readers import ShardFile
    from curation_assets.sources import SourceKind

    encoders = load_encoders(Encoders(), device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        path, source = _sample_shard(Path(tmp))
        shard = ShardFile(SourceKind.caption, UPath(path), UPath(tmp))
        table = normalize_shard(shard).valid
        refs = table["image_ref"].to_list()
        encode_shard_images(shard, refs[:8], encoders, num_workers=2)  # warm-up: first batch, worker start
        started = time.perf_counter()
        encode_shard_images(shard, refs, encoders, num_workers=2)
        image_rate = len(refs) / (time.perf_counter() - started)
    captions = [f"a photo of {i} people walking a dog near the red bus on a rainy street" for i in range(1024)]
    encoders.encode_texts(captions[:64])
    started = time.perf_counter()
    encoders.encode_texts(captions)
    text_rate = len(captions) / (time.perf_counter() - started)
    return {"image_rate": image_rate, "text_rate": text_rate, "source": source}


def run() -> dict[str, dict]:
    figures: dict[str, dict] = {}
    rates = extraction_rates()
    figures["proxy_features_images_per_second"] = {
        "value": round(rates["image_rate"], 1),
        "unit": "img/s",
        "measured_on": rates["source"],
        "model": "efficientnet-lite0, cpu, decode in 2 DataLoader workers",
    }
    figures["proxy_features_captions_per_second"] = {
        "value": round(rates["text_rate"], 1),
        "unit": "cap/s",
        "model": "all-MiniLM-L6-v2, cpu",
    }
    for label, n in SIZES.items():
        cached = cached_run(n)
        figures[f"proxy_eval_{label}_pairs_cached_seconds"] = {
            "value": round(cached["seconds"], 1),
            "unit": "s",
            "pools": f"curated {n}, unfiltered {2 * n}, eval {EVAL_IMAGES}x{EVAL_CAPTIONS}; 4 trainings",
            "breakdown_s": cached["breakdown"],
            "features": "synthetic, real widths (1280 + 384)",
        }
        images = 2 * n + EVAL_IMAGES  # the curated pairs are part of the unfiltered pool
        captions = 2 * n + EVAL_IMAGES * EVAL_CAPTIONS
        extraction = images / rates["image_rate"] + captions / rates["text_rate"]
        figures[f"proxy_eval_{label}_pairs_from_scratch_seconds"] = {
            "value": round(extraction + cached["seconds"], 1),
            "unit": "s",
            "extraction_s": round(extraction, 1),
            "how": f"extrapolated: {images} images and {captions} captions at the measured rates, plus the cached run",
        }
    return figures


if __name__ == "__main__":
    for key, figure in run().items():
        print(key, figure)
