"""Token counts per sample: text tokens of the trainer's tokenizer plus a fixed cost per image.

The tokenizer is named like the models (hub id or local folder, loaded with AutoTokenizer); the
smoke profile builds a tiny WordPiece tokenizer from code instead, so tests and the offline demo
never download one. Counting is per pool frame, so it can run (and be kept) per shard.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from curation_assets.models.availability import hub_access
from curation_assets.models.smoke import smoke_folder

SMOKE_TOKENIZER_VERSION = 1
BATCH_TEXTS = 1024
TOKEN_COUNT_SCHEMA = pl.Schema(
    {"sample_id": pl.String, "text_tokens": pl.Int64, "num_images": pl.Int32, "tokens": pl.Int64}
)
# Words the demo corpus is made of, whole in the smoke vocabulary so counts look like word counts;
# anything else splits into letters, as an unseen word does in a real WordPiece vocabulary.
_SMOKE_WORDS = (
    "a an the of on in at to and with for from by is are was this that it its photo picture image "
    "red blue green yellow black white orange purple circle square triangle shape background dog cat "
    "man woman people street city house car tree sky water table sign road park day night small large"
).split()


def build_smoke_tokenizer(folder: str | Path) -> Path:
    """A toy uncased WordPiece tokenizer (BERT's classes), saved like any tokenizer folder."""
    from transformers import BertTokenizerFast

    folder = Path(folder)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab += ["##" + c for c in string.ascii_lowercase + string.digits] + list(_SMOKE_WORDS)
    vocab = list(dict.fromkeys(vocab))
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, model_max_length=1 << 30)
    tokenizer.save_pretrained(folder)
    # smoke_folder takes config.json as "finished"; AutoTokenizer reads the model type from it too.
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "vocab_size": len(vocab)}))
    return folder


def load_tokenizer(name: str, profile: str = "pretrained") -> Any:
    """A tokenizer by hub id or local folder; under the smoke profile a name that is not a local
    folder means the offline smoke tokenizer (as every smoke model does)."""
    from transformers import AutoTokenizer

    location = name
    if profile == "smoke" and not Path(name).exists():
        location = str(smoke_folder(f"wordpiece-tokenizer-v{SMOKE_TOKENIZER_VERSION}", build_smoke_tokenizer))
    if Path(location).exists():
        return AutoTokenizer.from_pretrained(location)
    with hub_access(f"tokenizer {name}"):  # fails within seconds when offline and not cached
        return AutoTokenizer.from_pretrained(location)


