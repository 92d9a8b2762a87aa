"""A fast, fixed subset of the shard fuzzer (`make fuzz` runs the long, random one).

For generated and damaged shards of every format: reading never raises or hangs, the independent
row count equals valid + quarantined rows with no row the reader missed, no sample id is there
twice, and every valid row's image ref reads back to its recorded sha256.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from curation_assets_tests.fuzz.check import check_shard, scratch_root
from curation_assets_tests.fuzz.strategies import FORMATS

# Cases per format: the whole file stays well under 30 s on a busy two-core machine.
FAST_EXAMPLES = 25


@pytest.mark.parametrize("shard_format", sorted(FORMATS))
def test_fuzzed_shards_keep_every_row_and_never_crash(shard_format):
    @settings(
        max_examples=FAST_EXAMPLES,
        deadline=None,  # check_shard has its own per-case deadline, which also stops a hang
        derandomize=True,  # the same cases on every run: this is the regression subset
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(FORMATS[shard_format])
    def every_row_accounted_for(case):
        with scratch_root() as root:
            report = check_shard(case.write(root))
        assert not report.problems(), (case.story, report.problems())

    every_row_accounted_for()


def test_the_deadline_stops_a_read_that_blocks(tmp_path):
    """The per-case deadline is what turns a hang into a failure: a FIFO read would block forever."""
    import os

    from curation_assets_tests.fuzz.check import CaseTimeout, deadline

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(CaseTimeout), deadline(0.2):
        fifo.read_bytes()
