"""A stand-in for an external train/eval command (Mini-Gemini stage 1 + benchmarks), run by the
external_results asset through Dagster Pipes: it reads the LLaVA export the way a trainer does,
"trains" by counting, and reports metrics (and a check) through dagster-pipes.

    python -m curation_assets_tests.external_trainer --llava X --images DIR --out DIR [--fail-after N] [--check NAME]
"""

import argparse
import json
import sys
from pathlib import Path

from dagster_pipes import open_dagster_pipes
from PIL import Image


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--llava", required=True)
    parser.add_argument("--images", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--fail-after", type=int, default=None, help="exit 3 after this many samples")
    parser.add_argument("--check", default=None, help="report this asset check (passes with 2 samples or more)")
    args = parser.parse_args()
    with open_dagster_pipes() as pipes:
        samples = json.loads(Path(args.llava).read_text())
        for count, sample in enumerate(samples, start=1):
            with Image.open(Path(args.images) / sample["image"]) as image:
                image.load()
            print(f"step {count}: {sample['id']}", flush=True)
            if args.fail_after is not None and count >= args.fail_after:
                print("CUDA out of memory (simulated)", flush=True)
                return 3
        (Path(args.out) / "checkpoint.txt").write_text(f"{len(samples)} samples\n")
        pipes.report_asset_materialization(
            metadata={"textvqa/accuracy": round(len(samples) / (len(samples) + 10), 4), "samples": len(samples)}
        )
        if args.check:
            pipes.report_asset_check(args.check, passed=len(samples) >= 2, metadata={"samples": len(samples)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
