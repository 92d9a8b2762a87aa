"""The export in three steps, as the Dagster layer runs them.

1. `export_source_shard` per source shard (partitioned): copy that shard's mixed images into the store.
2. `export_mix` once (global): every enabled export from the mix, the pools and the store's manifests.
3. `prune_source_shard` per source shard, after 2: delete images no export names any more.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
from upath import UPath

from curation_assets.exports import data_juicer, interleaved_parquet, llava, text_shards, webdataset_tar
from curation_assets.exports.data_juicer import export_data_juicer
from curation_assets.exports.files import ExportResult, retire_export
from curation_assets.exports.image_store import (
    ShardImages,
    caption_image_refs,
    export_shard_images,
    interleaved_image_refs,
    prune_shard_images,
    read_image_manifests,
    stored_shards,
)
from curation_assets.exports.interleaved_parquet import export_interleaved
from curation_assets.exports.llava import export_llava
from curation_assets.exports.rows import caption_rows, interleaved_rows, text_rows
from curation_assets.exports.spec import Exports
from curation_assets.exports.text_shards import export_text
from curation_assets.exports.webdataset_tar import export_webdataset
from curation_assets.readers import ShardFile

IMAGE_KINDS = ("caption", "interleaved")
EXPORT_NAMES = (
    llava.EXPORT_NAME,
    webdataset_tar.EXPORT_NAME,
    interleaved_parquet.EXPORT_NAME,
    text_shards.EXPORT_NAME,
    data_juicer.EXPORT_NAME,
)


def mixed_ids(mix: pl.DataFrame, kind: str, shard_id: str) -> pl.Series:
    return mix.filter((pl.col("kind") == kind) & (pl.col("shard_id") == shard_id))["sample_id"].unique()


def export_source_shard(shard: ShardFile, pool: pl.DataFrame, mix: pl.DataFrame, root: UPath) -> ShardImages:
    """Copy the images of this shard's mixed samples (each once, whatever its repeats) into the store.
    `pool`: this shard's curated pool. Nothing is read or written when they are all there already."""
    kind = shard.kind.value
    if kind not in IMAGE_KINDS:
        raise ValueError(f"{kind} samples have no images to export")
    chosen = pool.filter(pl.col("sample_id").is_in(mixed_ids(mix, kind, shard.shard_id).implode()))
    refs = caption_image_refs(chosen) if kind == "caption" else interleaved_image_refs(chosen)
    return export_shard_images(shard, refs, root)


def prune_source_shard(root: UPath, kind: str, shard_id: str, mix: pl.DataFrame) -> int:
    return prune_shard_images(root, kind, shard_id, mixed_ids(mix, kind, shard_id).to_list())


def prune_store(root: UPath, mix: pl.DataFrame) -> dict[str, int]:
    """Step 3 for every source shard with images in the store, including shards that left the mix
    (removed, or no longer drawn): kind -> images deleted."""
    return {
        kind: sum(prune_source_shard(root, kind, shard_id, mix) for shard_id in stored_shards(root, kind))
        for kind in IMAGE_KINDS
    }


def export_mix(
    root: UPath,
    mix: pl.DataFrame,
    pools: Mapping[str, pl.DataFrame],
    spec: Exports,
    scores: pl.DataFrame | None = None,
) -> dict[str, ExportResult]:
    """Every enabled export of the mix. Reads no source shard: captions and documents come from
    `pools` (kind -> all curated rows), images from the store that step 1 filled."""
    seed = spec.shuffle_seed
    rows: dict[str, pl.DataFrame] = {}
    for kind in ("caption", "interleaved", "text"):
        if kind not in pools or mix.filter(pl.col("kind") == kind).height == 0:
            continue
        if kind == "text":
            rows[kind] = text_rows(mix, pools[kind])
            continue
        shards = mix.filter(pl.col("kind") == kind)["shard_id"].unique().sort().to_list()
        images = read_image_manifests(root, kind, shards)
        if kind == "caption":
            rows[kind] = caption_rows(mix, pools[kind], images, scores)
        else:
            rows[kind] = interleaved_rows(mix, pools[kind], images)

    results: dict[str, ExportResult] = {}
    if "caption" in rows and spec.llava.enabled:
        results["llava"] = export_llava(root, rows["caption"], seed)
    if "caption" in rows and spec.webdataset.enabled:
        results["webdataset"] = export_webdataset(root, rows["caption"], spec.webdataset, seed)
    if "interleaved" in rows and spec.interleaved.enabled:
        results["interleaved"] = export_interleaved(root, rows["interleaved"], spec.interleaved, seed)
    if "text" in rows and spec.text.enabled:
        results["text"] = export_text(root, rows["text"], spec.text, seed)
    if rows and spec.data_juicer.enabled:
        results["data_juicer"] = export_data_juicer(root, rows, seed)
    for name in EXPORT_NAMES:
        if name not in results:
            retire_export(root, name)
    return results
