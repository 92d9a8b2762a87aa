"""Ask Dagster itself whether an asset partition is fresh, stale or missing.

This is the resolver the UI uses for its "stale" badges; it is internal API, so it is wrapped here,
in one place, for the tests.
"""

from dagster import AssetKey, DagsterInstance, Definitions
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest


def stale_status(instance: DagsterInstance, defs: Definitions, key: AssetKey, partition: str | None = None) -> StaleStatus:
    resolver = CachingStaleStatusResolver(instance, defs.resolve_asset_graph(), LoadingContextForTest(instance))
    return resolver.get_status(key, partition)


__all__ = ["StaleStatus", "stale_status"]
