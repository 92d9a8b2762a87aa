"""The in-process runner's planning: backfills split as the backfill daemon splits them."""

from curation_assets.defs.local_runner import consecutive_chunks


def test_chunks_hold_only_neighbours_and_at_most_the_policy_size():
    order = {name: i for i, name in enumerate("abcdefgh")}
    assert list(consecutive_chunks(list("abcdefgh"), order, 3)) == [["a", "b", "c"], ["d", "e", "f"], ["g", "h"]]
    # A gap in partition order starts a new run: a run covers a range, never skips a shard.
    assert list(consecutive_chunks(["a", "b", "d", "e", "h"], order, 32)) == [["a", "b"], ["d", "e"], ["h"]]
    assert list(consecutive_chunks([], order, 3)) == []


def test_sensor_interval_is_thirty_seconds_unless_the_environment_says_and_a_bad_value_is_refused():
    import pytest

    from curation_assets.defs.sensors import INTERVAL_ENV, sensor_interval_seconds

    assert sensor_interval_seconds({}) == 30
    assert sensor_interval_seconds({INTERVAL_ENV: " 5 "}) == 5
    for bad in ("0", "-3", "2.5", "soon"):
        with pytest.raises(ValueError, match=INTERVAL_ENV):
            sensor_interval_seconds({INTERVAL_ENV: bad})


def test_every_sensor_but_the_reaper_follows_the_interval(monkeypatch):
    """The automation sensor and the new-shard sensors tick together; the value is read at import."""
    import subprocess
    import sys

    probe = (
        "from curation_assets.defs.automation import AUTOMATION_SENSOR; "
        "from curation_assets.defs.sensors import NEW_SHARD_SENSORS; "
        "print(sorted({s.minimum_interval_seconds for s in [AUTOMATION_SENSOR, *NEW_SHARD_SENSORS]}))"
    )
    monkeypatch.setenv("CURATION_SENSOR_INTERVAL_SECONDS", "7")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[7]"


def test_the_code_location_loads_without_torch():
    """Every run process loads the code location first: one per ingested shard under the daemon. It
    must not pay for torch (about 4 s of a 6 s import here); model code imports it where it runs."""
    import subprocess
    import sys

    heavy = ("torch", "torchvision", "open_clip", "transformers")
    probe = f"import sys, curation_assets.definitions; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
