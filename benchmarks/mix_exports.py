"""The mix over 1M and 10M sample ids (seconds and peak memory), and export throughput next to a
plain copy of the same bytes on the same disk.

Mix: synthetic pools (60% caption, 25% interleaved, 15% text ids over 1,000 source shards, 16-hex
ids like ours, token counts per sample), drawn at 5:5:1 by tokens with the default budget, then the
three checks. Each size runs in a fresh process, so its peak memory (VmHWM) is its own; the figure
also gives the memory the pools alone took. CPU seconds ride along: on a shared machine they move
less than wall time.

Export: SOURCE_SHARDS img2dataset-layout tars of photo-like JPEGs (~50 KB; distinct bytes per
sample) are exported as the export steps run them: every shard's images into the store (step 1),
then the LLaVA json, WebDataset tars and Data-Juicer jsonl (step 2). MB/s counts image bytes;
the plain copy copies the source tars file by file (with an fsync each, as the export's tars get),
same disk, same page cache state; the plain file copy unpacks the same images one file each, the
floor of any image-folder layout. Then the unchanged re-run: what it costs to find nothing to do.
"""

from __future__ import annotations

import argparse
import binascii
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from upath import UPath

from benchmarks.corpus import caption, photo_like_jpeg
from benchmarks.memory import peak_rss_mib

MIX_SIZES = {"1m": 1_000_000, "10m": 10_000_000}
SOURCE_SHARDS = 8
SAMPLES_PER_SHARD = 500
TAR_SAMPLES = 1_000


# --- the mix ----------------------------------------------------------------------------------


def synthetic_pools(n: int, seed: int = 0) -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    # 16 hex digits per id straight from random bytes: no Python loop over 10M strings.
    ids = pl.Series("sample_id", np.frombuffer(binascii.hexlify(rng.bytes(8 * n)), dtype="S16")).cast(pl.String)
    shards = pl.Series("shard_id", rng.integers(0, 1_000, n)).cast(pl.String)
    tokens = {"caption": (20, 60, 576), "interleaved": (300, 3_000, 576 * 3), "text": (200, 2_000, 0)}
    bounds = {"caption": (0, int(0.6 * n)), "interleaved": (int(0.6 * n), int(0.85 * n)), "text": (int(0.85 * n), n)}
    pools = {}
    for kind, (start, stop) in bounds.items():
        low, high, images = tokens[kind]
        count = stop - start
        pools[kind] = pl.DataFrame(
            {
                "sample_id": ids.slice(start, count),
                "shard_id": shards.slice(start, count),
                "tokens": rng.integers(low, high, count) + images,
            }
        )
    return pools


def measure_mix(n: int) -> dict:
    from curation_assets.mix.checks import every_sample_from_pool, ratio_within_tolerance, repeats_within_max
    from curation_assets.mix.draw import mix_pools
    from curation_assets.mix.spec import Mix

    pools = synthetic_pools(n)
    pools_rss = peak_rss_mib()
    spec = Mix(unit="tokens")
    started, cpu = time.perf_counter(), time.process_time()
    result = mix_pools(pools, spec)
    mix_seconds, mix_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    checks = [
        ratio_within_tolerance(result.report),
        every_sample_from_pool(result.frame, pools),
        repeats_within_max(result.frame, {kind: spec.repeat_limit(kind) for kind in pools}),
    ]
    check_seconds, check_cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "ids": n,
        "mix_seconds": mix_seconds,
        "mix_cpu_seconds": mix_cpu,
        "check_seconds": check_seconds,
        "check_cpu_seconds": check_cpu,
        "mixed_rows": result.frame.height,
        "checks_passed": all(check.passed for check in checks),
        "pools_rss_mib": pools_rss,
        "peak_rss_mib": peak_rss_mib(),
    }


# --- the exports ------------------------------------------------------------------------------


