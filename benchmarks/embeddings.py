"""CLIP embeddings end to end (shard bytes -> decode in workers -> model) vs the raw forward pass
of the same model on pre-decoded tensors, same batch size, same run. The ratio is the figure: it
says how much of the model's speed the data path delivers."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from upath import UPath

from benchmarks.corpus import photo_like_jpeg, write_caption_shard
from curation_assets.models.clip import load_clip
from curation_assets.normalize import normalize_shard
from curation_assets.readers import ShardFile
from curation_assets.recipe import ClipModel
from curation_assets.scoring.image_batches import open_rgb
from curation_assets.scoring.image_models import BatchSettings, clip_embeddings
from curation_assets.sources import SourceKind

ROWS = {"smoke-ViT-tiny": 512, "ViT-B-32": 192}
BATCH_SIZE = 32
NUM_WORKERS = 2  # the resource default


def _raw_forward_rate(clip, pixels: list[torch.Tensor], captions: list[str]) -> float:
    started = time.perf_counter()
    for start in range(0, len(pixels), BATCH_SIZE):
        clip.encode_images(torch.stack(pixels[start : start + BATCH_SIZE]))
        clip.encode_texts(captions[start : start + BATCH_SIZE])
    return len(pixels) / (time.perf_counter() - started)


def _end_to_end_rate(clip, shard: ShardFile, table) -> float:
    started = time.perf_counter()
    clip_embeddings(shard, table, clip, BatchSettings(BATCH_SIZE, NUM_WORKERS))
    return table.height / (time.perf_counter() - started)


def _peak_rss_mib(root: Path, shard_name: str, model_name: str) -> float:
    """Peak RSS of a fresh process that embeds one shard end to end (workers not included: they
    hold a batch of decoded images each)."""
    script = (
        "import sys\n"
        "from upath import UPath\n"
        "from curation_assets.models.clip import load_clip\n"
        "from curation_assets.normalize import normalize_shard\n"
        "from curation_assets.readers import ShardFile\n"
        "from curation_assets.recipe import ClipModel\n"
        "from curation_assets.scoring.image_models import BatchSettings, clip_embeddings\n"
        "from curation_assets.sources import SourceKind\n"
        "root = UPath(sys.argv[1])\n"
        "shard = ShardFile(SourceKind.caption, root / 'raw' / 'caption' / sys.argv[2], root)\n"
        "clip = load_clip(ClipModel(model=sys.argv[3], pretrained=None), 'smoke', device='cpu')\n"
        f"clip_embeddings(shard, normalize_shard(shard).valid, clip, BatchSettings({BATCH_SIZE}, {NUM_WORKERS}))\n"
        "from benchmarks.memory import peak_rss_mib\n"
        "print(peak_rss_mib())\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", script, str(root), shard_name, model_name], capture_output=True, text=True, check=True
    )
    return float(output.stdout.strip().splitlines()[-1])


def run() -> dict[str, dict]:
    figures: dict[str, dict] = {}
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory(prefix="bench-embeddings-") as folder:
        root = Path(folder)
        (root / "raw" / "caption").mkdir(parents=True)
        images = [photo_like_jpeg(rng) for _ in range(max(ROWS.values()))]
        for model_name, rows in ROWS.items():
            path = write_caption_shard(
                root / "raw" / "caption", "webdataset_tar", rows, images[:rows], name=f"{model_name}.tar"
            )
            shard = ShardFile(SourceKind.caption, UPath(path), UPath(root))
            table = normalize_shard(shard).valid
            clip = load_clip(ClipModel(model=model_name, pretrained=None), "smoke", device="cpu")
            pixels = [clip.preprocess(open_rgb(data, clip.image_size)) for data in images[:rows]]
            captions = table["caption"].to_list()
            _raw_forward_rate(clip, pixels[:BATCH_SIZE], captions[:BATCH_SIZE])  # warm-up
            raw = _raw_forward_rate(clip, pixels, captions)
            end_to_end = _end_to_end_rate(clip, shard, table)
            slug = model_name.lower().replace("-", "_")
            common = {"rows": rows, "batch_size": BATCH_SIZE, "num_workers": NUM_WORKERS, "device": str(clip.device)}
            figures[f"embeddings_{slug}_raw_forward_samples_per_s"] = {
                "value": round(raw, 1),
                "unit": "samples/s",
                **common,
            }
            figures[f"embeddings_{slug}_end_to_end_samples_per_s"] = {
                "value": round(end_to_end, 1),
                "unit": "samples/s",
                **common,
            }
            figures[f"embeddings_{slug}_peak_rss_mib"] = {
                "value": round(_peak_rss_mib(root, path.name, model_name), 1),
                "unit": "MiB",
                **common,
            }
            figures[f"embeddings_{slug}_end_to_end_vs_raw_ratio"] = {
                "value": round(end_to_end / raw, 3),
                "unit": "ratio",
                **common,
                **({"target": "above 0.85"} if model_name == "ViT-B-32" else {}),
            }
    return figures
