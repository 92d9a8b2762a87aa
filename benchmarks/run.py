"""`make bench`: run every benchmark, print each figure, write them all to benchmarks/results.json."""

from __future__ import annotations

import sys
import time

from benchmarks import captioning, embeddings, ingest, model_availability, rerun, selection
from benchmarks.results import write_results

BENCHMARKS = {
    "ingest": ingest.run,
    "embeddings": embeddings.run,
    "model_availability": model_availability.run,
    "selection": selection.run,
    "rerun": rerun.run,
    "captioning": captioning.run,
}


def main() -> int:
    figures: dict[str, dict] = {}
    for name, run in BENCHMARKS.items():
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
    sys.exit(main())
