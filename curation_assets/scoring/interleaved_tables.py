"""How the per-shard tables of interleaved documents are made: per image (size, CLIP embedding, NSFW,
pHash), per text element (CLIP text embedding), and per document (the image-to-sentence similarity
matrix and each image's best and assigned sentence). The document's text scores are text_tables.py's.

Images are taken apart from their documents once per table (scoring/interleaved.py) and scored by the
caption branch's per-image loops, so an image scores the same whichever kind it came in.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from curation_assets import registry as tables
from curation_assets.scoring import interleaved
from curation_assets.shard_work import ShardWork, computes, computes_together
from curation_assets.table_spec import TableOutput, TableSpec


def _images(work: ShardWork) -> pl.DataFrame:
    return interleaved.document_images(work.normalized)


def _image_keys(images: pl.DataFrame) -> pl.DataFrame:
    return images.select("image_id", "sample_id", "image_index")


def unit_ids(id_column: str, documents: pl.DataFrame) -> pl.Series:
    """The ids a per-shard interleaved table must hold one row each of: its documents, images or text
    elements (what the coverage check and the index compare a table with)."""
    if id_column == tables.IMAGE_ID:
        return interleaved.document_images(documents)["image_id"]
    if id_column == tables.SENTENCE_ID:
        sentences = interleaved.document_sentences(documents)
        return sentences.select(interleaved.image_id(pl.col("sample_id"), pl.col("text_index")))["sample_id"]
    return documents["sample_id"]


@computes(tables.INTERLEAVED_IMAGE_STATS)
def image_stats_table(work: ShardWork) -> TableOutput:
    return TableOutput(interleaved.image_stats(_images(work)), "image header (ingest)")


@computes_together(tables.INTERLEAVED_IMAGE_PASS)
def interleaved_image_pass(work: ShardWork, due: tuple[TableSpec, ...]) -> dict[TableSpec, TableOutput]:
    """The due per-image tables (CLIP embeddings, NSFW, pHash) from one read and one decode of each
    image of the shard's documents, by the caption branch's consumers (an image scores the same
    whichever kind it came in)."""
    from curation_assets.scoring.image_models import (
        IMAGE_TABLE_MODELS,
        PHASH_PRODUCER,
        image_consumers,
        name_of,
        pass_settings,
        with_pass_notes,
    )
    from curation_assets.scoring.image_pass import PassStats, score_images

    images = _images(work)
    as_caption_table = {
        tables.INTERLEAVED_IMAGE_EMBEDDINGS: tables.CLIP_EMBEDDINGS.name,
        tables.INTERLEAVED_NSFW: tables.NSFW.name,
        tables.INTERLEAVED_PHASH: tables.IMAGE_PHASH.name,
    }
    names = [as_caption_table[spec] for spec in due]
    stats = PassStats()
    consumers = image_consumers(names, work.model, captions=[])
    settings = pass_settings(work.batch_settings, names)
    results = score_images(work.shard, images["image_ref"].to_list(), consumers, settings, work.progress, stats=stats)
    keys = _image_keys(images)
    outputs: dict[TableSpec, TableOutput] = {}
    for spec, name in zip(due, names):
        values = results[name_of(name)]
        if spec is tables.INTERLEAVED_PHASH:
            outputs[spec] = TableOutput(keys.with_columns(pl.Series("phash", values, dtype=pl.String)), PHASH_PRODUCER)
            continue
        model = work.model(IMAGE_TABLE_MODELS[name])
        if spec is tables.INTERLEAVED_IMAGE_EMBEDDINGS:
            vectors = np.zeros((images.height, model.embed_dim), dtype=np.float16)
            if images.height:
                vectors[:] = values
            column = pl.Series("image_embedding", vectors)
        else:
            column = pl.Series("nsfw_probability", values, dtype=pl.Float32)
        outputs[spec] = TableOutput(keys.with_columns(column), model.identity, not model.random_init)
    return with_pass_notes(outputs, [spec.name for spec in due], stats)


@computes(tables.INTERLEAVED_SENTENCE_EMBEDDINGS)
def sentence_embeddings_table(work: ShardWork) -> TableOutput:
    clip = work.model("clip")
    frame = interleaved.sentence_embeddings(interleaved.document_sentences(work.normalized), clip)
    sentence_id = interleaved.image_id(pl.col("sample_id"), pl.col("text_index")).alias(tables.SENTENCE_ID)
    return TableOutput(frame.select(sentence_id, pl.all()), clip.identity, not clip.random_init)


def _embedding_provenance(frame: pl.DataFrame) -> tuple[str, bool]:
    if not frame.height:
        return "n/a", True
    return frame["produced_by"][0], bool(frame["scores_meaningful"][0])


@computes(tables.INTERLEAVED_SIMILARITY)
def similarity_matrix_table(work: ShardWork) -> TableOutput:
    images, sentences = (
        work.read(tables.INTERLEAVED_IMAGE_EMBEDDINGS.name),
        work.read(tables.INTERLEAVED_SENTENCE_EMBEDDINGS.name),
    )
    frame = interleaved.similarity_matrices(work.normalized["sample_id"], images, sentences)
    produced_by, meaningful = _embedding_provenance(images)
    return TableOutput(frame, produced_by, meaningful and _embedding_provenance(sentences)[1])


@computes(tables.INTERLEAVED_IMAGE_MATCHES)
def image_matches_table(work: ShardWork) -> TableOutput:
    matrices = work.read(tables.INTERLEAVED_SIMILARITY.name)
    return TableOutput(interleaved.image_sentence_matches(matrices), *_embedding_provenance(matrices))
