"""LLaVA / Mini-Gemini stage-1 json: what Mini-Gemini's `--data_path` / `--image_folder` read.

A json list of {"id", "image", "conversations": [human "<image>\\n", gpt caption]}; `image` is
relative to the json's own folder, the export root, which is the `--image_folder` to give.
Stage 1 (modality alignment) trains on caption pairs only, so only the mix's caption rows go in.
"""

from __future__ import annotations

import json

import polars as pl
from upath import UPath

from curation_assets.exports.files import ExportResult, PlannedFile, StagedFile, write_export
from curation_assets.exports.layout import LLAVA_FILE
from curation_assets.exports.rows import shuffled

EXPORT_NAME = "llava"
HUMAN_TURN = "<image>\n"


def llava_record(key: str, image: str, caption: str) -> dict:
    return {
        "id": key,
        "image": image,
        "conversations": [{"from": "human", "value": HUMAN_TURN}, {"from": "gpt", "value": caption}],
    }


def export_llava(root: UPath, rows: pl.DataFrame, seed: int) -> ExportResult:
    """`rows`: exports.rows.caption_rows. One json file, samples in the seeded export order."""
    ordered = shuffled(rows, seed).select("key", "image_path", "caption")

    def write(out: StagedFile) -> None:
        # Streamed one record at a time: a 10M-sample list never sits in memory as one string.
        out.write(b"[")
        for index, (key, image, caption) in enumerate(ordered.iter_rows()):
            record = json.dumps(llava_record(key, image, caption), ensure_ascii=False)
            out.write(("\n" if index == 0 else ",\n").encode() + record.encode())
        out.write(b"\n]\n")

    plan = PlannedFile(LLAVA_FILE, ordered.height, write)
    counts = {"samples": ordered.height, "unique_samples": rows["sample_id"].n_unique()}
    details = {"format": "llava-json", "data_path": LLAVA_FILE, "image_folder": "."}
    return write_export(root, EXPORT_NAME, [plan], counts, details)
