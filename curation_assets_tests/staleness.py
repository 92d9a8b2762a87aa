"""Dagster's own stale status, for tests (the wrapper lives with the stale runner)."""

from curation_assets.defs.stale_runner import StaleStatus, stale_status

__all__ = ["StaleStatus", "stale_status"]
