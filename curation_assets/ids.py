"""Stable sample ids: the same shard and key give the same id on every machine."""

from __future__ import annotations

import hashlib


def sample_id(kind: str, shard_id: str, key: str) -> str:
    """A 16-hex-digit id from the source kind, the shard's file name and the sample's key in it.

    Only names go in (never absolute paths or mtimes), so moving the data root or copying the
    shards to another machine or bucket keeps every id.
    """
    digest = hashlib.blake2b(f"{kind}\x1f{shard_id}\x1f{key}".encode(), digest_size=8)
    return digest.hexdigest()
