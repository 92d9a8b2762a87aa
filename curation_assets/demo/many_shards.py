"""Many tiny caption shards, for tests and benchmarks at shard counts where Dagster changes behaviour
(100 and more partitions): WebDataset tars of a few pairs each, every image distinct (seeded noise,
so no two images share bytes or a pHash) unless asked to copy another shard's images."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from curation_assets.demo.writers import CaptionSample, write_webdataset_tar

WORDS = ("red", "blue", "green", "small", "large", "round", "square", "bright", "dark", "striped")
NOUNS = ("circle", "square", "triangle", "ball", "kite", "house", "boat", "tree", "cloud", "car")


def tiny_image(seed: int, side: int = 48) -> bytes:
    """A PNG of seeded noise at a coarse scale, so pHashes of different seeds differ."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((side, side), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def tiny_caption(seed: int) -> str:
    rng = np.random.default_rng(seed + 1_000_003)
    return f"a {rng.choice(WORDS)} {rng.choice(WORDS)} {rng.choice(NOUNS)} next to a {rng.choice(NOUNS)} {seed}"


def shard_name(index: int) -> str:
    return f"tiny-{index:05d}.tar"


def shard_samples(index: int, rows: int) -> list[CaptionSample]:
    return [CaptionSample(tiny_image(index * 1000 + row), tiny_caption(index * 1000 + row)) for row in range(rows)]


def write_tiny_shards(folder: str | Path, count: int, rows: int = 2, start: int = 0) -> list[Path]:
    """`count` shards `tiny-NNNNN.tar` of `rows` pairs each into `folder` (raw/caption)."""
    folder = Path(folder)
    paths = []
    for index in range(start, start + count):
        path = folder / shard_name(index)
        write_webdataset_tar(path, shard_samples(index, rows))
        paths.append(path)
    return paths


def write_copying_shard(folder: str | Path, index: int, copies_of: int, rows: int = 2) -> Path:
    """Shard `index` whose first pair's image is a byte copy of shard `copies_of`'s first image (with
    its own caption); its other pairs are new."""
    samples = shard_samples(index, rows)
    samples[0] = CaptionSample(shard_samples(copies_of, 1)[0].image, tiny_caption(index * 1000))
    path = Path(folder) / shard_name(index)
    write_webdataset_tar(path, samples)
    return path


def settle(instance, defs, log=lambda _: None) -> int:
    """Bring freshly written caption shards to a settled state fast: register them, ingest them 100
    per run, then let automation run the rest. Setup for tests and benchmarks only; the path under
    test (a new shard: one ingest run, then what automation requests) is left to the caller.
    Returns the number of shards registered."""
    from dagster import SensorResult, build_sensor_context

    from curation_assets.defs.local_runner import (
        QUIET_RUN_CONFIG,
        RANGE_END_TAG,
        RANGE_START_TAG,
        consecutive_chunks,
        run_automation,
    )
    from curation_assets.local_run import apply_sensor_result

    # Every kind's sensor, as the daemon ticks them all: the other kinds record their (empty) shard sets.
    for kind in ("caption", "interleaved", "text"):
        sensor = defs.resolve_sensor_def(f"new_{kind}_shards")
        with build_sensor_context(instance=instance, resources=defs.resources) as context:
            result = sensor(context)
            if isinstance(result, SensorResult):
                apply_sensor_result(instance, result)
    keys = sorted(instance.get_dynamic_partitions("caption_shards"))
    order = {key: i for i, key in enumerate(keys)}
    ingest = defs.resolve_job_def("ingest_caption_shards")
    for chunk in consecutive_chunks(keys, order, 100):
        tags = {RANGE_START_TAG: chunk[0], RANGE_END_TAG: chunk[-1]}
        ingest.execute_in_process(instance=instance, tags=tags, run_config=QUIET_RUN_CONFIG)
    run_automation(instance, defs, log=log)
    return len(keys)
