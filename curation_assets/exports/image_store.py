"""Image bytes copied out of one source shard into `images/<kind>/<shard>.d/`: the partitioned step.

Only this step reads source shards. It copies the images of the requested samples once, checks
them against the sha256 that ingest recorded, and records them in the shard's image manifest; a
second call with the same samples reads nothing and writes nothing. Images of samples that left
the mix stay until `prune_shard_images`, which runs after the global files stop naming them, so
no export ever points at a deleted image.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import polars as pl
from PIL import Image
from upath import UPath

from curation_assets.exports.files import is_local
from curation_assets.exports.layout import image_path, shard_image_manifest
from curation_assets.readers import ShardFile
from curation_assets.storage import read_parquet, write_parquet_atomic

IMAGE_REFS_SCHEMA = pl.Schema(
    {"sample_id": pl.String, "position": pl.Int32, "image_ref": pl.String, "image_sha256": pl.String}
)
IMAGE_MANIFEST_SCHEMA = pl.Schema(
    {"sample_id": pl.String, "position": pl.Int32, "path": pl.String, "sha256": pl.String, "num_bytes": pl.Int64}
)
_MAGIC = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tif"),
    (b"MM\x00*", "tif"),
)


def fetch_image_bytes(shard: ShardFile, image_refs: Sequence[str]) -> Iterator[tuple[int, bytes]]:
    """(position in `image_refs`, bytes): the one call into the shared image reader."""
    from curation_assets.image_source import iter_image_bytes

    return iter_image_bytes(shard, image_refs)


def caption_image_refs(pool: pl.DataFrame) -> pl.DataFrame:
    """One image per caption sample (position 0). The sha256 is checked when the pool carries it."""
    sha = pl.col("image_sha256") if "image_sha256" in pool.columns else pl.lit(None, dtype=pl.String)
    return pool.select(
        "sample_id", pl.lit(0, dtype=pl.Int32).alias("position"), "image_ref", sha.alias("image_sha256")
    ).cast(dict(IMAGE_REFS_SCHEMA))


def interleaved_image_refs(pool: pl.DataFrame) -> pl.DataFrame:
    """Every image of each document with its position in the aligned lists."""
    exploded = (
        pool.select("sample_id", pl.col("images"))
        .with_columns(pl.int_ranges(pl.col("images").list.len()).alias("position"))
        .explode("images", "position")
        .filter(pl.col("images").is_not_null())
        .unnest("images")
    )
    return exploded.select(
        "sample_id", "position", pl.col("ref").alias("image_ref"), pl.col("sha256").alias("image_sha256")
    ).cast(dict(IMAGE_REFS_SCHEMA))


def image_extension(data: bytes) -> str:
    """The file extension the bytes really are (images are never re-encoded, so neither is the name)."""
    for magic, extension in _MAGIC:
        if data.startswith(magic):
            return extension
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    try:
        with Image.open(io.BytesIO(data)) as image:  # header only
            return (image.format or "img").lower()
    except Exception:
        return "img"


@dataclass(frozen=True)
class ShardImages:
    manifest: pl.DataFrame  # IMAGE_MANIFEST_SCHEMA rows of the requested images
    copied: int
    reused: int
    bytes_copied: int


def export_shard_images(shard: ShardFile, refs: pl.DataFrame, root: UPath) -> ShardImages:
    """Make sure every image in `refs` (IMAGE_REFS_SCHEMA, from one source shard) is in the store."""
    kind, shard_id = shard.kind.value, shard.shard_id
    wanted = refs.unique(["sample_id", "position"], keep="first").sort("sample_id", "position")
    previous = read_shard_images(root, kind, shard_id)
    on_disk = previous.filter(_still_there(root, previous))
    matched = wanted.join(on_disk, on=["sample_id", "position"], how="left")
    reusable = pl.col("path").is_not_null() & (
        pl.col("image_sha256").is_null() | (pl.col("sha256") == pl.col("image_sha256"))
    )
    missing = matched.filter(~reusable).select(IMAGE_REFS_SCHEMA.names())
    copied = _copy(shard, missing, root) if missing.height else pl.DataFrame(schema=IMAGE_MANIFEST_SCHEMA)
    replaced = copied.select("sample_id", "position")
    manifest = (
        pl.concat([on_disk.join(replaced, on=["sample_id", "position"], how="anti"), copied])
        .sort("sample_id", "position")
        .cast(dict(IMAGE_MANIFEST_SCHEMA))
    )
    if not manifest.equals(previous.sort("sample_id", "position")):
        write_parquet_atomic(manifest, root / shard_image_manifest(kind, shard_id))
    requested = manifest.join(wanted.select("sample_id", "position"), on=["sample_id", "position"], how="semi")
    return ShardImages(requested, copied.height, wanted.height - copied.height, int(copied["num_bytes"].sum()))


def _copy(shard: ShardFile, missing: pl.DataFrame, root: UPath) -> pl.DataFrame:
    kind, shard_id = shard.kind.value, shard.shard_id
    rows = missing.to_dicts()
    written = []
    for index, data in fetch_image_bytes(shard, [row["image_ref"] for row in rows]):
        row = rows[index]
        digest = hashlib.sha256(data).hexdigest()
        if row["image_sha256"] is not None and digest != row["image_sha256"]:
            raise ValueError(
                f"image {row['image_ref']} of {shard_id} has sha256 {digest[:12]}..., ingest recorded "
                f"{row['image_sha256'][:12]}...: the shard changed since ingest; re-ingest it before exporting"
            )
        position = None if kind == "caption" else row["position"]
        relative = image_path(kind, shard_id, row["sample_id"], position, image_extension(data))
        _place(data, root, relative)
        written.append({**row, "path": relative, "sha256": digest, "num_bytes": len(data)})
    if len(written) != len(rows):
        raise ValueError(f"{len(rows) - len(written)} images of {shard_id} could not be read back from the shard")
    return pl.DataFrame(written, schema={**IMAGE_REFS_SCHEMA, **IMAGE_MANIFEST_SCHEMA}).select(
        IMAGE_MANIFEST_SCHEMA.names()
    )


def _place(data: bytes, root: UPath, relative: str) -> None:
    """Temp file + rename, without an fsync per image: atomic against a killed process, which is the
    failure we guard; an fsync for each of millions of small files would dominate the export. The
    temp name is fixed per process: one step owns a source shard's folder at a time."""
    if not is_local(root):
        (root / relative).write_bytes(data)  # one PUT
        return
    target = os.path.join(root.path, relative)
    folder, name = os.path.split(target)
    os.makedirs(folder, exist_ok=True)
    temp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
        os.replace(temp, target)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def _still_there(root: UPath, manifest: pl.DataFrame) -> pl.Series:
    """Which recorded images are still on disk at their recorded size (a stat each, no reading)."""
    present = []
    for path, size in manifest.select("path", "num_bytes").iter_rows():
        try:
            present.append(_size(root, path) == size)
        except FileNotFoundError:
            present.append(False)
    return pl.Series(present, dtype=pl.Boolean)


