"""How the per-shard tables of interleaved documents are made: per image (size, CLIP embedding, NSFW,
pHash), per text element (CLIP text embedding), and per document (the image-to-sentence similarity
matrix and each image's best and assigned sentence). The document's text scores are text_tables.py's.

Images are taken apart from their documents once per table (scoring/interleaved.py) and scored by the
caption branch's per-image loops, so an image scores the same whichever kind it came in.
"""

from __future__ import annotations

import polars as pl

from curation_assets import registry as tables
from curation_assets.scoring import interleaved
from curation_assets.shard_work import ShardWork, computes
from curation_assets.table_spec import TableOutput


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


@computes(tables.INTERLEAVED_IMAGE_EMBEDDINGS)
def image_embeddings_table(work: ShardWork) -> TableOutput:
    clip = work.model("clip")
    frame = interleaved.image_embeddings(work.shard, _images(work), clip, work.batch_settings("clip"), work.progress)
    return TableOutput(frame, clip.identity, not clip.random_init)


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


@computes(tables.INTERLEAVED_NSFW)
def nsfw_table(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.image_models import nsfw_probabilities

    classifier, images = work.model("nsfw"), _images(work)
    scores = nsfw_probabilities(work.shard, images, classifier, work.batch_settings("nsfw"), work.progress)
    frame = _image_keys(images).with_columns(pl.Series("nsfw_probability", scores, dtype=pl.Float32))
    return TableOutput(frame, classifier.identity, not classifier.random_init)


@computes(tables.INTERLEAVED_PHASH)
def image_phash_table(work: ShardWork) -> TableOutput:
    from curation_assets.scoring.image_models import PHASH_PRODUCER, BatchSettings, perceptual_hashes

    images = _images(work)
    # pHash decodes small (64 px) on the CPU: two decoding workers regardless of any model's settings.
    hashes = perceptual_hashes(work.shard, images, BatchSettings(batch_size=64, num_workers=2))
    return TableOutput(_image_keys(images).with_columns(pl.Series("phash", hashes, dtype=pl.String)), PHASH_PRODUCER)
