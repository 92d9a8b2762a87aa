"""How each per-shard score table of caption pairs is computed. Separate tables where costs or models
differ, so changing one model re-runs only its own table; the image tables due together come from one
pass over the shard's images."""

from __future__ import annotations

import numpy as np
import polars as pl

from curation_assets import registry as tables
from curation_assets.scoring.embedding_scores import clip_similarity, embedding_matrix
from curation_assets.shard_work import ShardWork, computes, computes_together
from curation_assets.table_spec import TableOutput, TableSpec


@computes_together(tables.CAPTION_IMAGE_PASS)
def caption_image_pass(work: ShardWork, due: tuple[TableSpec, ...]) -> dict[TableSpec, TableOutput]:
    """The due image tables (CLIP embeddings, ITM, watermark, NSFW, pHash) from one read and one decode
    of each image of the shard."""
    from curation_assets.scoring.image_models import pass_settings, score_image_tables, with_pass_notes
    from curation_assets.scoring.image_pass import PassStats

    names = [spec.name for spec in due]
    stats = PassStats()
    settings = pass_settings(work.batch_settings, names)
    outputs = score_image_tables(work.shard, work.normalized, names, work.model, settings, work.progress, stats=stats)
    return with_pass_notes({spec: outputs[spec.name] for spec in due}, names, stats)


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


@computes(tables.IMAGE_STATS)
def image_stats_table(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.interleaved import image_stats_columns

    frame = work.normalized.select("sample_id", *image_stats_columns())
    return TableOutput(frame, "image header (ingest)")
