"""`python -m curation_assets.demo --root data [--seed 0] [--force]`: write the demo corpus."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from .generate import MANIFEST_NAME, QUARANTINE_REASONS, generate_demo_data


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m curation_assets.demo",
        description="Write a small deterministic multimodal demo corpus (with planted defects) under ROOT/raw.",
    )
    parser.add_argument("--root", type=Path, default=Path("data"), help="data root (default: data)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes (default: 0)")
    parser.add_argument("--force", action="store_true", help="delete ROOT/raw and regenerate it")
    return parser.parse_args(argv)


def _holds_files(directory: Path) -> bool:
    return directory.is_dir() and any(p.is_file() or p.is_symlink() for p in directory.rglob("*"))


def branch_summary(manifest: dict) -> list[str]:
    """Per source kind: valid rows and the readable defects planted for its filters and dedup."""
    lines = []
    for kind in ("caption", "interleaved", "text"):
        entries = [entry for name, entry in manifest.items() if name.startswith(f"{kind}/")]
        planted: dict[str, int] = {}
        for entry in entries:
            for defect, keys in entry["defects"].items():
                if defect not in QUARANTINE_REASONS:
                    planted[defect] = planted.get(defect, 0) + len(keys)
        defects = ", ".join(f"{name}={count}" for name, count in sorted(planted.items()))
        lines.append(f"{kind}: {sum(e['valid'] for e in entries)} valid rows; planted for the rules: {defects}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    raw = args.root / "raw"
    if _holds_files(raw):
        if not args.force:
            print(
                f"refusing to overwrite: {raw} already holds files. Re-run with --force to replace them.",
                file=sys.stderr,
            )
            return 1
        # Start from an empty raw/ so files from an older layout cannot linger among the new ones.
        shutil.rmtree(raw)
    started = time.perf_counter()
    manifest = generate_demo_data(args.root, seed=args.seed)
    elapsed = time.perf_counter() - started

    width = max(len(name) for name in manifest)
    for name, entry in manifest.items():
        reasons = ", ".join(f"{reason}={count}" for reason, count in entry["quarantine"].items())
        quarantined = entry["rows"] - entry["valid"]
        print(
            f"{name:<{width}}  rows={entry['rows']:<3} valid={entry['valid']:<3} "
            f"quarantined={quarantined}" + (f" ({reasons})" if reasons else "")
        )
    for line in branch_summary(manifest):
        print(line)
    total_rows = sum(entry["rows"] for entry in manifest.values())
    print(
        f"wrote {len(manifest)} shards ({total_rows} rows) under {raw} in {elapsed:.1f}s; "
        f"expected outcomes in {args.root / MANIFEST_NAME}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
