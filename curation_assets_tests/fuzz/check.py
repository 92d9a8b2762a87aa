"""The properties every shard must have, however damaged, and one report per case.

Reading never raises and never hangs; the independent count equals valid + quarantined rows; no
sample id is there twice; every valid row's image refs read back to the sha256 ingest recorded.
A row quarantined as `reader_error` is a reader bug that the guard caught: counted as a crash.
"""

from __future__ import annotations

import hashlib
import os
import signal
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from curation_assets.image_source import iter_image_bytes
from curation_assets.normalize import normalize_shard
from curation_assets.readers import ShardFile, count_source_rows

CASE_SECONDS = 20.0  # far above any honest case (they take milliseconds): only a hang gets here


class CaseTimeout(Exception):
    pass


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise CaseTimeout in this (main) thread after `seconds`, even inside a blocking system call
    such as opening a FIFO (Python retries those after a signal unless the handler raises)."""

    def expire(signum, frame):
        raise CaseTimeout(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class CaseReport:
    counted: int = 0
    valid: int = 0
    quarantined: int = 0
    duplicate_ids: int = 0
    unread_rows: int = 0  # rows the reader never reached, rescued by read_shard as `unread_row`
    reasons: dict[str, int] = field(default_factory=dict)
    ref_mismatches: list[str] = field(default_factory=list)
    crash: str | None = None  # an exception or a timeout, with its traceback
    reader_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_lost(self) -> int:
        """Rows the independent count sees that are in neither table."""
        return max(0, self.counted - self.valid - self.quarantined)

    @property
    def rows_extra(self) -> int:
        return max(0, self.valid + self.quarantined - self.counted)

    @property
    def crashed(self) -> bool:
        return self.crash is not None or bool(self.reader_errors)

    def problems(self) -> list[str]:
        found = []
        if self.crash:
            found.append(f"crash: {self.crash}")
        found += [f"reader_error row: {detail}" for detail in self.reader_errors]
        if self.unread_rows:
            found.append(f"{self.unread_rows} rows the counter sees were never reached by the reader")
        if self.rows_lost or self.rows_extra:
            found.append(f"counted {self.counted} rows, tables hold {self.valid} + {self.quarantined}")
        if self.duplicate_ids:
            found.append(f"{self.duplicate_ids} sample ids twice")
        found += [f"image ref does not read back: {ref}" for ref in self.ref_mismatches]
        return found


def check_shard(shard: ShardFile, seconds: float = CASE_SECONDS) -> CaseReport:
    report = CaseReport()
    start = time.perf_counter()
    try:
        with deadline(seconds):
            table = normalize_shard(shard)
            report.counted = count_source_rows(shard)
            report.valid, report.quarantined = table.valid.height, table.quarantine.height
            ids = table.valid["sample_id"].append(table.quarantine["sample_id"])
            report.duplicate_ids = ids.len() - ids.n_unique()
            report.reasons = table.reason_counts
            report.unread_rows = report.reasons.get("unread_row", 0)
            report.reader_errors = table.quarantine.filter(table.quarantine["reason"] == "reader_error")[
                "detail"
            ].to_list()
            report.ref_mismatches = _refs_not_reading_back(shard, table.valid)
    except CaseTimeout as error:
        report.crash = f"timeout: {error}\n{traceback.format_exc(limit=-8)}"
    except Exception as error:
        report.crash = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=-8)}"
    report.seconds = time.perf_counter() - start
    return report


def _refs_not_reading_back(shard: ShardFile, valid) -> list[str]:
    if "image_ref" in valid.columns:
        images = list(zip(valid["image_ref"].to_list(), valid["image_sha256"].to_list()))
    elif "images" in valid.columns:
        images = [(image["ref"], image["sha256"]) for row in valid["images"].to_list() for image in row if image]
    else:
        return []
    if not images:
        return []
    got = dict(iter_image_bytes(shard, [ref for ref, _ in images]))
    return [
        ref
        for position, (ref, sha) in enumerate(images)
        if position not in got or hashlib.sha256(got[position]).hexdigest() != sha
    ]


@contextmanager
def scratch_root() -> Iterator[Path]:
    """A fresh folder for one case's files, in memory (/dev/shm) where there is one: cases write and
    delete thousands of small files."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="fuzz-", dir=base) as folder:
        yield Path(folder)