def write_source_tars(folder: Path, seed: int = 0) -> pl.DataFrame:
    """Source tars in img2dataset layout and their caption pool (as curation would hand it over)."""
    from curation_assets.ids import sample_id

    rng, text_rng = np.random.default_rng(seed), random.Random(seed)
    bases = [photo_like_jpeg(rng) for _ in range(16)]
    rows = []
    folder.mkdir(parents=True, exist_ok=True)
    for shard in range(SOURCE_SHARDS):
        shard_id = f"wds-{shard:05d}.tar"
        with tarfile.open(folder / shard_id, "w") as tar:
            for index in range(SAMPLES_PER_SHARD):
                key = f"{index:09d}"
                # A JPEG with a few random bytes after its end marker: decodes the same, hashes apart.
                image = bases[index % len(bases)] + rng.bytes(16)
                text = caption(text_rng)
                for name, data in ((f"{key}.jpg", image), (f"{key}.txt", text.encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                rows.append(
                    {
                        "sample_id": sample_id("caption", shard_id, key),
                        "shard_id": shard_id,
                        "image_ref": f"tar:{key}.jpg",
                        "image_sha256": hashlib.sha256(image).hexdigest(),
                        "caption": text,
                        "caption_source": "original",
                        "original_caption": text,
                    }
                )
    return pl.DataFrame(rows)


def plain_copy(sources: list[Path], target: Path) -> float:
    """The source tars copied file by file (fsync each, as the export's tars get)."""
    target.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for source in sources:
        shutil.copyfile(source, target / source.name)
        with open(target / source.name, "rb+") as handle:
            os.fsync(handle.fileno())
    return time.perf_counter() - started


def plain_file_copy(sources: list[Path], target: Path) -> float:
    """The same images unpacked one file each, as the LLaVA image folder needs them: the floor of
    the store step (no hashing, no atomic rename, no manifest)."""
    started = time.perf_counter()
    for source in sources:
        folder = target / source.name
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(source, "r|") as stream:
            for info in stream:
                if info.name.endswith(".jpg"):
                    (folder / info.name).write_bytes(stream.extractfile(info).read())
    return time.perf_counter() - started


def measure_exports() -> dict:
    from curation_assets.exports.spec import Exports
    from curation_assets.exports.steps import export_mix, export_source_shard
    from curation_assets.mix.draw import mix_pools
    from curation_assets.mix.spec import Mix
    from curation_assets.readers import ShardFile
    from curation_assets.sources import SourceKind

    report: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-exports-") as work:
        work = Path(work)
        pool = write_source_tars(work / "raw" / "caption")
        sources = sorted((work / "raw" / "caption").iterdir())
        source_bytes = sum(path.stat().st_size for path in sources)
        for path in sources:  # warm the page cache for both contenders alike
            path.read_bytes()
        copy_seconds = plain_copy(sources, work / "copy")
        file_copy_seconds = plain_file_copy(sources, work / "file-copy")

        mix = mix_pools({"caption": pool}, Mix(ratio={"caption": 1})).frame
        spec = Exports(webdataset={"samples_per_shard": TAR_SAMPLES})
        out, root = UPath(work / "exports"), UPath(work)

        def run_export() -> tuple[float, float, dict]:
            started = time.perf_counter()
            for path in sources:
                shard = ShardFile(SourceKind.caption, UPath(path), root)
                export_source_shard(shard, pool.filter(pl.col("shard_id") == path.name), mix, out)
            images_seconds = time.perf_counter() - started
            started = time.perf_counter()
            results = export_mix(out, mix, {"caption": pool}, spec)
            return images_seconds, time.perf_counter() - started, results

        images_seconds, global_seconds, results = run_export()
        image_bytes = int(results["webdataset"].manifest["counts"]["image_bytes"])
        rerun_images, rerun_global, rerun = run_export()
        report.update(
            {
                "samples": pool.height,
                "image_mb": image_bytes / 1e6,
                "source_mb": source_bytes / 1e6,
                "copy_seconds": copy_seconds,
                "file_copy_seconds": file_copy_seconds,
                "images_seconds": images_seconds,
                "global_seconds": global_seconds,
                "tar_mb": results["webdataset"].manifest["counts"]["bytes"] / 1e6,
                "rerun_seconds": rerun_images + rerun_global,
                "rerun_files_written": sum(len(r.written) for r in rerun.values()),
            }
        )
    return report


def _in_fresh_process(*args: str) -> dict:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.mix_exports", *args], capture_output=True, text=True, check=True
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run() -> dict[str, dict]:
    figures: dict[str, dict] = {}
    for label, n in MIX_SIZES.items():
        report = _in_fresh_process("--mix", str(n))
        figures[f"mix_{label}_ids_seconds"] = {
            "value": round(report["mix_seconds"], 2),
            "unit": "s",
            "ids": n,
            "mixed_rows": report["mixed_rows"],
            "cpu_seconds": round(report["mix_cpu_seconds"], 2),
            "check_seconds": round(report["check_seconds"], 2),
            "check_cpu_seconds": round(report["check_cpu_seconds"], 2),
            "checks_passed": report["checks_passed"],
        }
        figures[f"mix_{label}_ids_peak_rss_mib"] = {
            "value": report["peak_rss_mib"],
            "unit": "MiB",
            "pools_alone_mib": report["pools_rss_mib"],
        }
    report = _in_fresh_process("--exports")
    copy_rate = report["source_mb"] / report["copy_seconds"]
    export_rate = report["image_mb"] / (report["images_seconds"] + report["global_seconds"])
    figures["export_mb_per_s"] = {
        "value": round(export_rate, 1),
        "unit": "MB/s",
        "samples": report["samples"],
        "image_mb": round(report["image_mb"], 1),
        "store_step_mb_per_s": round(report["image_mb"] / report["images_seconds"], 1),
        "global_step_mb_per_s": round(report["image_mb"] / report["global_seconds"], 1),
    }
    file_copy_rate = report["image_mb"] / report["file_copy_seconds"]
    figures["plain_copy_mb_per_s"] = {"value": round(copy_rate, 1), "unit": "MB/s", "mb": round(report["source_mb"], 1)}
    figures["plain_file_copy_mb_per_s"] = {
        "value": round(file_copy_rate, 1),
        "unit": "MB/s",
        "what": "the same images unpacked one file each (the image folder's floor)",
    }
    figures["export_over_plain_copy"] = {
        "value": round(export_rate / copy_rate, 3),
        "unit": "ratio",
        "store_step_over_file_copy": round(report["image_mb"] / report["images_seconds"] / file_copy_rate, 3),
    }
    figures["export_unchanged_rerun_seconds"] = {
        "value": round(report["rerun_seconds"], 2),
        "unit": "s",
        "files_written": report["rerun_files_written"],
    }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mix", type=int)
    parser.add_argument("--exports", action="store_true")
    args = parser.parse_args()
    if args.mix:
        print(json.dumps(measure_mix(args.mix)))
    elif args.exports:
        print(json.dumps(measure_exports()))
    else:
        for key, figure in run().items():
            print(key, figure)


if __name__ == "__main__":
    main()
