"""Data-Juicer jsonl, one file per kind, so a team can continue in Data-Juicer.

Data-Juicer's multimodal format: `text` with an `<__dj__image>` token where each image goes and
`<|__dj__eoc|>` closing each chunk (a chunk starts at an image), and `images`: paths relative to the
jsonl. Caption rows are one chunk (`<__dj__image>\\ncaption <|__dj__eoc|>`), interleaved documents
one chunk per image (texts before the first image form their own chunk), text rows plain `text`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import polars as pl
from upath import UPath

from curation_assets.exports.files import ExportResult, PlannedFile, StagedFile, write_export
from curation_assets.exports.layout import data_juicer_file
from curation_assets.exports.rows import shuffled

EXPORT_NAME = "data_juicer"
IMAGE_TOKEN = "<__dj__image>"
EOC_TOKEN = "<|__dj__eoc|>"


def caption_text(caption: str) -> str:
    return f"{IMAGE_TOKEN}\n{caption} {EOC_TOKEN}"


def document_text(texts: Sequence[str | None], image_paths: Sequence[str | None]) -> tuple[str, list[str]]:
    """The DJ text and image list of one interleaved document (aligned texts / image paths)."""
    chunks: list[list[str]] = []
    images: list[str] = []
    for text, image in zip(texts, image_paths):
        if image is not None:
            chunks.append([IMAGE_TOKEN])
            images.append(image)
        else:
            if not chunks:
                chunks.append([])
            chunks[-1].append(text)
    return " ".join(" ".join(chunk) + f" {EOC_TOKEN}" for chunk in chunks), images


def _identity(row: dict) -> dict:
    return {
        "id": row["key"],
        "sample_id": row["sample_id"],
        "repeat_index": row["repeat_index"],
        "source_shard": row["shard_id"],
    }


def _record(kind: str, row: dict) -> dict:
    if kind == "caption":
        return {"text": caption_text(row["caption"]), "images": [row["image_path"]], **_identity(row)}
    if kind == "interleaved":
        text, images = document_text(row["texts"], row["image_paths"])
        return {"text": text, "images": images, **_identity(row)}
    return {"text": row["text"], **_identity(row)}


def export_data_juicer(root: UPath, rows_by_kind: dict[str, pl.DataFrame], seed: int) -> ExportResult:
    """`rows_by_kind`: exports.rows caption_rows / interleaved_rows / text_rows by kind (any subset).
    The files sit at the export root, so image paths relative to the file are the store's own paths."""
    plans = []
    for kind, rows in rows_by_kind.items():
        ordered = shuffled(rows, seed)

        def write(out: StagedFile, ordered: pl.DataFrame = ordered, kind: str = kind) -> None:
            for row in ordered.iter_rows(named=True):
                out.write(json.dumps(_record(kind, row), ensure_ascii=False).encode() + b"\n")

        plans.append(PlannedFile(data_juicer_file(kind), ordered.height, write))
    counts = {kind: rows.height for kind, rows in rows_by_kind.items()}
    counts["samples"] = sum(counts.values())
    return write_export(root, EXPORT_NAME, plans, counts, {"format": "data-juicer-jsonl"})
