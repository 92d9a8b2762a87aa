"""The mixed rows of one kind with everything its exports write, in the seeded export order.

Joins the mix (sample id, kind, shard, repeat index) with the curated pool (captions, documents)
and the image store's manifests (paths and sha256 of the copied images). A mixed sample missing from
the pool or the store is an error that names the shards to (re)export, never a silently shorter file.
"""

from __future__ import annotations

import polars as pl

from curation_assets.exports.layout import export_key_expr
from curation_assets.mix.keys import id_hashes, seeded_hashes


def _mixed(mix: pl.DataFrame, kind: str) -> pl.DataFrame:
    return mix.filter(pl.col("kind") == kind).select("sample_id", "shard_id", "repeat_index", export_key_expr())


def _require(frame: pl.DataFrame, column: str, what: str) -> None:
    lacking = frame.filter(pl.col(column).is_null())
    if lacking.height:
        shards = sorted(lacking["shard_id"].unique().to_list())
        raise ValueError(f"{lacking.height} mixed samples have no {what}; source shards concerned: {shards[:10]}")


def caption_rows(
    mix: pl.DataFrame, pool: pl.DataFrame, images: pl.DataFrame, scores: pl.DataFrame | None = None
) -> pl.DataFrame:
    """key, sample_id, repeat_index, shard_id, caption, caption_source, original_caption, image_ref,
    image_path, image_sha256, image_num_bytes, and `scores` (a struct) when a score frame is given."""
    optional = [
        pl.col(name) if name in pool.columns else pl.lit(None, dtype=pl.String).alias(name)
        for name in ("caption_source", "original_caption")
    ]
    content = pool.select("sample_id", "caption", "image_ref", *optional)
    store = images.filter(pl.col("position") == 0).select(
        "sample_id", pl.col("path").alias("image_path"), pl.col("sha256").alias("image_sha256"),
        pl.col("num_bytes").alias("image_num_bytes"),
    )  # fmt: skip
    rows = _mixed(mix, "caption").join(content, on="sample_id", how="left")
    _require(rows, "caption", "caption in the curated pool")
    rows = rows.join(store, on="sample_id", how="left")
    _require(rows, "image_path", "image in the export's image store (run export_shard_images for them)")
    if scores is not None:
        columns = [name for name in scores.columns if name != "sample_id"]
        packed = scores.select("sample_id", pl.struct(columns).alias("scores")).unique("sample_id", keep="first")
        rows = rows.join(packed, on="sample_id", how="left")
    return rows


def interleaved_rows(mix: pl.DataFrame, pool: pl.DataFrame, images: pl.DataFrame) -> pl.DataFrame:
    """key, sample_id, repeat_index, shard_id, texts, image_paths and image_sha256 (both aligned with
    texts: null at text positions)."""
    positions = (
        pool.select("sample_id", "texts", pl.int_ranges(pl.col("texts").list.len()).alias("position"))
        .explode("texts", "position")
        .with_columns(pl.col("position").cast(pl.Int32))
    )
    located = positions.join(
        images.select("sample_id", "position", "path", "sha256"), on=["sample_id", "position"], how="left"
    )
    documents = (
        located.sort("sample_id", "position")
        .group_by("sample_id", maintain_order=True)
        .agg(
            pl.col("texts"),
            pl.col("path").alias("image_paths"),
            pl.col("sha256").alias("image_sha256"),
            (pl.col("texts").is_null() & pl.col("path").is_null()).sum().alias("unlocated"),
        )
    )
    rows = _mixed(mix, "interleaved").join(documents, on="sample_id", how="left")
    _require(rows, "texts", "document in the curated pool")
    unlocated = rows.filter(pl.col("unlocated") > 0)
    if unlocated.height:
        shards = sorted(unlocated["shard_id"].unique().to_list())
        raise ValueError(
            f"{unlocated.height} mixed documents have images missing from the export's image store "
            f"(run export_shard_images for them); source shards concerned: {shards[:10]}"
        )
    return rows.drop("unlocated")


def text_rows(mix: pl.DataFrame, pool: pl.DataFrame) -> pl.DataFrame:
    """key, sample_id, repeat_index, shard_id, text."""
    rows = _mixed(mix, "text").join(pool.select("sample_id", "text"), on="sample_id", how="left")
    _require(rows, "text", "text in the curated pool")
    return rows


def shuffled(rows: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Rows in a seeded order that depends only on each row's (sample id, repeat index): repeats of
    one sample land far apart, and a trainer reading shard by shard sees every source mixed."""
    if rows.height == 0:
        return rows
    order = seeded_hashes(id_hashes(rows["sample_id"]), seed, rows["repeat_index"].to_numpy())
    return rows.with_columns(pl.Series("_order", order)).sort("_order", "key").drop("_order")


def chunks(rows: pl.DataFrame, size: int) -> list[pl.DataFrame]:
    return [rows.slice(start, size) for start in range(0, rows.height, size)]
