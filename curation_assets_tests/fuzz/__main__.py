"""The long fuzz run (`make fuzz`): many generated and damaged shards of every format.

    python -m curation_assets_tests.fuzz [--cases N] [--formats a,b] [--seed S]

Prints, per format and in total: cases, crashes (exceptions, hangs, reader_error rows; target 0),
rows lost (rows the independent counter sees that are in neither table; target 0), rows the reader
missed (rescued as `unread_row`; target 0), duplicate sample ids and image refs that do not read
back. Exits non-zero when any of them is not 0.
"""

from __future__ import annotations

import argparse
import faulthandler
import sys
import time
from collections import Counter

from hypothesis import HealthCheck, Phase, given, seed, settings

from curation_assets_tests.fuzz.check import CASE_SECONDS, CaseReport, check_shard, scratch_root
from curation_assets_tests.fuzz.strategies import FORMATS

COLUMNS = ("cases", "rows", "crashes", "rows_lost", "reader_missed", "rows_extra", "duplicate_ids", "bad_refs")


def run_format(name: str, cases: int, run_seed: int, examples: list) -> Counter:
    totals: Counter = Counter()

    @seed(run_seed)
    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # every case counts once; no shrinking of what is only being counted
        suppress_health_check=list(HealthCheck),
    )
    @given(FORMATS[name])
    def one_case(case):
        # A hang inside native code never returns to Python for the signal: dump and exit instead.
        faulthandler.dump_traceback_later(CASE_SECONDS * 3, exit=True)
        try:
            with scratch_root() as root:
                report = check_shard(case.write(root))
        finally:
            faulthandler.cancel_dump_traceback_later()
        add(totals, report)
        if report.problems() and len(examples) < 10:
            examples.append((name, case.story, report.problems()))

    one_case()
    return totals


def add(totals: Counter, report: CaseReport) -> None:
    totals["cases"] += 1
    totals["rows"] += report.counted
    totals["crashes"] += int(report.crashed)
    totals["rows_lost"] += report.rows_lost
    totals["reader_missed"] += report.unread_rows
    totals["rows_extra"] += report.rows_extra
    totals["duplicate_ids"] += report.duplicate_ids
    totals["bad_refs"] += len(report.ref_mismatches)
    for reason, count in report.reasons.items():
        totals[f"reason:{reason}"] += count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=500, help="cases per format (default 500)")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated, of: " + ", ".join(FORMATS))
    parser.add_argument("--seed", type=int, default=int(time.time()), help="hypothesis seed (default: the clock)")
    args = parser.parse_args(argv)
    names = [name for name in args.formats.split(",") if name]
    print(f"fuzzing {', '.join(names)}: {args.cases} cases each, seed {args.seed}", flush=True)
    examples: list = []
    grand: Counter = Counter()
    print(f"{'format':<20}" + "".join(f"{column:>15}" for column in COLUMNS) + f"{'seconds':>10}")
    for name in names:
        start = time.perf_counter()
        totals = run_format(name, args.cases, args.seed, examples)
        grand.update(totals)
        print(
            f"{name:<20}" + "".join(f"{totals[c]:>15}" for c in COLUMNS) + f"{time.perf_counter() - start:>10.1f}",
            flush=True,
        )
    print(f"{'total':<20}" + "".join(f"{grand[c]:>15}" for c in COLUMNS))
    reasons = {key.removeprefix("reason:"): value for key, value in sorted(grand.items()) if key.startswith("reason:")}
    print("quarantine reasons seen:", ", ".join(f"{reason} {count}" for reason, count in reasons.items()))
    print(
        f"\n{grand['cases']} cases, {grand['crashes']} crashes, {grand['rows_lost']} rows lost "
        f"(counted by the independent counter: {grand['rows']} rows), {grand['reader_missed']} rows the reader missed"
    )
    for name, story, problems in examples:
        print(f"\n[{name}] {' / '.join(story)}")
        for problem in problems[:3]:
            print("   ", problem[:1500])
    failed = any(grand[column] for column in COLUMNS[2:])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
