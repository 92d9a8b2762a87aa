"""Drop one new shard under the real daemon and check that automation converges correctly.

    python -m drills.new_shard [--keep] [--timeout-minutes 30]      (or: make drill)

Starts `dagster dev` (webserver + daemon, the path `make ui` takes) on 127.0.0.1 over a copy of the
demo that is settled first, drops a new caption shard into raw/caption/, polls GraphQL until
quiet (no run queued or in progress, and the automation sensor has ticked twice since), and asserts:

- nothing stale or unsynced: every asset and every partition FRESH by Dagster's own resolver (the
  one behind the UI's badges), and the automation sensor requests nothing more;
- no pair in the curated pool that dedup marks as a duplicate of another kept pair;
- no per-shard model step ran on an old shard;
- every run succeeded, and the eval (when the recipe has one) ran exactly once.

Prints the runs and minutes it took; exits non-zero when an assertion fails. Not in CI: it takes
minutes and starts servers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUIET_TICKS = 2
POLL_SECONDS = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.loads(response.read())
    if payload.get("errors"):
        raise RuntimeError(f"GraphQL errors: {payload['errors']}")
    return payload["data"]


RUNS = """
query Runs($after: Float) {
  runsOrError(filter: {createdAfter: $after}) {
    ... on Runs { results { runId status tags { key value } assetSelection { path } startTime endTime } }
  }
}
"""
SENSOR_TICKS = """
query Ticks($name: String!) {
  sensorOrError(sensorSelector: {repositoryName: "__repository__", repositoryLocationName: "curation_assets",
                                 sensorName: $name}) {
    ... on Sensor { sensorState { status ticks(limit: 5) { timestamp status } } }
    ... on SensorNotFoundError { message }
    ... on PythonError { message }
  }
}
"""


def runs_since(port: int, since: float) -> list[dict]:
    return graphql(port, RUNS, {"after": since})["runsOrError"]["results"]


def automation_ticks(port: int) -> list[dict]:
    data = graphql(port, SENSOR_TICKS, {"name": "curation_automation"})["sensorOrError"]
    if "sensorState" not in data:  # a wrong selector would otherwise read as "no ticks yet" forever
        raise RuntimeError(f"cannot read the automation sensor's ticks: {data.get('message', data)}")
    return (data.get("sensorState") or {}).get("ticks") or []


def wait_for_server(port: int, deadline: float) -> None:
    while time.time() < deadline:
        try:
            graphql(port, "{ version }")
            return
        except OSError:
            time.sleep(2)
    raise TimeoutError("the webserver did not answer")


def wait_until_quiet(port: int, since: float, deadline: float, log) -> list[dict]:
    """Runs since `since`, once none is queued or running and the automation sensor ticked twice after
    the last one ended."""
    while time.time() < deadline:
        runs = runs_since(port, since)
        busy = [run for run in runs if run["status"] in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")]
        last_end = max((run["endTime"] or 0 for run in runs), default=since)
        later_ticks = [t for t in automation_ticks(port) if t["timestamp"] > last_end]
        log(f"  {len(runs)} runs, {len(busy)} busy, {len(later_ticks)} automation ticks since the last one")
        if runs and not busy and len(later_ticks) >= QUIET_TICKS:
            return runs
        time.sleep(POLL_SECONDS)
    raise TimeoutError("the pipeline did not go quiet in time")


def run_assets(run: dict) -> set[str]:
    return {"/".join(asset["path"]) for asset in run["assetSelection"] or []}


def check_converged(root: Path, home: Path, new_shard: str, runs: list[dict]) -> list[str]:
    """The drill's assertions, against the instance and the tables on disk; returns what failed."""
    os.environ["DAGSTER_HOME"] = str(home)
    from dagster import DagsterInstance

    from curation_assets import registry
    from curation_assets.definitions import build_definitions
    from curation_assets.defs.local_runner import AutomationState, tick
    from curation_assets.table_store import TableStore
    from curation_assets_tests.staleness import StaleStatus, stale_status

    problems = []
    defs = build_definitions(str(root))
    graph = defs.resolve_asset_graph()
    with DagsterInstance.get() as instance:
        for asset in graph.materializable_asset_keys:
            node = graph.get(asset)
            partitions = (
                sorted(instance.get_dynamic_partitions(node.partitions_def.name)) if node.partitions_def else [None]
            )
            for partition in partitions:
                status = stale_status(instance, defs, asset, partition)
                if status != StaleStatus.FRESH:
                    problems.append(f"{asset.to_user_string()} {partition or ''}: {status.value}")
        left = tick(instance, defs, AutomationState())
        if left:
            problems.append(f"automation still requests {len(left)} run(s)")
    store = TableStore(root)
    decisions = store.read(registry.FILTERED)
    pool = store.read(registry.CURATED, columns=["sample_id"])
    duplicates_kept = decisions.filter(decisions["drop_rule"] == "dedup").join(pool, on="sample_id", how="semi")
    if duplicates_kept.height:
        problems.append(f"{duplicates_kept.height} pairs in the curated pool are dedup losers")
    groups = store.read(registry.DEDUP).join(pool, on="sample_id", how="semi")
    crowded = groups.group_by("group_id").len().filter(groups.group_by("group_id").len()["len"] > 1)
    if crowded.height:
        problems.append(f"{crowded.height} duplicate groups have more than one pair in the pool")
    failed = [run["runId"] for run in runs if run["status"] != "SUCCESS"]
    if failed:
        problems.append(f"{len(failed)} run(s) did not succeed: {failed}")
    # A new shard moves the mix, so an eval is due: exactly once, after the mix settled.
    if registry.EVAL_RESULTS.qualified_name in {asset.to_user_string() for asset in graph.materializable_asset_keys}:
        evals = [run for run in runs if registry.EVAL_RESULTS.qualified_name in run_assets(run)]
        if len(evals) != 1:
            problems.append(f"the eval ran {len(evals)} times for one new shard (expected once)")
    model_tables = {spec.qualified_name for spec in registry.TABLES if spec.gpu}
    for run in runs:
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        shard_tags = ("dagster/partition", "dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
        shards = {tags.get(tag) for tag in shard_tags} - {None}
        assets = run_assets(run)
        if assets & model_tables and shards - {new_shard}:
            problems.append(f"run {run['runId']} ran model tables {sorted(assets & model_tables)} on {sorted(shards)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the drill's folder for a look")
    parser.add_argument("--timeout-minutes", type=float, default=30)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="drill-"))
    root, home = work / "data", work / "dagster_home"
    home.mkdir()
    from curation_assets.local_run import local_instance_env

    recipe = os.environ.get("CURATION_RECIPE", str(REPO / "curation_assets/recipes/smoke.yaml"))
    env = local_instance_env(root, home, recipe)
    os.environ.update(env)
    python = sys.executable
    print(f"drill in {work}")
    subprocess.run(
        [python, "-m", "curation_assets.demo", "--root", str(root)], env=env, check=True, stdout=subprocess.DEVNULL
    )
    print("settling the demo in-process (the same automation the daemon runs)...")
    subprocess.run([python, "-m", "curation_assets.local_run"], env=env, check=True, stdout=subprocess.DEVNULL)

    port = free_port()
    log_file = open(work / "dagster_dev.log", "w")  # closed in the finally below
    dagster = str(Path(python).with_name("dagster"))
    command = [dagster, "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml")]
    server = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.time() + args.timeout_minutes * 60
    try:
        wait_for_server(port, deadline)
        print(f"dagster dev on http://127.0.0.1:{port}; waiting for it to settle...")
        wait_until_quiet(port, 0, min(deadline, time.time() + 600), print) if runs_since(port, 0) else time.sleep(60)

        from curation_assets.demo.many_shards import write_tiny_shards

        dropped = time.time()
        [path] = write_tiny_shards(root / "raw" / "caption", 1, rows=28, start=9000)
        print(f"dropped {path.name} at {time.strftime('%H:%M:%S')}; polling GraphQL until quiet...")
        runs = wait_until_quiet(port, dropped, deadline, print)
        minutes = (max(run["endTime"] or 0 for run in runs) - dropped) / 60
        problems = check_converged(root, home, path.name, runs)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        log_file.close()
    print(f"\none new shard: {len(runs)} runs, {minutes:.1f} minutes from drop to the last run's end")
    for run in sorted(runs, key=lambda r: r["startTime"] or 0):
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        assets = ", ".join("/".join(a["path"]) for a in run["assetSelection"] or [])
        print(f"  {run['status']:<8} {tags.get('dagster/partition', '')} {assets}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    if problems:
        print("\nFAILED:\n  " + "\n  ".join(problems))
        return 1
    print("\nconverged: nothing stale, every run succeeded, no duplicate in the pool, no model step on an old shard")
    return 0


if __name__ == "__main__":
    sys.exit(main())
