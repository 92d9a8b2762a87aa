"""Seeded hashes of sample ids: the order in which a pool is drawn, and the order of an export.

A sample's key depends on its own id, the seed and (for weighted sampling) its own score, never
on the rest of the pool. Drawing the bottom k keys is therefore stable: adding a shard changes
the draw only by the rows whose keys undercut the current k-th, and two budgets give nested draws.

The hash is spelled out here (splitmix64 over the 64-bit id) rather than taken from polars,
whose `hash` may change between polars versions: a mix must be the same on every machine.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pyarrow as pa

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_HEX_ID = r"^[0-9a-f]{16}$"
# Lowercase hex digit -> its value; every other byte -> 255 (not an id we parse).
_NIBBLE = np.full(256, 255, dtype=np.uint8)
_NIBBLE[np.frombuffer(b"0123456789", dtype=np.uint8)] = np.arange(10)
_NIBBLE[np.frombuffer(b"abcdef", dtype=np.uint8)] = np.arange(10, 16)


def _mix64_int(value: int) -> int:
    value = (value + _GOLDEN) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser over a uint64 array (wrapping arithmetic, as in the C original)."""
    x = np.array(values, dtype=np.uint64, copy=True, ndmin=1)
    with np.errstate(over="ignore"):  # wrapping is the point; numpy warns only for 0-d operands
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def id_hashes(ids: pl.Series) -> np.ndarray:
    """A uint64 per sample id. Our ids are 16 lowercase hex digits of a blake2b hash: those are
    parsed, not rehashed. Any other string is blake2b-hashed on its own, so an id's hash never
    depends on which other ids share the call (that would break the stable draw)."""
    if ids.null_count():
        raise ValueError(f"{ids.null_count()} sample ids are null")
    values = np.zeros(ids.len(), dtype=np.uint64)
    if ids.len() == 0:
        return values
    parsed, ok = _parse_hex16(ids)
    values[ok] = parsed[ok]
    others = np.flatnonzero(~ok)
    if len(others):
        strings = ids.gather(others).to_list()
        digests = (hashlib.blake2b(value.encode(), digest_size=8).digest() for value in strings)
        values[others] = np.fromiter((int.from_bytes(d, "big") for d in digests), dtype=np.uint64, count=len(others))
    return values


def _parse_hex16(ids: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(value, parsed?) per id, straight from the Arrow character buffer when every id is 16
    bytes long (10M ids in a fraction of a second); per-row string parsing otherwise."""
    array = ids.to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())
    count = len(array)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64, count=count + 1, offset=array.offset * 8)
    if np.all(np.diff(offsets) == 16):
        chars = np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[0] + 16 * count]
        nibbles = _NIBBLE[chars].reshape(count, 16)
        # A non-hex byte became 255: test its high bits, 16 nibbles at a time as two uint64 words.
        words = nibbles.view(np.uint64)
        ok = ((words[:, 0] | words[:, 1]) & np.uint64(0xF0F0F0F0F0F0F0F0)) == 0
        packed = np.ascontiguousarray((nibbles[:, 0::2] << 4) | (nibbles[:, 1::2] & 15))
        return packed.view(">u8").reshape(count).astype(np.uint64), ok
    ok = ids.str.contains(_HEX_ID).fill_null(False).to_numpy()
    valid = ids.set(pl.Series(~ok), "0" * 16)  # placeholders, masked out by `ok`
    high = valid.str.slice(0, 8).str.to_integer(base=16).to_numpy().astype(np.uint64)
    low = valid.str.slice(8, 8).str.to_integer(base=16).to_numpy().astype(np.uint64)
    return (high << np.uint64(32)) | low, ok


def seeded_hashes(hashes: np.ndarray, seed: int, salt: np.ndarray | int = 0) -> np.ndarray:
    """Hashes re-mixed under a seed (and an optional per-row salt such as a repeat index)."""
    salted = mix64(np.asarray(salt, dtype=np.uint64) + np.uint64(1))
    return mix64(hashes ^ np.uint64(_mix64_int(seed)) ^ salted)


def unit_interval(hashes: np.ndarray) -> np.ndarray:
    """The top 53 bits as a float in (0, 1): never 0, so -log(u) is always finite."""
    return ((hashes >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def priority_keys(hashes: np.ndarray, seed: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Lower key, drawn earlier. Uniform: u. Weighted: -log(u) / w, the exponential race of
    Efraimidis and Spirakis (the bottom k is a weighted sample without replacement). A weight
    that is missing, non-finite or <= 0 gets +inf: drawn only after every weighted sample."""
    u = unit_interval(seeded_hashes(hashes, seed))
    if weights is None:
        return u
    weights = np.asarray(weights, dtype=np.float64)
    usable = np.isfinite(weights) & (weights > 0)
    keys = np.full(len(u), np.inf)
    keys[usable] = -np.log(u[usable]) / weights[usable]
    return keys


def draw_order(hashes: np.ndarray, seed: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Row positions in draw order; ties (only among +inf keys, in practice) fall back to the hash."""
    seeded = seeded_hashes(hashes, seed)
    if weights is None:  # u is monotone in the seeded hash: one integer sort gives the same order
        return np.argsort(seeded, kind="stable")
    return np.lexsort((seeded, priority_keys(hashes, seed, weights)))
