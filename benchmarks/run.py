"""`make bench`: run every benchmark, print each figure, write them all to benchmarks/results.json."""

from __future__ import annotations

import sys
import time

from benchmarks import (
    branches,
    captioning,
    data_juicer_compare,
    embeddings,
    incremental,
    ingest,
    mix_exports,
    model_availability,
    orchestration,
    proxy_eval,
    rerun,
    scoring_pass,
    selection,
    whatif,
)
from benchmarks.results import write_results

BENCHMARKS = {
    "ingest": ingest.run,
    "embeddings": embeddings.run,
    "model_availability": model_availability.run,
    "selection": selection.run,
    "rerun": rerun.run,
    "captioning": captioning.run,
    "scoring_pass": scoring_pass.run,
    "orchestration": orchestration.run,
    "orchestration_daemon": orchestration.run_daemon,
    "data_juicer_compare": data_juicer_compare.run,
    "incremental": incremental.run,
    "branches": branches.run,
    "mix_exports": mix_exports.run,
    "proxy_eval": proxy_eval.run,
    "whatif": whatif.run,
}


def main(argv: list[str]) -> int:
    """`python -m benchmarks.run [name ...]`: every benchmark, or the named ones."""
    unknown = set(argv) - set(BENCHMARKS)
    if unknown:
        print(f"unknown benchmark(s) {sorted(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    figures: dict[str, dict] = {}
    for name, run in BENCHMARKS.items():
        if argv and name not in argv:
            continue
        started = time.monotonic()
        print(f"== {name}", flush=True)
        results = run()
        for key, figure in results.items():
            extra = {k: v for k, v in figure.items() if k not in ("value", "unit")}
            print(f"  {key:<42} {figure['value']:>12} {figure['unit']:<8} {extra if extra else ''}", flush=True)
        figures.update(results)
        print(f"  ({time.monotonic() - started:.0f}s)", flush=True)
    print(f"wrote {write_results(figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
