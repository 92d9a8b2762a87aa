"""Caption samples as WebDataset tars in img2dataset layout: key.<ext>, key.txt, key.json.

The image member keeps the bytes' own format (`.jpg` for JPEGs, `.png` for PNGs): images are never
re-encoded, so what the trainer decodes hashes to the sha256 the curation recorded. key.json holds
the sample's provenance (id, repeat, source shard, image ref, caption source) and its scores.
Tars are written with fixed member metadata (mtime 0, uid 0), so the same samples give the same
bytes, and each tar's fingerprint (its members' digests) says whether it needs writing at all.
"""

from __future__ import annotations

import hashlib
import json
import math
import tarfile
from collections.abc import Iterable

import polars as pl
from upath import UPath

from curation_assets.exports.files import ExportResult, PlannedFile, StagedFile, read_file, write_export
from curation_assets.exports.layout import WEBDATASET_DIR, numbered_file
from curation_assets.exports.rows import chunks, shuffled
from curation_assets.exports.spec import Sharded

EXPORT_NAME = "webdataset"
STEM = "caption"


def sample_json(row: dict) -> dict:
    """Provenance and scores of one mixed sample, as img2dataset-style flat fields."""
    meta = {
        "key": row["key"],
        "sample_id": row["sample_id"],
        "repeat_index": row["repeat_index"],
        "source_shard": row["shard_id"],
        "image_ref": row["image_ref"],
        "sha256": row["image_sha256"],
        "caption_source": row["caption_source"],
        "original_caption": row["original_caption"],
    }
    for name, value in (row.get("scores") or {}).items():
        if value is not None and not (isinstance(value, float) and not math.isfinite(value)):
            meta[name] = value
    return meta


def _members(row: dict) -> list[tuple[str, bytes | str]]:
    """(member name, bytes or the image's path in the store) of one sample, in tar order."""
    extension = row["image_path"].rsplit(".", 1)[-1]
    return [
        (f"{row['key']}.{extension}", row["image_path"]),
        (f"{row['key']}.txt", row["caption"].encode()),
        (f"{row['key']}.json", json.dumps(sample_json(row), sort_keys=True, ensure_ascii=False).encode()),
    ]


def _fingerprint(rows: Iterable[dict]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        for name, content in _members(row):
            # The image is named by its sha256 instead of its bytes: no image is read to plan.
            value = row["image_sha256"].encode() if isinstance(content, str) else hashlib.sha256(content).digest()
            digest.update(name.encode() + b"\0" + value + b"\0")
    return digest.hexdigest()


def _tar_info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _writer(root: UPath, chunk: pl.DataFrame):
    def write(out: StagedFile) -> None:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
            for row in chunk.iter_rows(named=True):
                for name, content in _members(row):
                    data = read_file(root, content) if isinstance(content, str) else content
                    tar.addfile(_tar_info(name, len(data)), _Reader(data))

    return write


class _Reader:
    """The smallest file object tarfile.addfile needs."""

    def __init__(self, data: bytes):
        self.data, self.offset = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.offset + size
        chunk = self.data[self.offset : end]
        self.offset += len(chunk)
        return chunk


def export_webdataset(root: UPath, rows: pl.DataFrame, spec: Sharded, seed: int) -> ExportResult:
    """`rows`: exports.rows.caption_rows. Tars of `samples_per_shard` samples, in the seeded order."""
    plans = []
    for index, chunk in enumerate(chunks(shuffled(rows, seed), spec.samples_per_shard)):
        # Rows are turned into dicts one chunk at a time, here and again when writing: a 10M-row mix
        # never holds them all.
        path = numbered_file(WEBDATASET_DIR, STEM, index, "tar")
        fingerprint = _fingerprint(chunk.iter_rows(named=True))
        plans.append(PlannedFile(path, chunk.height, _writer(root, chunk), fingerprint))
    counts = {
        "samples": rows.height,
        "unique_samples": rows["sample_id"].n_unique(),
        "image_bytes": int(rows["image_num_bytes"].sum() or 0),
    }
    details = {"format": "webdataset-img2dataset", "samples_per_shard": spec.samples_per_shard}
    return write_export(root, EXPORT_NAME, plans, counts, details)
