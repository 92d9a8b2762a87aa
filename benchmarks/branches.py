"""The interleaved and text branches next to the caption branch, on the same model and the same images.

- Interleaved scoring per image: CLIP image embeddings end to end (shard bytes -> decode in workers
  -> model), in images/s and documents/s; beside it the caption branch's clip_embeddings in pairs/s,
  same smoke CLIP, same JPEGs, same batch size and workers.
- Interleaved scoring per document: sentence embeddings (CLIP text tower), the image-to-sentence
  similarity matrices and matches, text statistics, language and stopwords, MinHash: documents/s.
- Text documents through every text filter: the scores behind them (text statistics, language id,
  stopwords) and the decisions of the default text recipe: documents/s.

Each branch runs in a fresh process, so its peak memory (VmHWM, benchmarks/memory.py) is its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.corpus import photo_like_jpeg, write_caption_shard, write_interleaved_shard, write_text_shard

MODEL = "smoke-ViT-tiny"
DOCS = 200  # interleaved documents of 6 sentences and 3 images each (benchmarks/corpus.py)
IMAGES_PER_DOC = 3
TEXT_DOCS = 2_000  # ~600 words each
BATCH_SIZE = 32
NUM_WORKERS = 2  # the resource default


def _shard(root: Path, kind: str, name: str):
    from upath import UPath

    from curation_assets.readers import ShardFile
    from curation_assets.sources import SourceKind

    return ShardFile(SourceKind(kind), UPath(root) / "raw" / kind / name, UPath(root))


def _clip():
    from curation_assets.models.clip import load_clip
    from curation_assets.recipe import ClipModel

    return load_clip(ClipModel(model=MODEL, pretrained=None), "smoke", device="cpu")


def _settings():
    from curation_assets.scoring.image_models import BatchSettings

    return BatchSettings(BATCH_SIZE, NUM_WORKERS)


def measure_caption(root: Path) -> dict:
    from curation_assets.normalize import normalize_shard
    from curation_assets.scoring.image_models import clip_embeddings

    shard = _shard(root, "caption", "pairs.tar")
    table = normalize_shard(shard).valid
    clip = _clip()
    started = time.perf_counter()
    clip_embeddings(shard, table, clip, _settings())
    return {"pairs_per_s": table.height / (time.perf_counter() - started)}


def measure_interleaved(root: Path) -> dict:
    import polars as pl

    from curation_assets.normalize import normalize_shard
    from curation_assets.scoring import interleaved as logic
    from curation_assets.scoring.hashes import text_minhash
    from curation_assets.scoring.text_quality import text_quality
    from curation_assets.scoring.text_stats import text_stats

    shard = _shard(root, "interleaved", "mmc4.jsonl")
    docs = normalize_shard(shard).valid
    clip = _clip()
    started = time.perf_counter()
    images = logic.document_images(docs)
    vectors = logic.image_embeddings(shard, images, clip, _settings())
    per_image = time.perf_counter() - started

    started = time.perf_counter()
    sentences = logic.sentence_embeddings(logic.document_sentences(docs), clip, batch_size=BATCH_SIZE)
    matches = logic.image_sentence_matches(logic.similarity_matrices(docs["sample_id"], vectors, sentences))
    texts = logic.document_texts(docs)
    pl.concat([logic.document_counts(docs), text_stats(texts), text_quality(texts)], how="horizontal")
    text_minhash(texts)
    per_document = time.perf_counter() - started
    assert matches.height == images.height
    return {
        "images_per_s": images.height / per_image,
        "docs_per_s_images": docs.height / per_image,
        "docs_per_s_documents": docs.height / per_document,
        "docs_per_s": docs.height / (per_image + per_document),
    }


def measure_text(root: Path) -> dict:
    import polars as pl

    from curation_assets.normalize import normalize_shard
    from curation_assets.recipe import Text
    from curation_assets.scoring.language_id import identify_languages
    from curation_assets.scoring.text_quality import text_quality
    from curation_assets.scoring.text_stats import text_stats
    from curation_assets.selection.filters import decide, resolve, rules_of

    docs = normalize_shard(_shard(root, "text", "text.jsonl")).valid
    texts = docs["text"].to_list()
    started = time.perf_counter()
    scores = pl.concat([docs.select("sample_id"), text_stats(texts), text_quality(texts)], how="horizontal")
    decisions = decide(scores, resolve(rules_of(Text().filters), None))
    elapsed = time.perf_counter() - started
    started = time.perf_counter()
    identify_languages(texts)
    language_only = time.perf_counter() - started
    assert decisions.height == docs.height
    return {
        "docs_per_s": docs.height / elapsed,
        "language_id_docs_per_s": docs.height / language_only,
        "chars_per_doc": float(docs["num_chars"].mean()),
    }


MEASURES = {"caption": measure_caption, "interleaved": measure_interleaved, "text": measure_text}


def _in_fresh_process(which: str, root: Path) -> dict:
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.branches", which, str(root)], capture_output=True, text=True, check=True
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def _write_corpus(root: Path) -> None:
    rng = np.random.default_rng(3)
    images = [photo_like_jpeg(rng) for _ in range(DOCS * IMAGES_PER_DOC)]
    for kind in ("caption", "interleaved", "text"):
        (root / "raw" / kind).mkdir(parents=True)
    write_caption_shard(root / "raw" / "caption", "webdataset_tar", len(images), images, name="pairs.tar")
    write_interleaved_shard(root / "raw" / "interleaved", "mmc4_jsonl", DOCS, images)
    write_text_shard(root / "raw" / "text", "text_jsonl", TEXT_DOCS)


def run() -> dict[str, dict]:
    with tempfile.TemporaryDirectory(prefix="bench-branches-") as folder:
        root = Path(folder)
        _write_corpus(root)
        caption = _in_fresh_process("caption", root)
        interleaved = _in_fresh_process("interleaved", root)
        text = _in_fresh_process("text", root)
    setup = {"model": MODEL, "device": "cpu", "batch_size": BATCH_SIZE, "num_workers": NUM_WORKERS}
    figures = {
        "caption_clip_pairs_per_s": {"value": round(caption["pairs_per_s"], 1), "unit": "pairs/s", **setup},
        "interleaved_clip_images_per_s": {
            "value": round(interleaved["images_per_s"], 1),
            "unit": "images/s",
            "note": "per-image CLIP embeddings, same JPEGs as the caption figure",
            **setup,
        },
        "interleaved_per_image_docs_per_s": {
            "value": round(interleaved["docs_per_s_images"], 1),
            "unit": "docs/s",
            "images_per_doc": IMAGES_PER_DOC,
            **setup,
        },
        "interleaved_per_document_docs_per_s": {
            "value": round(interleaved["docs_per_s_documents"], 1),
            "unit": "docs/s",
            "note": "sentence embeddings, similarity matrices and matches, text stats, language, MinHash",
            **setup,
        },
        "interleaved_scoring_docs_per_s": {"value": round(interleaved["docs_per_s"], 1), "unit": "docs/s", **setup},
        "text_filters_docs_per_s": {
            "value": round(text["docs_per_s"], 1),
            "unit": "docs/s",
            "chars_per_doc": round(text["chars_per_doc"]),
            "note": "text_stats + language id + stopwords + the default text recipe's decisions",
        },
        "text_language_id_docs_per_s": {"value": round(text["language_id_docs_per_s"], 1), "unit": "docs/s"},
    }
    for name, measured in (("caption", caption), ("interleaved", interleaved), ("text", text)):
        figures[f"{name}_branch_peak_rss_mib"] = {
            "value": measured["peak_rss_mib"],
            "unit": "MiB",
            "note": "VmHWM of the measuring process (DataLoader workers not included)",
        }
    return figures


def main(argv: list[str]) -> int:
    from benchmarks.memory import peak_rss_mib

    which, root = argv
    result = MEASURES[which](Path(root))
    print(json.dumps({**result, "peak_rss_mib": peak_rss_mib()}))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3:
        sys.exit(main(sys.argv[1:]))
    for key, figure in run().items():
        print(f"{key:<42} {figure['value']:>10} {figure['unit']}")
