"""The promise in one ratio: a full first run vs the re-run after a threshold change, same data,
same benchmark run. Ten caption shards of 200 pairs, a ViT-B-32-sized CLIP (random weights: the
cost is the architecture's, the weights do not matter), the other models from the smoke recipe.
The re-run is whatever Dagster then reports stale, run by the same stale runner."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from dagster import instance_for_test

from benchmarks.corpus import photo_like_jpeg, write_caption_shard
from curation_assets.definitions import build_definitions
from curation_assets.defs.local_runner import run_automation
from curation_assets.local_run import tick_shard_sensors
from curation_assets.recipe import PACKAGED_RECIPES, Recipe, load_recipe

SHARDS = 10
PAIRS_PER_SHARD = 200


def _recipe() -> Recipe:
    smoke = load_recipe(PACKAGED_RECIPES / "smoke.yaml").without_evaluation()  # the data pipeline alone
    clip = smoke.models.clip.model_copy(update={"model": "ViT-B-32", "pretrained": None})
    return smoke.model_copy(update={"models": smoke.models.model_copy(update={"clip": clip})})


def _with_threshold(recipe: Recipe, percentile: str) -> Recipe:
    filters = [
        {"image_shape_filter": {"min_width": 32, "min_height": 32}},
        {"words_num_filter": {"min_num": 3, "max_num": 60}},
        {"image_text_similarity_filter": {"min_score": percentile}},
    ]
    return recipe.model_copy(update={"filters": Recipe.model_validate({"filters": filters}).filters})


def run() -> dict[str, dict]:
    rng = np.random.default_rng(2)
    with tempfile.TemporaryDirectory(prefix="bench-rerun-") as folder:
        root, home = Path(folder) / "data", Path(folder) / "home"
        (root / "raw" / "caption").mkdir(parents=True)
        home.mkdir()
        for shard in range(SHARDS):
            images = [photo_like_jpeg(rng) for _ in range(PAIRS_PER_SHARD)]
            write_caption_shard(
                root / "raw" / "caption",
                "webdataset_tar",
                PAIRS_PER_SHARD,
                images,
                seed=shard,
                name=f"shard-{shard:05d}.tar",
            )
        first_recipe = _with_threshold(_recipe(), "p10")
        with instance_for_test(temp_dir=str(home)) as instance:
            defs = build_definitions(str(root), first_recipe, device="cpu")
            started = time.perf_counter()
            tick_shard_sensors(instance, defs, log=lambda _: None)
            first_runs = run_automation(instance, defs, log=lambda _: None)
            first = time.perf_counter() - started

            edited = build_definitions(str(root), _with_threshold(_recipe(), "p30"), device="cpu")
            started = time.perf_counter()
            rerun_runs = run_automation(instance, edited, log=lambda _: None)
            rerun = time.perf_counter() - started
    rerun_assets = sorted({asset for run in rerun_runs for asset in run.assets})
    common = {"shards": SHARDS, "pairs_per_shard": PAIRS_PER_SHARD, "clip": "ViT-B-32 (random init)"}
    return {
        "first_run_seconds": {"value": round(first, 1), "unit": "s", "runs": len(first_runs), **common},
        "threshold_change_rerun_seconds": {
            "value": round(rerun, 2),
            "unit": "s",
            "runs": len(rerun_runs),
            "assets": rerun_assets,
            **common,
        },
        "threshold_change_rerun_vs_first_run_ratio": {
            "value": round(rerun / first, 4),
            "unit": "ratio",
            "target": "below 0.02",
            **common,
        },
    }
