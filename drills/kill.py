"""Kill -9 drills: a pipeline killed at the worst moments must finish on the next run, with the same tables.

    python -m drills.kill [--points a,b] [--keep]      (or: make kill-drill)

For each kill point, over a fresh copy of the demo's caption shards: run `make demo`'s in-process
pipeline in a child process armed to SIGKILL itself at that point, then run it again unarmed, and
compare every table with an uninterrupted run's (content versions, row order ignored). Points:

- ingest:          while ingest writes a shard's normalized table (temp file written, not renamed)
- between_events:  after Dagster recorded a shard's normalized materialization, before its quarantine's
- gpu_step:        inside the caption image pass (a model step), holding the `gpu` pool slot
- selection:       inside the global decisions run (keep/drop)
- export_images:   inside mix/exports while it copies a source shard's images into the store
- export_files:    inside mix/exports, half-way through writing a WebDataset tar (staged, not renamed)

Prints drills run and survived; exits non-zero when a re-run fails or its tables differ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POINTS = ("ingest", "between_events", "gpu_step", "selection", "export_images", "export_files")
SHARDS = ("wds-00000.tar", "wds-00001.tar", "llava-00000.json")

# The child process: arm one kill point (by wrapping the function where it sits), then run the demo.
ARMED = """
import os, signal, sys
point = sys.argv[1]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if point == "ingest":
    # Mid-write: the temp file is written and synced, the rename into place never happens.
    from curation_assets import storage
    real_replace = storage.os.replace
    def replace(source, target):
        if "normalized" in str(target) and "wds-00001" in str(target):
            die()
        return real_replace(source, target)
    storage.os.replace = replace
elif point == "between_events":
    from dagster import DagsterInstance
    real = DagsterInstance.handle_new_event
    def handle(self, event, *args, **kwargs):
        result = real(self, event, *args, **kwargs)
        dagster_event = event.dagster_event
        if dagster_event is not None and dagster_event.is_step_materialization:
            key = dagster_event.asset_key.to_user_string()
            if key == "caption/normalized" and dagster_event.partition == "wds-00001.tar":
                die()
        return result
    DagsterInstance.handle_new_event = handle
elif point == "gpu_step":
    from curation_assets.scoring import caption_tables
    from curation_assets import shard_work
    real = shard_work.COMPUTES_TOGETHER[caption_tables.tables.CAPTION_IMAGE_PASS]
    def compute(work, due):
        if work.shard_id == "wds-00001.tar":
            die()
        return real(work, due)
    shard_work.COMPUTES_TOGETHER[caption_tables.tables.CAPTION_IMAGE_PASS] = compute
elif point == "selection":
    from curation_assets.defs import selection
    def decide(*args, **kwargs):
        die()
    selection.decide_samples = decide
elif point == "export_images":
    from curation_assets.exports import image_store
    real_place = image_store._place
    placed = []
    def place(data, root, relative):
        placed.append(relative)
        if len(placed) == 5:
            die()
        return real_place(data, root, relative)
    image_store._place = place
elif point == "export_files":
    from curation_assets.exports import files
    real_write = files.StagedFile.write
    def write(self, data):
        if self.target.name.endswith(".tar") and self.num_bytes > 32_768:
            die()
        return real_write(self, data)
    files.StagedFile.write = write

from curation_assets.local_run import main
sys.exit(main([]))  # argv holds the kill point, not local_run options
"""


def prepare(work: Path) -> dict[str, str]:
    from curation_assets.demo.generate import generate_demo_data
    from curation_assets_tests.helpers import keep_only

    root, home = work / "data", work / "dagster_home"
    generate_demo_data(root)
    keep_only(root, SHARDS)
    home.mkdir()
    from curation_assets.local_run import local_instance_env

    return local_instance_env(root, home, REPO / "curation_assets/recipes/smoke.yaml")


def run_demo(env: dict[str, str], point: str | None) -> int:
    command = [sys.executable, "-c", ARMED, point] if point else [sys.executable, "-m", "curation_assets.local_run"]
    return subprocess.run(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode


def table_versions(root: Path) -> dict[str, str]:
    """Every table file under the data root (not raw/) -> its content version."""
    import polars as pl

    from curation_assets.table_store import content_version

    versions = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] == "raw" or not path.is_file():
            continue
        if path.name.startswith("."):
            versions[str(relative)] = "a leftover temp file of an interrupted write"
            continue
        if path.suffix == ".parquet":
            # The index's `inputs` are storage ids of this instance's events, and the eval history's
            # `recorded_at` the time of each eval: bookkeeping, not content.
            frame = pl.read_parquet(path).drop("inputs", "recorded_at", strict=False)
            versions[str(relative)] = content_version(frame)
        elif relative.parts[0] == "eval" and path.suffix == ".json":  # an eval report: all but its timings
            report = {k: v for k, v in json.loads(path.read_text()).items() if k != "seconds"}
            versions[str(relative)] = hashlib.sha256(json.dumps(report, sort_keys=True).encode()).hexdigest()
        else:  # json, jsonl, tars, images: their bytes
            versions[str(relative)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return versions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", default=",".join(POINTS))
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    points = [point for point in args.points.split(",") if point]
    work = Path(tempfile.mkdtemp(prefix="kill-drill-"))
    print(f"kill drills in {work}")

    baseline_env = prepare(work / "baseline")
    if run_demo(baseline_env, None) != 0:
        print("the uninterrupted baseline run failed", file=sys.stderr)
        return 2
    baseline = table_versions(Path(baseline_env["CURATION_DATA_ROOT"]))

    survived, problems = 0, []
    for point in points:
        env = prepare(work / point)
        killed = run_demo(env, point)
        if killed != -signal.SIGKILL:
            problems.append(f"{point}: the armed run was not killed (exit {killed}): the kill point never came")
            continue
        rerun = run_demo(env, None)
        tables = table_versions(Path(env["CURATION_DATA_ROOT"]))
        differing = sorted(name for name in baseline.keys() | tables.keys() if baseline.get(name) != tables.get(name))
        if rerun != 0:
            problems.append(f"{point}: the re-run after the kill failed (exit {rerun})")
        elif differing:
            problems.append(f"{point}: {len(differing)} tables differ from an uninterrupted run: {differing[:5]}")
        else:
            survived += 1
        print(f"  {point}: killed, re-run {'ok' if rerun == 0 else 'FAILED'}, {len(differing)} tables differ")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{len(points)} kill drills, {survived} survived")
    for problem in problems:
        print(f"  {problem}")
    return 0 if survived == len(points) else 1


if __name__ == "__main__":
    sys.exit(main())
