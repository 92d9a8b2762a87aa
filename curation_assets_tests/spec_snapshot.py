"""A snapshot of every asset spec, so a change to the graph's shape shows up as a diff in review.

`make snapshot` rewrites snapshots/asset_graph.json; test_registry compares the definitions to it.
Built from the packaged smoke and default recipes (their code versions differ by recipe).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).with_name("snapshots") / "asset_graph.json"


def graph_snapshot(recipe_name: str) -> dict[str, Any]:
    from curation_assets.definitions import build_definitions
    from curation_assets.recipe import PACKAGED_RECIPES, load_recipe

    defs = build_definitions("/nonexistent-data-root", load_recipe(PACKAGED_RECIPES / recipe_name))
    graph = defs.resolve_asset_graph()
    checks: dict[str, list[str]] = {}
    for check_key in graph.asset_check_keys:
        checks.setdefault(check_key.asset_key.to_user_string(), []).append(check_key.name)
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        condition = node.automation_condition
        assets[key.to_user_string()] = {
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "partitions": node.partitions_def.name if node.partitions_def else None,
            "code_version": node.code_version,
            "pool": sorted(node.pools) if node.pools else None,
            "group": node.group_name,
            "automation": (condition.get_label() or condition.name) if condition else None,
            "checks": sorted(checks.get(key.to_user_string(), [])),
        }
    return assets


def current() -> dict[str, Any]:
    return {recipe: graph_snapshot(recipe) for recipe in ("smoke.yaml", "default.yaml")}


def main(argv: list[str]) -> int:
    if argv[1:] != ["--update"]:
        print("usage: python -m curation_assets_tests.spec_snapshot --update", file=sys.stderr)
        return 2
    SNAPSHOT.parent.mkdir(exist_ok=True)
    SNAPSHOT.write_text(json.dumps(current(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SNAPSHOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
