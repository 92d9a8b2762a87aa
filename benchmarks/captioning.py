"""Captions per second end to end (shard bytes -> decode in workers -> generate) vs the captioner's
raw generate throughput on pre-decoded batches, same batch size, same run. For the smoke BLIP and
a BLIP-base-sized captioner with random weights (the cost is the architecture's)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from upath import UPath

from benchmarks.corpus import photo_like_jpeg, write_caption_shard
from curation_assets.models.captioner import LoadedCaptioner, load_captioner
from curation_assets.normalize import normalize_shard
from curation_assets.readers import ShardFile
from curation_assets.recaption.generate import generate_candidates
from curation_assets.recipe import CaptionerModel
from curation_assets.scoring.image_batches import open_rgb
from curation_assets.scoring.image_models import BatchSettings
from curation_assets.sources import SourceKind

BATCH_SIZE = 16
NUM_WORKERS = 2
SETTINGS = CaptionerModel(max_new_tokens=20, num_beams=3, num_candidates=3)


def _blip_base_sized(folder: Path) -> Path:
    """BLIP captioning's default (base) configuration, random weights, with the smoke tokenizer."""
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipProcessor

    from curation_assets.models.captioner import build_smoke_captioner

    smoke = build_smoke_captioner(folder / "tokenizer-source")
    processor = BlipProcessor.from_pretrained(smoke)
    processor.image_processor.size = {"height": 384, "width": 384}
    config = BlipConfig(text_config={"vocab_size": len(processor.tokenizer), "bos_token_id": 5, "pad_token_id": 0,
                                     "sep_token_id": 3, "eos_token_id": 3})  # fmt: skip
    torch.manual_seed(0)
    BlipForConditionalGeneration(config).save_pretrained(folder / "blip-base")
    processor.save_pretrained(folder / "blip-base")
    return folder / "blip-base"


def _rates(captioner: LoadedCaptioner, shard: ShardFile, images: list[bytes]) -> tuple[float, float]:
    table = normalize_shard(shard).valid
    pixels = [captioner.preprocess(open_rgb(data, captioner.image_size)) for data in images]
    captioner.generate(torch.stack(pixels[:2]), SETTINGS)  # warm-up
    started = time.perf_counter()
    for start in range(0, len(pixels), BATCH_SIZE):
        captioner.generate(torch.stack(pixels[start : start + BATCH_SIZE]), SETTINGS)
    raw = len(pixels) / (time.perf_counter() - started)
    started = time.perf_counter()
    generate_candidates(shard, table, captioner, SETTINGS, BatchSettings(BATCH_SIZE, NUM_WORKERS))
    end_to_end = table.height / (time.perf_counter() - started)
    return raw, end_to_end


def run() -> dict[str, dict]:
    rng = np.random.default_rng(3)
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-captioning-") as folder:
        root = Path(folder)
        (root / "raw" / "caption").mkdir(parents=True)
        for name, rows, location, profile in (
            ("smoke_blip", 256, "smoke-blip-captioner", "smoke"),
            ("blip_base_sized", 32, None, "pretrained"),
        ):
            images = [photo_like_jpeg(rng) for _ in range(rows)]
            path = write_caption_shard(root / "raw" / "caption", "webdataset_tar", rows, images, name=f"{name}.tar")
            model = location or str(_blip_base_sized(root / "models"))
            captioner = load_captioner(CaptionerModel(model=model), profile, device="cpu")
            raw, end_to_end = _rates(captioner, ShardFile(SourceKind.caption, UPath(path), UPath(root)), images)
            common = {
                "images": rows,
                "batch_size": BATCH_SIZE,
                "num_workers": NUM_WORKERS,
                "candidates": SETTINGS.num_candidates,
                "max_new_tokens": SETTINGS.max_new_tokens,
                "device": "cpu",
            }
            figures[f"captioning_{name}_raw_generate_images_per_s"] = {
                "value": round(raw, 2),
                "unit": "images/s",
                **common,
            }
            figures[f"captioning_{name}_end_to_end_images_per_s"] = {
                "value": round(end_to_end, 2),
                "unit": "images/s",
                **common,
            }
            figures[f"captioning_{name}_end_to_end_vs_raw_ratio"] = {
                "value": round(end_to_end / raw, 3),
                "unit": "ratio",
                **common,
            }
    return figures
