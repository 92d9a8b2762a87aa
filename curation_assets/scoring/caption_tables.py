"""How each per-shard score table of caption pairs is computed. Separate tables where costs or models
differ, so changing one model re-runs only its own table."""

from __future__ import annotations

import numpy as np
import polars as pl

from curation_assets import registry as tables
from curation_assets.scoring.embedding_scores import clip_similarity, embedding_matrix
from curation_assets.shard_work import ShardWork, computes
from curation_assets.table_spec import TableOutput


@computes(tables.CLIP_EMBEDDINGS)
def clip_embeddings_table(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.image_models import score_image_tables

    outputs = score_image_tables(
        work.shard,
        work.normalized,
        [tables.CLIP_EMBEDDINGS.name],
        work.model,
        work.batch_settings("clip"),
        work.progress,
    )
    return outputs[tables.CLIP_EMBEDDINGS.name]


def _embedding_provenance(embeddings: pl.DataFrame) -> tuple[str, bool]:
    """Tables computed from stored embeddings inherit the embeddings' provenance."""
    if not embeddings.height:
        return "n/a", True
    return embeddings["produced_by"][0], bool(embeddings["scores_meaningful"][0])


@computes(tables.CLIP_SIMILARITY)
def clip_similarity_table(work: ShardWork) -> TableOutput:
    embeddings = work.read(tables.CLIP_EMBEDDINGS.name)
    similarity = pl.Series("clip_similarity", clip_similarity(embeddings), dtype=pl.Float32)
    return TableOutput(embeddings.select("sample_id").with_columns(similarity), *_embedding_provenance(embeddings))


@computes(tables.AESTHETICS)
def aesthetics_table(work: ShardWork) -> TableOutput:
    embeddings = work.read(tables.CLIP_EMBEDDINGS.name)
    head = work.model("aesthetics")
    images = embedding_matrix(embeddings, "image_embedding")
    scores = head.score(images) if embeddings.height else np.zeros(0, np.float32)
    frame = embeddings.select("sample_id").with_columns(pl.Series("aesthetics", scores, dtype=pl.Float32))
    _, clip_meaningful = _embedding_provenance(embeddings)
    return TableOutput(frame, head.identity, clip_meaningful and not head.random_init)


def _image_probability(name: str):
    """A table of one per-image probability from one image model (image_models.score_image_tables)."""

    def compute(work: ShardWork) -> TableOutput:
        from curation_assets.scoring.image_models import score_image_tables

        settings = work.batch_settings(name)
        return score_image_tables(work.shard, work.normalized, [name], work.model, settings, work.progress)[name]

    compute.__name__ = f"{name}_table"
    return compute


for _spec in (tables.ITM, tables.WATERMARK, tables.NSFW):
    computes(_spec)(_image_probability(_spec.name))


@computes(tables.IMAGE_STATS)
def image_stats_table(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.interleaved import image_stats_columns

    frame = work.normalized.select("sample_id", *image_stats_columns())
    return TableOutput(frame, "image header (ingest)")


@computes(tables.IMAGE_PHASH)
def image_phash_table(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.image_models import BatchSettings, score_image_tables

    # pHash decodes small (64 px) on the CPU: two decoding workers regardless of any model's settings.
    settings = BatchSettings(batch_size=64, num_workers=2)
    name = tables.IMAGE_PHASH.name
    return score_image_tables(work.shard, work.normalized, [name], work.model, settings)[name]
