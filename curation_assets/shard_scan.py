"""Which shard files are new or changed since their last recorded version.

Pure logic for the new-shard sensor. The source of truth for "what version did we last record" is
the Dagster instance (passed in as `recorded_version`); the stat cache only saves re-hashing files
whose size and mtime have not moved. A touched file (new mtime, same bytes) is re-hashed once and,
its hash being unchanged, reported as nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from curation_assets.storage import ShardListing

# shard id -> [size, mtime, content hash]
StatCache = dict[str, list]


@dataclass
class ShardChange:
    shard_id: str
    content_hash: str
    previous_hash: str | None  # None: a shard never seen before


@dataclass
class ScanResult:
    changes: list[ShardChange] = field(default_factory=list)
    rehashed: int = 0  # files whose stat moved, so they were read and hashed
    stat_cache: StatCache = field(default_factory=dict)


def scan_shards(
    listings: Iterable[ShardListing],
    stat_cache: StatCache,
    recorded_version: Callable[[str], str | None],
    hash_file: Callable[[ShardListing], str],
) -> ScanResult:
    result = ScanResult()
    for listing in listings:
        cached = stat_cache.get(listing.shard_id)
        if cached is not None and cached[0] == listing.size and cached[1] == listing.mtime:
            result.stat_cache[listing.shard_id] = cached
            continue
        digest = hash_file(listing)
        result.rehashed += 1
        result.stat_cache[listing.shard_id] = [listing.size, listing.mtime, digest]
        previous = recorded_version(listing.shard_id)
        if previous != digest:
            result.changes.append(ShardChange(listing.shard_id, digest, previous))
    return result


def shard_set_version(stat_cache: StatCache) -> str:
    """One version for the whole set of shards present: changes when a shard is added, edited or
    removed. Global assets depend on it, so Dagster sees new data at any shard count."""
    pairs = sorted((shard_id, entry[2]) for shard_id, entry in stat_cache.items())
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:24]
