"""Run one external command with its output teed to a log file and a hard time limit.

    python -m curation_assets.evaluation.launch --log out.log --timeout 3600 -- cmd args...

Exits with the command's exit code; 124 after a timeout (the whole process group is killed, so a
trainer's workers go too); 128 + N when the command died of signal N. The same code is written to
`<log>.exit`, so whoever reports the failure need not parse Dagster's error text. SIGINT / SIGTERM sent here
(Dagster cancelling the run) are passed on to the command's process group. Standard library only:
it starts before, and outlives, anything the command imports.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading

TIMEOUT_EXIT_CODE = 124


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", required=True, help="file that receives the command's stdout and stderr")
    parser.add_argument("--timeout", type=float, required=True, help="seconds before the command is killed")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given after --")
    code = run(command, args.log, args.timeout)
    with open(f"{args.log}.exit", "w") as status:
        status.write(f"{code}\n")
    return code


def run(command: list[str], log_path: str, timeout: float) -> int:
    with open(log_path, "ab", buffering=0) as log:
        try:
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
            )
        except OSError as error:
            message = f"cannot start {command[0]!r}: {error}\n".encode()
            log.write(message)
            sys.stdout.buffer.write(message)
            return 127
        timed_out = threading.Event()

        def forward(signum, _frame=None):
            try:
                os.killpg(process.pid, signum)  # the group: a trainer's data workers go too
            except ProcessLookupError:
                pass

        def on_timeout():
            timed_out.set()
            forward(signal.SIGKILL)

        # Dagster cancelling the run signals this process; the command must hear it too.
        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        timer = threading.Timer(timeout, on_timeout)
        timer.daemon = True
        timer.start()
        for line in iter(process.stdout.readline, b""):
            log.write(line)
            sys.stdout.buffer.write(line)
            sys.stdout.flush()
        returncode = process.wait()
        timer.cancel()
        if timed_out.is_set():
            note = f"[launch] killed after the {timeout:g}s timeout\n".encode()
            log.write(note)
            sys.stdout.buffer.write(note)
            return TIMEOUT_EXIT_CODE
    return 128 - returncode if returncode < 0 else returncode


if __name__ == "__main__":
    sys.exit(main())
