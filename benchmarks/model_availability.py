"""How long a pipeline step takes to say 'these weights are not here' when offline and not cached.

Measured in a fresh process with an empty hub cache, for both ways of being offline: HF_HUB_OFFLINE
set, and a hub endpoint that cannot be reached."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

SCRIPT = """
import time
from curation_assets.models.availability import ModelUnavailable
from curation_assets.models.clip import load_clip
from curation_assets.recipe import ClipModel
started = time.monotonic()
try:
    load_clip(ClipModel(), "pretrained", device="cpu")
except ModelUnavailable:
    print(time.monotonic() - started)
"""


def _seconds_to_error(extra_env: dict[str, str]) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-empty-hub-") as empty:
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_ENDPOINT")}
        env.update({"HF_HOME": empty, "CURATION_MODEL_CACHE": empty, **extra_env})
        output = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, check=True)
    lines = output.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"loading did not fail with ModelUnavailable:\n{output.stderr[-2000:]}")
    return float(lines[-1])


def run() -> dict[str, dict]:
    return {
        "model_unavailable_seconds_hf_hub_offline": {
            "value": round(_seconds_to_error({"HF_HUB_OFFLINE": "1"}), 3),
            "unit": "s",
            "target": "seconds, not minutes",
        },
        "model_unavailable_seconds_unreachable_hub": {
            "value": round(_seconds_to_error({"HF_ENDPOINT": "https://hub.invalid"}), 3),
            "unit": "s",
            "target": "seconds, not minutes",
        },
    }
