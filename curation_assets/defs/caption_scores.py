"""The per-shard score tables of caption pairs. Separate assets where costs or models differ, so
changing one model re-runs only its own table."""

from __future__ import annotations

import numpy as np
import polars as pl

from curation_assets.defs.shard_assets import ShardTable, ShardWork, TableOutput
from curation_assets.scoring.embedding_scores import clip_similarity, embedding_matrix
from curation_assets.scoring.image_models import itm_probabilities, nsfw_probabilities, watermark_probabilities
from curation_assets.sources import SourceKind

CAPTION = SourceKind.caption
CLIP_EMBEDDINGS = "clip_embeddings"
# Tables computed from the stored embeddings read the CLIP section too: Dagster does not mark a
# table stale because its parent is stale, only once the parent has new data, so a CLIP change
# must reach their code versions directly to show up as stale at once.
CLIP_SECTIONS = ("models.profile", "models.clip")


def _clip_embeddings(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.image_models import clip_embeddings

    clip = work.resources.clip
    frame = clip_embeddings(work.shard, work.normalized, clip.model, clip.batch_settings(), work.progress)
    return TableOutput(frame, clip.identity, clip.meaningful)


def _clip_similarity(work: ShardWork) -> TableOutput:
    embeddings = work.table(CLIP_EMBEDDINGS)
    producer = embeddings["produced_by"][0] if embeddings.height else "n/a"
    meaningful = bool(embeddings["scores_meaningful"][0]) if embeddings.height else True
    frame = embeddings.select("sample_id").with_columns(pl.Series("clip_similarity", clip_similarity(embeddings)))
    return TableOutput(frame, producer, meaningful)


def _aesthetics(work: ShardWork) -> TableOutput:
    embeddings = work.table(CLIP_EMBEDDINGS)
    head = work.resources.aesthetics
    scores = (
        head.model.score(embedding_matrix(embeddings, "image_embedding"))
        if embeddings.height
        else np.zeros(0, np.float32)
    )
    frame = embeddings.select("sample_id").with_columns(pl.Series("aesthetics", scores, dtype=pl.Float32))
    return TableOutput(frame, head.identity, head.meaningful)


def _image_probability(resource: str, column: str, scorer):
    """A table of one per-image probability from one image model resource."""

    def compute(work: ShardWork) -> TableOutput:
        model = getattr(work.resources, resource)
        table = work.normalized
        scores = scorer(work.shard, table, model.model, model.batch_settings(), work.progress)
        return TableOutput(
            table.select("sample_id").with_columns(pl.Series(column, scores)), model.identity, model.meaningful
        )

    return compute


_itm = _image_probability("itm", "itm_probability", itm_probabilities)
_watermark = _image_probability("watermark", "watermark_probability", watermark_probabilities)
_nsfw = _image_probability("nsfw", "nsfw_probability", nsfw_probabilities)


def _image_stats(work: ShardWork) -> TableOutput:
    frame = work.normalized.select(
        "sample_id",
        pl.col("image_width").alias("width"),
        pl.col("image_height").alias("height"),
        (pl.col("image_width") / pl.col("image_height")).cast(pl.Float32).alias("aspect_ratio"),
        pl.col("image_num_bytes").alias("num_bytes"),
        pl.col("image_format").alias("format"),
        pl.col("image_mode").alias("mode"),
    )
    return TableOutput(frame, "image header (ingest)")


def _text_stats(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.text_stats import text_stats

    table = work.normalized
    frame = pl.concat([table.select("sample_id"), text_stats(table["caption"].to_list())], how="horizontal")
    return TableOutput(frame, "text_stats")


def _image_phash(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.image_models import BatchSettings, perceptual_hashes

    table = work.normalized
    hashes = perceptual_hashes(work.shard, table, BatchSettings(batch_size=64, num_workers=2))
    return TableOutput(
        table.select("sample_id").with_columns(pl.Series("phash", hashes, dtype=pl.String)), "imagehash.phash"
    )


def _caption_minhash(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.hashes import caption_minhash

    table = work.normalized
    signatures = caption_minhash(table["caption"].to_list())
    frame = table.select("sample_id").with_columns(pl.Series("minhash", signatures))
    return TableOutput(frame, "datasketch.MinHash")


def _caption_embedding(work: ShardWork) -> TableOutput:
    embedder = work.resources.text_embedding
    table = work.normalized
    vectors = embedder.model.embed(table["caption"].to_list())
    frame = table.select("sample_id").with_columns(pl.Series("text_embedding", vectors))
    return TableOutput(frame, embedder.identity, embedder.meaningful)


CAPTION_TABLES = [
    ShardTable(
        CAPTION,
        CLIP_EMBEDDINGS,
        "L2-normalised CLIP image and caption embeddings (float16), computed once per shard.",
        _clip_embeddings,
        resources=frozenset({"clip"}),
        recipe_sections=CLIP_SECTIONS,
        gpu=True,
    ),
    ShardTable(
        CAPTION,
        "clip_similarity",
        "Cosine similarity of image and caption CLIP embeddings (Data-Juicer's image_text_similarity).",
        _clip_similarity,
        upstream=(CLIP_EMBEDDINGS,),
        recipe_sections=CLIP_SECTIONS,
    ),
    ShardTable(
        CAPTION,
        "aesthetics",
        "LAION aesthetics head over the stored CLIP image embeddings.",
        _aesthetics,
        upstream=(CLIP_EMBEDDINGS,),
        resources=frozenset({"aesthetics"}),
        recipe_sections=(*CLIP_SECTIONS, "models.aesthetics"),
    ),
    ShardTable(
        CAPTION,
        "itm",
        "BLIP image-text matching probability.",
        _itm,
        resources=frozenset({"itm"}),
        recipe_sections=("models.profile", "models.itm"),
        gpu=True,
    ),
    ShardTable(
        CAPTION,
        "watermark",
        "LAION watermark detector probability.",
        _watermark,
        resources=frozenset({"watermark"}),
        recipe_sections=("models.profile", "models.watermark"),
        gpu=True,
    ),
    ShardTable(
        CAPTION,
        "nsfw",
        "Open-NSFW probability.",
        _nsfw,
        resources=frozenset({"nsfw"}),
        recipe_sections=("models.nsfw",),
        gpu=True,
    ),
    ShardTable(CAPTION, "image_stats", "Width, height, aspect ratio, bytes, format and mode.", _image_stats),
    ShardTable(
        CAPTION,
        "text_stats",
        "Caption word and character counts (special tokens ignored), special-character and repetition ratios.",
        _text_stats,
    ),
    ShardTable(CAPTION, "image_phash", "64-bit perceptual hash of each image (hex).", _image_phash),
    ShardTable(
        CAPTION, "caption_minhash", "MinHash signature of each caption, for near-duplicate search.", _caption_minhash
    ),
    ShardTable(
        CAPTION,
        "caption_embedding",
        "Sentence embedding of each caption (all-MiniLM-L6-v2 by default).",
        _caption_embedding,
        resources=frozenset({"text_embedding"}),
        recipe_sections=("models.text_embedding",),
        gpu=True,
    ),
]
