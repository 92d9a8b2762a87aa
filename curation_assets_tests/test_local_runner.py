"""The in-process runner's planning: backfills split as the backfill daemon splits them."""

from curation_assets.defs.local_runner import consecutive_chunks


def test_chunks_hold_only_neighbours_and_at_most_the_policy_size():
    order = {name: i for i, name in enumerate("abcdefgh")}
    assert list(consecutive_chunks(list("abcdefgh"), order, 3)) == [["a", "b", "c"], ["d", "e", "f"], ["g", "h"]]
    # A gap in partition order starts a new run: a run covers a range, never skips a shard.
    assert list(consecutive_chunks(["a", "b", "d", "e", "h"], order, 32)) == [["a", "b"], ["d", "e"], ["h"]]
    assert list(consecutive_chunks([], order, 3)) == []
