"""Fail fast, and say what to do, when weights are neither cached nor downloadable.

Hub clients retry for a minute or more when the network is down; a pipeline step should instead
say within seconds: these weights are not cached, the hub cannot be reached, here are the ways out.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

PROBE_TIMEOUT_SECONDS = 3.0
CACHE_ENV = "CURATION_MODEL_CACHE"


class ModelUnavailable(RuntimeError):
    """Weights that cannot be had here and now; the message lists the ways out."""


class WeightsMismatch(ValueError):
    """Weights that exist but do not fit the architecture the recipe names; the message says which
    recipe field must change."""


SMOKE_WEIGHTS = "smoke"  # a `weights:` value asking for random weights (smoke profile only)


def random_weights(weights: str, profile: str, what: str) -> bool:
    """Whether a head is to be built with random weights: only when the recipe asks for it, and only
    under the smoke profile (under pretrained, every score is labelled meaningful)."""
    if weights != SMOKE_WEIGHTS:
        return False
    if profile != "smoke":
        raise ModelUnavailable(advice(f"{what}: weights '{SMOKE_WEIGHTS}' means random weights, smoke profile only"))
    return True


def advice(what: str) -> str:
    return (
        f"{what}\nWays out: run once on a machine with network access to fill the cache "
        "(~/.cache/huggingface, ~/.cache/curation_assets), copy the weights here and name the local path in "
        "the recipe (e.g. models.clip.checkpoint), or use the smoke profile (recipes/smoke.yaml) for offline runs."
    )


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def host_reachable(url: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> bool:
    """One TCP connect to the host, bounded by `timeout`: the cheapest honest answer to 'online?'."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


@contextlib.contextmanager
def hub_access(what: str):
    """Run a hub load so that, when the hub cannot be reached, only the local cache is consulted and a
    miss becomes a ModelUnavailable at once instead of minutes of retries."""
    import huggingface_hub.constants as hub_constants

    started = time.monotonic()
    offline = hub_offline() or not host_reachable(hub_endpoint())
    previous = hub_constants.HF_HUB_OFFLINE
    hub_constants.HF_HUB_OFFLINE = offline  # read by every huggingface_hub download at call time
    try:
        yield offline
    except (OSError, ValueError, RuntimeError) as error:  # open_clip wraps hub errors in RuntimeError
        if not offline:
            raise
        seconds = time.monotonic() - started
        raise ModelUnavailable(
            advice(f"{what} is not in the local cache and the hub is unreachable (checked in {seconds:.1f}s): {error}")
        ) from error
    finally:
        hub_constants.HF_HUB_OFFLINE = previous


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "curation_assets")


def fetch_weights(location: str, what: str) -> Path:
    """A local file for `location`: a path as is, or a URL downloaded once into the cache."""
    if "://" not in location:
        path = Path(location).expanduser()
        if not path.exists():
            raise ModelUnavailable(advice(f"{what}: local weights file {path} does not exist"))
        return path
    digest = hashlib.sha256(location.encode()).hexdigest()[:12]
    target = cache_dir() / f"{digest}-{Path(urlparse(location).path).name}"
    if target.exists():
        return target
    if hub_offline() or not host_reachable(location):
        raise ModelUnavailable(
            advice(f"{what}: {location} is not cached at {target} and cannot be downloaded from here")
        )
    import torch.hub

    target.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(location, str(target), progress=True)
    return target
