"""External train/eval commands for Dagster Pipes: fill the recipe's command template, wrap it so
its output is kept and its time bounded, and say why it failed.

Dagster's PipesSubprocessClient forwards the command's output to the run's logs but neither keeps it
nor stops a command that hangs. The command therefore runs under `launch.py` (tee to a log file,
kill on timeout, exit code passed through); on failure the eval asset raises with `failure_message`,
which quotes the log's last lines, and records no materialization: reported metrics only become a
result when the whole command succeeded.
"""

from __future__ import annotations

import shlex
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

from curation_assets.evaluation.settings import EXTERNAL_PLACEHOLDERS, template_fields

TIMEOUT_EXIT_CODE = 124  # what coreutils' timeout returns; launch.py uses the same


def render_command(template: str, values: Mapping[str, str]) -> list[str]:
    """The command as an argument list: split like a shell line first, then each placeholder filled,
    so a path with spaces stays one argument and nothing is interpreted by a shell."""
    missing = sorted(template_fields(template) - set(values))
    if missing:
        raise ValueError(
            f"command template needs {', '.join('{' + m + '}' for m in missing)}, which this run does not provide "
            f"(known placeholders: {', '.join(EXTERNAL_PLACEHOLDERS)})"
        )
    return [token.format(**values) for token in shlex.split(template)]


def launcher_command(
    command: Sequence[str], log_path: str | Path, timeout_s: float, python: str = sys.executable
) -> list[str]:
    """`command` run under launch.py: output teed to `log_path`, killed after `timeout_s`."""
    return [
        python,
        "-m",
        "curation_assets.evaluation.launch",
        "--log",
        str(log_path),
        "--timeout",
        str(timeout_s),
        "--",
        *command,
    ]


def output_tail(log_path: str | Path, lines: int) -> str:
    """The last `lines` lines of the command's output ('' when it wrote none)."""
    path = Path(log_path)
    if not path.exists():
        return ""
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        return "".join(deque(handle, maxlen=lines)).rstrip("\n")


def exit_code(log_path: str | Path) -> int | None:
    """The exit code launch.py recorded beside the log (None: it never finished, e.g. it was killed)."""
    status = Path(f"{log_path}.exit")
    try:
        return int(status.read_text().strip())
    except (OSError, ValueError):
        return None


def failure_message(command: Sequence[str], log_path: str | Path, lines: int, returncode: int | None = None) -> str:
    """Why the external run failed, with its last output lines: the asset's error text. The exit code
    is read from what launch.py recorded unless given."""
    returncode = exit_code(log_path) if returncode is None else returncode
    if returncode is None:
        reason = "did not finish (the launcher itself was stopped)"
    elif returncode == TIMEOUT_EXIT_CODE:
        reason = "timed out and was killed"
    elif returncode < 0:
        reason = f"was killed by signal {-returncode}"
    elif returncode > 128:
        reason = f"was killed (exit code {returncode}, signal {returncode - 128})"
    else:
        reason = f"failed with exit code {returncode}"
    tail = output_tail(log_path, lines)
    shown = tail if tail else "(no output)"
    return (
        f"external eval command {reason}; no result was recorded.\n"
        f"command: {shlex.join(command)}\n"
        f"last {lines} lines of its output:\n{shown}"
    )
