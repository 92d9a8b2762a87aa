"""`python -m curation_assets.evaluation`: the proxy eval on any candidate pools and eval sets,
outside Dagster, printing one JSON report (for comparing sets by hand, and for CI).

    python -m curation_assets.evaluation \\
        --eval coco=evals/coco_val.jsonl \\
        --pool curated=data/caption/curated/wds-00000.tar.parquet,data/caption/curated/wds-00001.tar.parquet \\
        --unfiltered data/raw/caption/wds-00000.tar,data/raw/caption/wds-00001.tar \\
        --data-root data --features-dir data/caption/proxy_features
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

from curation_assets.evaluation.settings import Evaluation

_RESERVED_SEPARATORS = ("/", ",")


def parse_named(value: str, what: str) -> tuple[str, list[str]]:
    """'name=path1,path2' -> (name, [path1, path2])."""
    name, sep, paths = value.partition("=")
    if not sep or not name or not paths:
        raise argparse.ArgumentTypeError(f"{what} must be NAME=PATH[,PATH...], got {value!r}")
    if any(s in name for s in _RESERVED_SEPARATORS):
        raise argparse.ArgumentTypeError(f"{what} name {name!r} may not contain '/' or ','")
    return name, [p for p in paths.split(",") if p]


def load_settings(recipe: str | None, args: argparse.Namespace) -> Evaluation:
    """The recipe's `evaluation` section (defaults without a recipe), then command-line overrides."""
    section = {}
    if recipe:
        data = yaml.safe_load(Path(recipe).read_text()) or {}
        section = data.get("evaluation") or {}
    settings = Evaluation.model_validate(section)
    proxy = settings.proxy.model_dump()
    for field in ("steps", "batch_size", "embed_dim"):
        if getattr(args, field) is not None:
            proxy[field] = getattr(args, field)
    if args.seeds is not None:
        proxy["seeds"] = [int(s) for s in args.seeds.split(",")]
    baselines = settings.baselines.model_dump()
    if args.no_baselines:
        baselines = {"random": False, "all": False}
    return Evaluation.model_validate({**settings.model_dump(), "proxy": proxy, "baselines": baselines})


def recipe_eval_sets(recipe: str | None, settings: Evaluation) -> list[tuple[str, list[str], str | None]]:
    """(name, [path], image root) of the recipe's eval sets, relative paths resolved against the recipe."""
    base = Path(recipe).resolve().parent if recipe else Path.cwd()
    return [
        (name, [str(base / spec.path)], str(base / spec.image_root) if spec.image_root else None)
        for name, spec in settings.eval_sets.items()
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m curation_assets.evaluation",
        description="Proxy eval (frozen encoders + trained linear heads, compute-matched) of candidate pools; "
        "prints a JSON report.",
    )
    parser.add_argument(
        "--pool",
        action="append",
        required=True,
        type=lambda v: parse_named(v, "--pool"),
        help="candidate pool NAME=PATH[,PATH...]: caption shards, curated-pool / normalized parquet tables "
        "(need --data-root) or pair bundles; repeat for several pools (the first gets the sensitivity check)",
    )
    parser.add_argument(
        "--eval",
        action="append",
        type=lambda v: parse_named(v, "--eval"),
        help="eval set NAME=PATH[,PATH...] in any caption shard format or a pair bundle; repeat for several "
        "(default: the recipe's evaluation.eval_sets)",
    )
    parser.add_argument("--unfiltered", help="the unfiltered pool PATH[,PATH...] for the random and all baselines")
    parser.add_argument("--data-root", help="data root of curated / normalized tables (their raw shards live there)")
    parser.add_argument("--features-dir", help="folder of stored per-shard feature tables (<shard_id>.parquet)")
    parser.add_argument("--recipe", help="recipe YAML whose `evaluation` section sets encoders and training")
    parser.add_argument("--steps", type=int, help="override evaluation.proxy.steps")
    parser.add_argument("--batch-size", type=int, help="override evaluation.proxy.batch_size")
    parser.add_argument("--embed-dim", type=int, help="override evaluation.proxy.embed_dim")
    parser.add_argument("--seeds", help="override evaluation.proxy.seeds, e.g. 0,1,2,3,4")
    parser.add_argument("--no-baselines", action="store_true", help="skip the random and all baselines")
    parser.add_argument("--device", default="auto", help="encoder device: auto (cuda > mps > cpu), cpu, cuda:0")
    parser.add_argument("--workers", type=int, default=2, help="image decoding workers")
    parser.add_argument("--output", help="also write the report to this file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings(args.recipe, args)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731 - stdout is the JSON

    from curation_assets.evaluation.encoders import load_encoders
    from curation_assets.evaluation.pools import load_pairs
    from curation_assets.evaluation.protocol import run_proxy_eval

    loaded = []  # the encoders load on first need: pair bundles and stored feature tables need none

    def encoders():
        if not loaded:
            started = time.perf_counter()
            loaded.append(load_encoders(settings.encoders, device=args.device))
            log(f"loaded {loaded[0].identity} in {time.perf_counter() - started:.1f}s")
        return loaded[0]

    eval_args = [(name, paths, None) for name, paths in args.eval or []] or recipe_eval_sets(args.recipe, settings)
    if not eval_args:
        build_parser().error("no eval set: give --eval NAME=PATH or a --recipe with evaluation.eval_sets")
    started = time.perf_counter()
    common = {"data_root": args.data_root, "features_dir": args.features_dir, "num_workers": args.workers}
    pools = {name: load_pairs(name, paths, encoders, **common) for name, paths in args.pool}
    eval_sets = {}
    for name, paths, image_root in eval_args:
        # An eval set's images stay under its own folder (or the recipe's image_root), not the data root.
        eval_sets[name] = load_pairs(name, paths, encoders, **{**common, "data_root": image_root})
    unfiltered = load_pairs("unfiltered", args.unfiltered.split(","), encoders, **common) if args.unfiltered else None
    feature_seconds = time.perf_counter() - started
    report = run_proxy_eval(pools, eval_sets, settings, unfiltered=unfiltered, log=log)
    report["seconds"]["features"] = round(feature_seconds, 3)
    report["encoders"] = loaded[0].identity if loaded else "none loaded (pair bundles / stored feature tables)"
    text = json.dumps(report, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n")
    print(text)
    return 0 if report["sensitivity"]["passed"] or settings.sensitivity.severity == "warn" else 1
