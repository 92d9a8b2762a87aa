"""Interleaved documents (MMC4 / OBELICS) taken apart for scoring: one row per image, one row per
text element, and each document's text in one piece.

A document is two aligned lists (`texts`, `images`; exactly one set per position). Models that look
at images (CLIP, NSFW, pHash) run over the image rows through the same per-image scoring as caption
pairs: the image rows carry `image_ref` and the caption table's image columns, so the existing
scorers and dedup read them unchanged. Text scores (statistics, language, MinHash) run over the
document text. `image_index` / `text_index` are positions in the aligned lists, so every score can
be put back where it belongs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from curation_assets.image_ref import ImageRef
from curation_assets.readers import ShardFile

# OBELICS shards hold their images inline in the `images` list column.
OBELICS_IMAGE_COLUMN = "images"
# How a document's text elements are joined into the one text its text scores read: one per line,
# so line-based scores (perplexity) see each sentence or paragraph as a line.
TEXT_SEPARATOR = "\n"


def image_id(sample_id: pl.Expr, image_index: pl.Expr) -> pl.Expr:
    """`<sample_id>/<image_index>`: the id of one image of one document (sample ids are hex)."""
    return pl.concat_str([sample_id, pl.lit("/"), image_index.cast(pl.String)])


def document_images(docs: pl.DataFrame) -> pl.DataFrame:
    """One row per image of each document, in document then reading order.

    Columns: image_id, sample_id, shard_id, image_index (position in the aligned lists),
    image_ordinal (0 for a document's first image), image_ref, image_sha256, image_num_bytes,
    image_width, image_height, image_format, image_mode (the caption table's names, so per-image
    scorers and exact dedup read these rows as they read caption rows).

    Images held inline in an OBELICS parquet shard (ingest writes `bytes:<ordinal>`, which names no
    place in the shard) get `parquet:<row>:images:<image_index>`: element image_index of the row's
    `images` list, which image_ref.py resolves.
    """
    exploded = (
        docs.select(
            "sample_id",
            "shard_id",
            "key",
            "images",
            pl.int_ranges(0, pl.col("images").list.len(), dtype=pl.Int32).alias("image_index"),
        )
        .explode("images", "image_index")
        .filter(pl.col("images").is_not_null())
        .unnest("images")
    )
    refs = [
        ImageRef.parquet(int(key), OBELICS_IMAGE_COLUMN, index).format() if ref.startswith("bytes:") else ref
        for key, index, ref in zip(exploded["key"], exploded["image_index"], exploded["ref"])
    ]
    return exploded.select(
        image_id(pl.col("sample_id"), pl.col("image_index")).alias("image_id"),
        "sample_id",
        "shard_id",
        "image_index",
        pl.int_range(pl.len(), dtype=pl.Int32).over("sample_id").alias("image_ordinal"),
        pl.Series("image_ref", refs, dtype=pl.String),
        *(
            pl.col(field).alias(f"image_{field}")
            for field in ("sha256", "num_bytes", "width", "height", "format", "mode")
        ),
    )


def image_stats(images: pl.DataFrame) -> pl.DataFrame:
    """The image rules' size columns per image, named as the caption branch's image_stats table."""
    return images.select("image_id", "sample_id", "image_index", *image_stats_columns())


def image_stats_columns() -> list[pl.Expr]:
    """The image_stats table's columns from the image header columns ingest writes (caption rows and
    a document's image rows alike)."""
    return [
        pl.col("image_width").alias("width"),
        pl.col("image_height").alias("height"),
        (pl.col("image_width") / pl.col("image_height")).cast(pl.Float32).alias("aspect_ratio"),
        pl.col("image_num_bytes").alias("num_bytes"),
        pl.col("image_format").alias("format"),
        pl.col("image_mode").alias("mode"),
    ]


def document_sentences(docs: pl.DataFrame) -> pl.DataFrame:
    """One row per text element (an MMC4 sentence, an OBELICS paragraph): sample_id, text_index
    (position in the aligned lists), text."""
    return (
        docs.select(
            "sample_id",
            "texts",
            pl.int_ranges(0, pl.col("texts").list.len(), dtype=pl.Int32).alias("text_index"),
        )
        .explode("texts", "text_index")
        .filter(pl.col("texts").is_not_null())
        .select("sample_id", "text_index", pl.col("texts").alias("text"))
    )


def document_texts(docs: pl.DataFrame) -> list[str]:
    """Each document's text elements in reading order, one per line (images left out)."""
    return docs.select(pl.col("texts").list.drop_nulls().list.join(TEXT_SEPARATOR).fill_null(""))["texts"].to_list()


def document_counts(docs: pl.DataFrame) -> pl.DataFrame:
    """sample_id, num_images, num_sentences (text elements), per document."""
    return docs.select(
        "sample_id",
        pl.col("num_images").cast(pl.Int32),
        pl.col("num_texts").cast(pl.Int32).alias("num_sentences"),
    )


# --- CLIP: image and sentence embeddings ----------------------------------------------------------


def image_embeddings(shard: ShardFile, images: pl.DataFrame, clip, settings, progress=None) -> pl.DataFrame:
    """L2-normalised CLIP image embedding (float16) of every image row: the image pass with CLIP alone
    (interleaved_tables.interleaved_image_pass computes it with the other image tables)."""
    from curation_assets.scoring.image_models import clip_consumer
    from curation_assets.scoring.image_pass import score_images

    vectors = np.zeros((images.height, clip.embed_dim), dtype=np.float16)
    if images.height:
        vectors[:] = score_images(shard, images["image_ref"].to_list(), [clip_consumer(clip)], settings, progress)[
            "clip"
        ]
    return images.select("image_id", "sample_id", "image_index").with_columns(pl.Series("image_embedding", vectors))


def sentence_embeddings(sentences: pl.DataFrame, clip, batch_size: int = 256) -> pl.DataFrame:
    """L2-normalised CLIP text embedding (float16) of every text element, from CLIP's text tower as
    MMC4 did (its tokenizer keeps the first 77 tokens, as MMC4's did)."""
    texts = sentences["text"].to_list()
    vectors = np.zeros((len(texts), clip.embed_dim), dtype=np.float16)
    for start in range(0, len(texts), batch_size):
        vectors[start : start + batch_size] = clip.encode_texts(texts[start : start + batch_size]).cpu().numpy()
    return sentences.select("sample_id", "text_index").with_columns(pl.Series("text_embedding", vectors))


# --- image-to-sentence similarity -----------------------------------------------------------------

# Per document: the positions the matrix's rows (images) and columns (text elements) stand for.
MATRIX_SCHEMA = {
    "sample_id": pl.String,
    "image_indices": pl.List(pl.Int32),
    "text_indices": pl.List(pl.Int32),
    "similarity_matrix": pl.List(pl.List(pl.Float32)),
}


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    # Stored float16 embeddings drift from unit length; renormalise in float32 (as clip_similarity does).
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _by_document(frame: pl.DataFrame, index: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """sample_id -> (positions in reading order, row numbers into `frame`)."""
    ordered = frame.select("sample_id", index).with_row_index("row").sort("sample_id", index)
    groups = ordered.group_by("sample_id", maintain_order=True).agg(index, "row")
    return {
        sample: (np.asarray(positions, dtype=np.int32), np.asarray(rows, dtype=np.int64))
        for sample, positions, rows in groups.iter_rows()
    }


def similarity_matrices(
    sample_ids: Sequence[str] | pl.Series, image_vectors: pl.DataFrame, sentence_vectors: pl.DataFrame
) -> pl.DataFrame:
    """Per document (every id in `sample_ids`, in that order): the cosine similarity of each image to
    each text element, what MMC4 ships as `similarity_matrix` (images x sentences, reading order).

    Columns: sample_id, image_indices, text_indices (the positions the matrix's rows and columns
    stand for), similarity_matrix (List(List(Float32)); empty for a document without images).
    """
    images, sentences = _by_document(image_vectors, "image_index"), _by_document(sentence_vectors, "text_index")
    image_matrix = _unit_rows(image_vectors["image_embedding"].to_numpy())
    sentence_matrix = _unit_rows(sentence_vectors["text_embedding"].to_numpy())
    empty = (np.zeros(0, np.int32), np.zeros(0, np.int64))
    rows = []
    for sample in pl.Series(sample_ids, dtype=pl.String).to_list():
        image_positions, image_rows = images.get(sample, empty)
        text_positions, text_rows = sentences.get(sample, empty)
        similarity = image_matrix[image_rows] @ sentence_matrix[text_rows].T
        rows.append((sample, image_positions.tolist(), text_positions.tolist(), similarity.tolist()))
    return pl.DataFrame(
        rows,
        schema=MATRIX_SCHEMA,
        orient="row",
    )


def shipped_similarity_matrices(docs: pl.DataFrame) -> pl.DataFrame:
    """The similarity matrix MMC4 ships in each document (`similarity_matrix` in source_meta: CLIP
    ViT-L/14, images in `image_info` order x `text_list`), in similarity_matrices' layout: rows and
    columns follow the aligned lists' reading order, as the reader placed the images (before their
    matched sentence, images matched to one sentence in image_info order). A document that ships
    none (OBELICS, or MMC4 without it) gets an empty matrix over its images: its images then score
    null, so ship-based rules cannot pass them silently."""
    import json

    rows = []
    for sample, texts, meta in docs.select("sample_id", "texts", "source_meta").iter_rows():
        image_positions = [i for i, text in enumerate(texts) if text is None]
        text_positions = [i for i, text in enumerate(texts) if text is not None]
        source = json.loads(meta or "{}")
        matrix, info = source.get("similarity_matrix"), source.get("image_info") or []
        if not matrix or len(matrix) != len(info) or len(info) != len(image_positions):
            rows.append((sample, image_positions, [], [[] for _ in image_positions]))
            continue
        # The reader's order: by matched sentence, ties in image_info order (a stable sort).
        reading_order = sorted(range(len(info)), key=lambda row: info[row]["matched_text_index"])
        rows.append((sample, image_positions, text_positions, [matrix[row] for row in reading_order]))
    return pl.DataFrame(
        rows,
        schema=MATRIX_SCHEMA,
        orient="row",
    )


def image_sentence_matches(matrices: pl.DataFrame) -> pl.DataFrame:
    """Per image: its best text element and, as MMC4 assigned images, its assigned one.

    - best_text_index / best_similarity: the text element with the highest similarity (argmax).
    - assigned_text_index / assigned_similarity: MMC4's re-assignment, a linear assignment (the
      Hungarian method, scipy's linear_sum_assignment) maximising the document's total similarity
      with each text element taking at most one image. When a document has more images than text
      elements, the images left over keep their best text element.

    A document without text elements gives its images nulls (no similarity to compare).
    """
    from scipy.optimize import linear_sum_assignment

    rows = []
    for sample, image_indices, text_indices, matrix in matrices.select(
        "sample_id", "image_indices", "text_indices", "similarity_matrix"
    ).iter_rows():
        if not image_indices:
            continue
        if not text_indices:
            rows += [(sample, index, None, None, None, None) for index in image_indices]
            continue
        similarity = np.asarray(matrix, dtype=np.float32)
        best = similarity.argmax(axis=1)
        assigned = best.copy()
        assigned_images, assigned_texts = linear_sum_assignment(similarity, maximize=True)
        assigned[assigned_images] = assigned_texts
        for row, index in enumerate(image_indices):
            rows.append(
                (
                    sample,
                    index,
                    text_indices[best[row]],
                    float(similarity[row, best[row]]),
                    text_indices[assigned[row]],
                    float(similarity[row, assigned[row]]),
                )
            )
    schema = {
        "sample_id": pl.String,
        "image_index": pl.Int32,
        "best_text_index": pl.Int32,
        "best_similarity": pl.Float32,
        "assigned_text_index": pl.Int32,
        "assigned_similarity": pl.Float32,
    }
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    return frame.select(image_id(pl.col("sample_id"), pl.col("image_index")).alias("image_id"), *schema)
