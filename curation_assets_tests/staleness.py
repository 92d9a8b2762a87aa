"""Dagster's own stale status (the resolver behind the UI's badges), for tests that check what users see."""

from dagster import AssetKey, DagsterInstance, Definitions

from curation_assets.defs.dagster_compat import CachingStaleStatusResolver, LoadingContextForTest, StaleStatus


def stale_status(instance: DagsterInstance, defs: Definitions, key: AssetKey, partition: str | None = None):
    resolver = CachingStaleStatusResolver(instance, defs.resolve_asset_graph(), LoadingContextForTest(instance))
    return resolver.get_status(key, partition)


__all__ = ["StaleStatus", "stale_status"]