def _size(root: UPath, relative: str) -> int:
    if is_local(root):
        return os.stat(os.path.join(root.path, relative)).st_size
    return (root / relative).stat().st_size


def read_shard_images(root: UPath, kind: str, shard_id: str) -> pl.DataFrame:
    path = root / shard_image_manifest(kind, shard_id)
    if not path.exists():
        return pl.DataFrame(schema=IMAGE_MANIFEST_SCHEMA)
    return read_parquet(path).cast(dict(IMAGE_MANIFEST_SCHEMA))


def stored_shards(root: UPath, kind: str) -> list[str]:
    """The source shards of a kind that have images in the store (an image manifest)."""
    folder = root / posixpath.dirname(shard_image_manifest(kind, "_"))
    if not folder.exists():
        return []
    return sorted(path.name.removesuffix(".parquet") for path in folder.iterdir() if path.name.endswith(".parquet"))


def read_image_manifests(root: UPath, kind: str, shard_ids: Iterable[str]) -> pl.DataFrame:
    """The store's images of these source shards, for the global exports (cheap: manifests only)."""
    frames = [
        read_shard_images(root, kind, shard_id).with_columns(pl.lit(shard_id).alias("shard_id"))
        for shard_id in shard_ids
    ]
    return pl.concat(frames) if frames else pl.DataFrame(schema={**IMAGE_MANIFEST_SCHEMA, "shard_id": pl.String})


def prune_shard_images(root: UPath, kind: str, shard_id: str, keep_sample_ids: Iterable[str]) -> int:
    """Delete the shard's images of samples no longer kept; run after the global exports are rewritten."""
    manifest = read_shard_images(root, kind, shard_id)
    keep = pl.Series("sample_id", list(keep_sample_ids), dtype=pl.String)
    drop = manifest.filter(~pl.col("sample_id").is_in(keep.implode()))
    if drop.height == 0:
        return 0
    for path in drop["path"]:
        target = root / path
        if target.exists():
            target.unlink()
    write_parquet_atomic(
        manifest.join(drop, on=["sample_id", "position"], how="anti"), root / shard_image_manifest(kind, shard_id)
    )
    return drop.height
