"""Where a first run's time goes: 10 shards of real COCO photos (100 pairs each, as scoring_pass.py
writes them) from nothing to the curated pool, with the smoke recipe without its eval (tiny models:
the share is what a small model would see; a real one only shrinks it). Two paths:

- `orchestration`: in process, `make demo`'s runner;
- `orchestration_daemon`: the path `make ui` takes, `dagster dev` (webserver, daemon, the new-shard
  and automation sensors) started over the 10 shards, timed from the moment it answers to the end of
  the last run once the pipeline is quiet. Ticks are part of it: the sensors' 30 s intervals
  (CURATION_SENSOR_INTERVAL_SECONDS) are waits a user sees.

Read back from the instance's event log after the run, per run and step:
- computation: inside our code, per shard (`shard_seconds` of each per-shard step: read, decode,
  forwards, writes), less the model loads it includes; a global step counts whole as computation
  (its body is all there is to it), so the share below is a lower bound;
- model loads: the "loaded <model> in <s>" lines the model resources log;
- in-step overhead: step time outside the shard loop (resource init, metadata and event writes);
- outside steps: everything else (planning, run creation, ticks, events between steps).

Orchestration share = (wall - computation) / wall. Under the daemon the runs overlap and contend for
the cores, so its computation is taken from the in-process run over a copy of the same corpus.
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

LOADED = re.compile(r"loaded .* in ([0-9.]+)s")


def step_breakdown(instance, run_ids: list[str]) -> dict[str, float]:
    """Seconds in steps (all, and those over every shard), in per-shard computation and in model
    loads, over the given runs."""
    from dagster import DagsterEventType

    ends = (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE)
    totals = {"step_seconds": 0.0, "global_step_seconds": 0.0, "shard_seconds": 0.0, "load_seconds": 0.0}
    for run_id in run_ids:
        starts: dict[str, float] = {}
        durations: dict[str, float] = {}
        shard_loops: set[tuple[str, str]] = set()
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None:
                match = LOADED.search(entry.user_message or "")
                totals["load_seconds"] += float(match.group(1)) if match else 0.0
                continue
            step = event.step_key or ""
            if event.event_type == DagsterEventType.STEP_START:
                starts[step] = entry.timestamp
            elif event.event_type in ends:
                durations[step] = entry.timestamp - starts.pop(step, entry.timestamp)
            elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
                materialization = event.step_materialization_data.materialization
                seconds = materialization.metadata.get("shard_seconds")
                # A pass's tables share one shard loop: count it once per step and shard.
                if seconds is not None and (step, materialization.partition) not in shard_loops:
                    shard_loops.add((step, materialization.partition))
                    totals["shard_seconds"] += float(seconds.value)
        per_shard_steps = {step for step, _ in shard_loops}
        totals["step_seconds"] += sum(durations.values())
        totals["global_step_seconds"] += sum(d for step, d in durations.items() if step not in per_shard_steps)
    return totals


def first_run_in_process(root: Path, home: Path) -> dict:
    from dagster import instance_for_test

    from curation_assets.definitions import build_definitions
    from curation_assets.defs.local_runner import run_automation
    from curation_assets.local_run import tick_shard_sensors
    from curation_assets.recipe import PACKAGED_RECIPES, load_recipe

    recipe = load_recipe(PACKAGED_RECIPES / "smoke.yaml").without_evaluation()
    with instance_for_test(temp_dir=str(home)) as instance:
        defs = build_definitions(str(root), recipe)
        started = time.monotonic()
        tick_shard_sensors(instance, defs, log=lambda _: None)
        runs = run_automation(instance, defs, log=lambda _: None)
        wall = time.monotonic() - started
        assert all(run.success for run in runs), [run.assets for run in runs if not run.success]
        parts = step_breakdown(instance, [run.run_id for run in runs])
    computation = parts["shard_seconds"] - parts["load_seconds"] + parts["global_step_seconds"]
    return {"wall": wall, "runs": len(runs), "computation": computation, **parts}


def idle_seconds(intervals: list[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of [start, end] during which none of the (start, end) intervals was running."""
    covered, reach = 0.0, start
    for begin, finish in sorted(intervals):
        begin, finish = max(begin, reach), min(finish, end)
        if finish > begin:
            covered += finish - begin
            reach = finish
    return (end - start) - covered


