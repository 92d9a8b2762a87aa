"""External commands: templates filled safely, output kept, time bounded, failures explained."""

import os
import subprocess
import sys
import time

import pytest

from curation_assets.evaluation.external import (
    TIMEOUT_EXIT_CODE,
    exit_code,
    failure_message,
    launcher_command,
    output_tail,
    render_command,
)


def test_template_is_split_before_filling_so_paths_with_spaces_stay_one_argument():
    command = render_command(
        "{python} train.py --data {llava_json} --out {output_dir}/ckpt --tag run-{fingerprint}",
        {"python": "/usr/bin/python3", "llava_json": "/data/my mix.json", "output_dir": "/o", "fingerprint": "ab12"},
    )
    assert command == [
        "/usr/bin/python3",
        "train.py",
        "--data",
        "/data/my mix.json",
        "--out",
        "/o/ckpt",
        "--tag",
        "run-ab12",
    ]
    with pytest.raises(ValueError, match=r"needs \{eval_dir\}"):
        render_command("eval --sets {eval_dir}", {"output_dir": "/o"})


def _launch(tmp_path, code: str, timeout: float = 30):
    log = tmp_path / "out.log"
    command = launcher_command([sys.executable, "-c", code], log, timeout)
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    return result, log, time.monotonic() - started


def test_launcher_tees_output_and_passes_the_exit_code_through(tmp_path):
    result, log, _ = _launch(tmp_path, "import sys\nfor i in range(50): print(f'line {i}')\nsys.exit(3)")
    assert result.returncode == 3 and exit_code(log) == 3
    assert "line 49" in result.stdout  # forwarded, so Dagster's run log shows it
    assert log.read_text().splitlines()[-1] == "line 49"
    assert output_tail(log, 2) == "line 48\nline 49"


def test_launcher_kills_the_whole_process_group_on_timeout(tmp_path):
    child_pid = tmp_path / "child.pid"
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        f"open({str(child_pid)!r}, 'w').write(str(child.pid))\n"
        "print('training step 1', flush=True)\n"
        "time.sleep(60)\n"
    )
    result, log, seconds = _launch(tmp_path, code, timeout=2)
    assert result.returncode == TIMEOUT_EXIT_CODE and exit_code(log) == TIMEOUT_EXIT_CODE
    assert seconds < 30
    assert "training step 1" in log.read_text() and "killed after the 2s timeout" in log.read_text()
    # The trainer's own child went with it: gone, or a zombie waiting for a reaper (containers' init may not reap).
    stat = f"/proc/{int(child_pid.read_text())}/stat"
    time.sleep(0.2)
    assert not os.path.exists(stat) or open(stat).read().rsplit(")", 1)[1].split()[0] == "Z"


def test_failure_message_quotes_only_the_last_lines(tmp_path):
    log = tmp_path / "out.log"
    log.write_text("".join(f"step {i}\n" for i in range(100)) + "CUDA out of memory\n")
    message = failure_message(["train", "--x"], log, lines=3, returncode=1)
    assert "failed with exit code 1" in message and "no result was recorded" in message
    assert message.endswith("step 98\nstep 99\nCUDA out of memory")
    assert "step 97" not in message
    assert "timed out" in failure_message(["t"], log, 1, TIMEOUT_EXIT_CODE)
    assert "signal 9" in failure_message(["t"], log, 1, 137)
    assert "did not finish" in failure_message(["t"], log, 1)  # no exit code recorded
    assert "(no output)" in failure_message(["t"], tmp_path / "absent.log", 5, 1)