def text_token_counts(tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
    """Tokens per text, without special tokens (the trainer's template adds those once per sample)."""
    counts = np.zeros(len(texts), dtype=np.int64)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    for start in range(0, len(texts), BATCH_TEXTS):
        batch = list(texts[start : start + BATCH_TEXTS])
        if backend is not None:
            # The Rust tokenizer directly: batched, and no "longer than model_max_length" warnings.
            lengths = [len(encoding.ids) for encoding in backend.encode_batch(batch, add_special_tokens=False)]
        else:
            lengths = [len(ids) for ids in tokenizer(batch, add_special_tokens=False)["input_ids"]]
        counts[start : start + len(batch)] = lengths
    return counts


def count_tokens(pool: pl.DataFrame, kind: str, tokenizer: Any, image_tokens: int) -> pl.DataFrame:
    """(sample_id, text_tokens, num_images, tokens) for a caption, interleaved or text pool frame."""
    if kind == "caption":
        text_tokens = text_token_counts(tokenizer, pool["caption"].to_list())
        num_images = np.ones(pool.height, dtype=np.int32)
    elif kind == "text":
        text_tokens = text_token_counts(tokenizer, pool["text"].to_list())
        num_images = np.zeros(pool.height, dtype=np.int32)
    elif kind == "interleaved":
        pieces = (
            pool.select(pl.int_range(pl.len()).alias("row"), "texts")
            .explode("texts")
            .filter(pl.col("texts").is_not_null())
        )
        per_piece = text_token_counts(tokenizer, pieces["texts"].to_list())
        text_tokens = np.bincount(pieces["row"].to_numpy(), weights=per_piece, minlength=pool.height).astype(np.int64)
        if "num_images" in pool.columns:
            num_images = pool["num_images"].fill_null(0).to_numpy().astype(np.int32)
        else:
            num_images = pool["images"].list.eval(pl.element().is_not_null()).list.sum().fill_null(0)
            num_images = num_images.to_numpy().astype(np.int32)
    else:
        raise ValueError(f"unknown kind {kind!r}: expected caption, interleaved or text")
    return pl.DataFrame(
        {
            "sample_id": pool["sample_id"],
            "text_tokens": text_tokens,
            "num_images": num_images,
            "tokens": text_tokens + num_images.astype(np.int64) * image_tokens,
        },
        schema=TOKEN_COUNT_SCHEMA,
    )


STORED_COUNT_SCHEMA = pl.Schema(
    {
        "sample_id": pl.String,
        "kind": pl.String,
        "text_tokens": pl.Int64,
        "num_images": pl.Int32,
        "tokens": pl.Int64,
        "content_hash": pl.String,
        "counted_with": pl.String,
    }
)
_TEXT_OF = {
    "caption": lambda: pl.col("caption"),
    "text": lambda: pl.col("text"),
    # The pieces and how many images they sit with: both set the count.
    "interleaved": lambda: pl.format(
        "{}\x1f{}", pl.col("texts").list.drop_nulls().list.join("\x1f"), pl.col("num_images")
    ),
}


def content_hashes(pool: pl.DataFrame, kind: str) -> pl.Series:
    """A hash of what a sample's count depends on. Polars' hash may change between versions; then
    every sample is simply counted again, which is the only cost of a stale hash here."""
    return pool.select(_TEXT_OF[kind]().hash(seed=0).cast(pl.String).alias("content_hash"))["content_hash"]


@dataclass(frozen=True)
class RefreshedCounts:
    frame: pl.DataFrame  # STORED_COUNT_SCHEMA, one row per pool sample
    counted: int  # samples tokenized in this call
    reused: int  # samples whose stored count still held


def refresh_token_counts(
    pools: dict[str, pl.DataFrame],
    previous: pl.DataFrame | None,
    counted_with: str,
    tokenizer: Callable[[], Any],
    image_tokens: int,
) -> RefreshedCounts:
    """Token counts of every pool sample, tokenizing only samples that are new or whose text changed
    since `previous` (or that were counted with another tokenizer). `tokenizer` is called only when
    something needs counting, so an unchanged pool never loads one."""
    loaded: list[Any] = []
    frames, counted, reused = [], 0, 0
    for kind, pool in pools.items():
        keyed = pool.with_columns(content_hashes(pool, kind))
        known = pl.DataFrame(schema=STORED_COUNT_SCHEMA)
        if previous is not None and previous.height:
            known = previous.filter((pl.col("kind") == kind) & (pl.col("counted_with") == counted_with))
        kept = known.join(keyed.select("sample_id", "content_hash"), on=["sample_id", "content_hash"], how="semi")
        fresh = keyed.join(kept.select("sample_id"), on="sample_id", how="anti")
        if fresh.height:
            if not loaded:
                loaded.append(tokenizer())
            made = count_tokens(fresh, kind, loaded[0], image_tokens).with_columns(
                pl.lit(kind).alias("kind"), fresh["content_hash"], pl.lit(counted_with).alias("counted_with")
            )
            frames.append(made.select(STORED_COUNT_SCHEMA.names()))
        frames.append(kept.select(STORED_COUNT_SCHEMA.names()))
        counted, reused = counted + fresh.height, reused + kept.height
    frame = pl.concat(frames).cast(dict(STORED_COUNT_SCHEMA)) if frames else pl.DataFrame(schema=STORED_COUNT_SCHEMA)
    return RefreshedCounts(frame.sort("kind", "sample_id"), counted, reused)