def recipe_without_eval(folder: Path) -> Path:
    """The smoke recipe's file without its `evaluation` section (what the in-process run uses)."""
    import yaml

    from curation_assets.recipe import PACKAGED_RECIPES

    recipe = yaml.safe_load((PACKAGED_RECIPES / "smoke.yaml").read_text())
    recipe.pop("evaluation", None)
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def first_run_daemon(root: Path, home: Path, timeout_s: float = 1800) -> dict:
    """`dagster dev` over the shards under root, until quiet; the runs' breakdown from its event log."""
    import os
    import signal
    import subprocess
    import sys

    from dagster import DagsterInstance

    from curation_assets.local_run import local_instance_env
    from drills.new_shard import REPO, free_port, wait_for_server, wait_until_quiet

    env = local_instance_env(root, home, recipe_without_eval(home.parent))
    port = free_port()
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml")]
    with open(home.parent / "dagster_dev.log", "w") as log_file:
        server = subprocess.Popen(
            command, env=env, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.time() + timeout_s
            wait_for_server(port, deadline)
            ready = time.time()
            runs = wait_until_quiet(port, 0, deadline, lambda _: None)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:  # seen once under load: dagster dev ignoring SIGTERM for 60 s
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
    failed = [run["runId"] for run in runs if run["status"] != "SUCCESS"]
    if failed:
        raise RuntimeError(f"{len(failed)} run(s) failed under the daemon; see {home.parent}/dagster_dev.log")
    end = max(run["endTime"] for run in runs)
    intervals = [(run["startTime"], run["endTime"]) for run in runs]
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with DagsterInstance.get() as instance:
            parts = step_breakdown(instance, [run["runId"] for run in runs])
    finally:
        os.environ.pop("DAGSTER_HOME") if previous is None else os.environ.update(DAGSTER_HOME=previous)
    computation = parts["shard_seconds"] - parts["load_seconds"] + parts["global_step_seconds"]
    return {
        "wall": end - ready,
        "runs": len(runs),
        "computation": computation,
        "first_run_started_after": min(run["startTime"] for run in runs) - ready,
        "no_run_running": idle_seconds(intervals, ready, end),
        "in_runs": sum(finish - begin for begin, finish in intervals),
        **parts,
    }


def run_daemon() -> dict[str, dict]:
    """The daemon's first run next to the in-process one over the same corpus. Runs under the daemon
    overlap (ten ingest runs start together) and contend for the cores, so the time inside their
    steps overstates the work; the work is the in-process run's computation, and the daemon's share
    is the part of its wall time beyond that."""
    import shutil

    from benchmarks.scoring_pass import COCO, coco_pairs, replicated_samples, write_tar_corpus

    pairs = coco_pairs()
    if not pairs:
        print(f"  orchestration_daemon: skipped, no COCO photos at {COCO}")
        return {}
    with tempfile.TemporaryDirectory(prefix="bench-orchestration-daemon-") as folder:
        base = Path(folder)
        write_tar_corpus(base / "corpus", replicated_samples(pairs))
        measured = {}
        for path in ("in_process", "daemon"):
            root, home = base / path / "data", base / path / "home"
            shutil.copytree(base / "corpus", root)
            home.mkdir()
            run = first_run_in_process if path == "in_process" else first_run_daemon
            measured[path] = run(root, home)
    daemon, work = measured["daemon"], measured["in_process"]["computation"]
    wall = daemon["wall"]
    interval = sensor_interval()
    suffix = "" if interval == 30 else f"_interval_{interval}s"
    return {
        f"orchestration_share_first_run_daemon{suffix}": {
            "value": round((wall - work) / wall, 3),
            "unit": "share",
            "wall_s": round(wall, 1),
            "computation_in_process_s": round(work, 1),
            "in_process_wall_s": round(measured["in_process"]["wall"], 1),
            "daemon_in_steps_s": round(daemon["step_seconds"], 1),
            "daemon_shard_loops_s": round(daemon["shard_seconds"], 1),
            "daemon_in_runs_s": round(daemon["in_runs"], 1),
            "no_run_running_s": round(daemon["no_run_running"], 1),
            "first_run_started_after_s": round(daemon["first_run_started_after"], 1),
            "model_loads_s": round(daemon["load_seconds"], 1),
            "runs": daemon["runs"],
            "sensor_interval_s": interval,
            "corpus": "10 WebDataset shards x 100 COCO photos (re-encoded copies), smoke recipe, no eval",
            "note": "wall: from `dagster dev` answering to the last run's end; share: the part of it beyond "
            "the in-process run's computation on the same corpus; runs overlap, so in-steps and in-runs "
            "sums exceed the wall",
        }
    }


def sensor_interval() -> int:
    from curation_assets.defs.sensors import SCAN_INTERVAL_SECONDS

    return SCAN_INTERVAL_SECONDS


def run() -> dict[str, dict]:
    from benchmarks.scoring_pass import COCO, coco_pairs, replicated_samples, write_tar_corpus

    pairs = coco_pairs()
    if not pairs:
        print(f"  orchestration: skipped, no COCO photos at {COCO}")
        return {}
    with tempfile.TemporaryDirectory(prefix="bench-orchestration-") as folder:
        root, home = Path(folder) / "data", Path(folder) / "home"
        home.mkdir()
        write_tar_corpus(root, replicated_samples(pairs))
        measured = first_run_in_process(root, home)
    wall = measured["wall"]
    in_steps = measured["step_seconds"]
    shard_steps = in_steps - measured["global_step_seconds"]
    return {
        "orchestration_share_first_run_in_process": {
            "value": round((wall - measured["computation"]) / wall, 3),
            "unit": "share",
            "wall_s": round(wall, 1),
            "computation_s": round(measured["computation"], 1),
            "model_loads_s": round(measured["load_seconds"], 1),
            "per_shard_steps_outside_shard_loop_s": round(shard_steps - measured["shard_seconds"], 1),
            "outside_steps_s": round(wall - in_steps, 1),
            "runs": measured["runs"],
            "corpus": "10 WebDataset shards x 100 COCO photos (re-encoded copies), smoke recipe, no eval",
            "note": "global steps count whole as computation: a lower bound on the share",
        }
    }


if __name__ == "__main__":
    import sys

    for key, figure in (run_daemon() if "daemon" in sys.argv[1:] else run()).items():
        print(key, figure)
