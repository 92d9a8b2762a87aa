"""What adding one shard costs once many are settled: 10 against 1,000 shards, same run.

Each case settles N tiny caption shards (2 pairs each), then drops one more whose first image is a
byte copy of shard 0's, and times the sensors plus every automation run until the automation sensor
requests nothing. Target: the 1,000-shard case at most twice the 10-shard one, and no model step on
an old shard. Settling ingests ranges of shards per run (fast setup only; the measured step is the
real path: one ingest run for the new shard, then what automation requests).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from curation_assets import registry

ROWS = 2
SIZES = (10, 1000)


def _recipe():
    from curation_assets.recipe import PACKAGED_RECIPES, load_recipe

    recipe = load_recipe(PACKAGED_RECIPES / "smoke.yaml").without_evaluation()  # the data pipeline alone
    filters = type(recipe).model_validate({"filters": [{"image_shape_filter": {"min_width": 32}}]}).filters
    # Image dedup only: the smoke captioner's random recaptions look alike to caption MinHash and would
    # chain unrelated pairs into one duplicate group.
    dedup = type(recipe.dedup).model_validate({"image_deduplicator": {}})
    return recipe.model_copy(update={"filters": filters, "dedup": dedup})


def _one_case(shards: int) -> dict:
    from dagster import instance_for_test

    from curation_assets.definitions import build_definitions
    from curation_assets.defs.local_runner import run_automation
    from curation_assets.demo.many_shards import settle, shard_name, write_copying_shard, write_tiny_shards
    from curation_assets.local_run import tick_shard_sensors

    model_tables = {spec.qualified_name for spec in registry.TABLES if spec.gpu}
    with tempfile.TemporaryDirectory(prefix=f"bench-incremental-{shards}-") as folder:
        root, home = Path(folder) / "data", Path(folder) / "home"
        home.mkdir()
        write_tiny_shards(root / "raw" / "caption", shards, rows=ROWS)
        with instance_for_test(temp_dir=str(home)) as instance:
            defs = build_definitions(str(root), _recipe(), num_workers=0, batch_size=16)
            settle_started = time.monotonic()
            assert settle(instance, defs) == shards
            settle_seconds = time.monotonic() - settle_started

            write_copying_shard(root / "raw" / "caption", shards, copies_of=0, rows=ROWS)
            started = time.monotonic()
            tick_shard_sensors(instance, defs, log=lambda _: None)
            runs = run_automation(instance, defs, log=lambda _: None)
            seconds = time.monotonic() - started
    new = shard_name(shards)
    old_model_steps = sum(1 for run in runs if set(run.assets) & model_tables and set(run.partitions) - {new})
    return {
        "seconds": seconds,
        "runs": len(runs),
        "old_model_steps": old_model_steps,
        "global_run_seconds": sum(run.seconds for run in runs if not run.partitions),
        "settle_seconds": settle_seconds,
    }


def run() -> dict[str, dict]:
    cases = {shards: _one_case(shards) for shards in SIZES}
    small, large = cases[SIZES[0]], cases[SIZES[-1]]
    figures = {}
    for shards, case in cases.items():
        figures[f"incremental_one_new_shard_after_{shards}_seconds"] = {
            "value": round(case["seconds"], 2),
            "unit": "s",
            "runs": case["runs"],
            "global_run_seconds": round(case["global_run_seconds"], 2),
            "settle_seconds": round(case["settle_seconds"], 1),
            "rows_per_shard": ROWS,
        }
    figures["incremental_ratio_1000_over_10"] = {
        "value": round(large["seconds"] / small["seconds"], 3),
        "unit": "ratio",
        "target": "<= 2",
    }
    figures["incremental_model_steps_on_old_shards"] = {
        "value": small["old_model_steps"] + large["old_model_steps"],
        "unit": "steps",
        "target": 0,
    }
    return figures


if __name__ == "__main__":
    for name, figure in run().items():
        print(name, figure)
