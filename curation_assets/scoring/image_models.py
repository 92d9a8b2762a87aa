"""Per-shard scores that need the images: CLIP embeddings, BLIP ITM, watermark, NSFW, pHash.

Each model is an ImageConsumer of the shared image pass (image_pass.score_images): `score_image_tables`
computes any subset of these tables from one read and one decode per image. The one-model functions
below (clip_embeddings, itm_probabilities, ...) are the same pass with a single consumer. A table
computed alone or with others holds the same values wherever its images were decoded at the same
scale (non-JPEG images always; JPEGs when BatchSettings.decode_min_side pins the scale), and the
same picture to within a few levels otherwise (image_batches.reduced_for); test_image_pass.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl
import torch

from curation_assets.readers import ShardFile
from curation_assets.registry import CLIP_EMBEDDINGS, IMAGE_PHASH, ITM, NSFW, WATERMARK
from curation_assets.scoring.batch_settings import BatchSettings
from curation_assets.scoring.image_pass import ImageConsumer, PassStats, score_images
from curation_assets.scoring.pixel_handoff import (
    OnDevice,
    handoff,
    nsfw_input,
    nsfw_pixels,
    split_image_processor,
    split_torchvision,
)
from curation_assets.table_spec import TableOutput

Progress = Callable[[int, int], None]  # (rows done, rows total)

# The per-shard caption tables the image pass computes, and the model each needs (pHash needs none).
IMAGE_TABLE_MODELS: dict[str, str | None] = {
    CLIP_EMBEDDINGS.name: "clip",
    ITM.name: ITM.name,
    WATERMARK.name: WATERMARK.name,
    NSFW.name: NSFW.name,
    IMAGE_PHASH.name: None,
}
PHASH_PRODUCER = "imagehash.phash"
PHASH_DECODE_SIDE = 64  # pHash reads a 32x32 thumbnail; see hashes._PHASH_DECODE_SIDE


# --- consumers: one per model ---------------------------------------------------------------------


def clip_consumer(clip) -> ImageConsumer:
    """L2-normalised CLIP image embeddings, float16."""
    from curation_assets.scoring.image_device import compose_on_tensors

    def score(pixels, _positions):
        return clip.encode_images(pixels).cpu().numpy().astype(np.float16)

    return ImageConsumer(
        "clip",
        min_side=clip.image_size,
        score=score,
        output="vector",
        device_transform=compose_on_tensors(clip.preprocess, clip.dtype),
        device=str(clip.device),
        **handoff(clip.preprocess, split_torchvision(clip.preprocess), clip.device),
    )


class BlipPixels:
    """BLIP's processor on one decoded image (the ITM model's `preprocess`, without the model in tow
    when a worker receives it)."""

    def __init__(self, image_processor):
        self.image_processor = image_processor

    def __call__(self, image) -> torch.Tensor:
        return self.image_processor(images=image, return_tensors="pt").pixel_values[0]


def itm_consumer(itm, captions: list[str]) -> ImageConsumer:
    """P(image and caption match), each image with the caption of its own row."""
    from curation_assets.scoring.image_device import processor_on_tensors

    def score(pixels, positions):
        return itm.match_probability(pixels, [captions[p] for p in positions]).cpu().numpy()

    image_processor = itm.processor.image_processor
    return ImageConsumer(
        ITM.name,
        min_side=itm.image_size,
        score=score,
        device_transform=processor_on_tensors(image_processor, itm.dtype),
        device=str(itm.device),
        **handoff(BlipPixels(image_processor), split_image_processor(image_processor), itm.device),
    )


def watermark_consumer(detector) -> ImageConsumer:
    from curation_assets.scoring.image_device import compose_on_tensors

    def score(pixels, _positions):
        return detector.score(pixels).cpu().numpy()

    return ImageConsumer(
        WATERMARK.name,
        min_side=detector.image_size,
        score=score,
        device_transform=compose_on_tensors(detector.preprocess, detector.dtype),
        device=str(detector.device),
        **handoff(detector.preprocess, split_torchvision(detector.preprocess), detector.device),
    )


def nsfw_consumer(classifier) -> ImageConsumer:
    from curation_assets.scoring.image_device import nsfw_on_tensors

    def score(batch, _positions):
        if isinstance(batch, torch.Tensor):
            return classifier.score_tensor(batch)
        return classifier.score(np.asarray(batch))

    return ImageConsumer(
        NSFW.name,
        min_side=256,  # Open-NSFW resizes to 256 first, so JPEGs can decode at that scale.
        score=score,
        device_transform=nsfw_on_tensors,
        device=classifier.device,
        transform=nsfw_pixels,
        per_batch=OnDevice(nsfw_input, classifier.device),
    )


def _same(values, _positions):
    return values


def phash_consumer() -> ImageConsumer:
    from curation_assets.scoring.hashes import phash_hex
    from curation_assets.scoring.image_device import phash_on_tensors

    # 64 px: a reduced JPEG decode that still leaves the 32x32 resize a true downscale.
    return ImageConsumer(
        IMAGE_PHASH.name, phash_hex, PHASH_DECODE_SIDE, _same, output="object", collate=list,
        device_transform=phash_on_tensors,
    )  # fmt: skip


def image_consumers(due: Iterable[str], model: Callable[[str], Any], captions: list[str]) -> list[ImageConsumer]:
    """One consumer per due table (names of IMAGE_TABLE_MODELS); `model(name)` gives a loaded model."""
    builders = {
        CLIP_EMBEDDINGS.name: lambda: clip_consumer(model("clip")),
        ITM.name: lambda: itm_consumer(model(ITM.name), captions),
        WATERMARK.name: lambda: watermark_consumer(model(WATERMARK.name)),
        NSFW.name: lambda: nsfw_consumer(model(NSFW.name)),
        IMAGE_PHASH.name: phash_consumer,
    }
    due = list(dict.fromkeys(due))
    unknown = [name for name in due if name not in builders]
    if unknown:
        raise KeyError(f"no image table {unknown}; known: {', '.join(builders)}")
    return [builders[name]() for name in due]


# --- tables from one pass -------------------------------------------------------------------------


def pass_settings(batch_settings: Callable[[str], BatchSettings], tables: Iterable[str]) -> BatchSettings:
    """The loader settings of a pass computing `tables` (names of IMAGE_TABLE_MODELS): its first
    model's (every model resource shares the runtime); pHash alone decodes small with two workers."""
    models = [IMAGE_TABLE_MODELS[name] for name in tables if IMAGE_TABLE_MODELS[name]]
    return batch_settings(models[0]) if models else BatchSettings(batch_size=64, num_workers=2)


def with_pass_notes(outputs: dict[Any, TableOutput], tables: Iterable[str], stats: PassStats) -> dict:
    """`outputs` with what their pass did added to each one's notes (its partition's metadata)."""
    notes = pass_notes(tables, stats)
    return {key: replace(output, notes={**output.notes, **notes}) for key, output in outputs.items()}


def pass_notes(tables: Iterable[str], stats: PassStats) -> dict:
    """What one pass did, for each of its tables' partitions: which tables shared it, where it
    decoded, decodes per image, its time and the models' share of it."""
    return {
        "image_pass": ", ".join(tables),
        "image_pass_path": stats.path,
        "image_pass_decoders": stats.decoders,
        "decodes_per_image": round(stats.decodes_per_image, 3),
        "pass_seconds": round(stats.seconds, 2),
        "model_seconds": round(sum(stats.model_seconds.values()), 2),
    }


def score_image_tables(
    shard: ShardFile,
    table: pl.DataFrame,
    due: Iterable[str],
    model: Callable[[str], Any],
    settings: BatchSettings,
    progress: Progress | None = None,
    *,
    stats: PassStats | None = None,
) -> dict[str, TableOutput]:
    """The due image tables of one shard (names of IMAGE_TABLE_MODELS) from one pass over its
    images. `table` is the shard's normalized caption table; `model(name)` returns a loaded model
    (ShardWork.model or the Dagster resources); only the due tables' models are asked for."""
    due = list(dict.fromkeys(due))
    consumers = image_consumers(due, model, _captions(table, due))
    captions: dict[str, np.ndarray] = {}

    def encode_captions() -> None:  # CLIP's caption side needs no image: done while workers decode
        if CLIP_EMBEDDINGS.name in due:
            captions["clip"] = clip_text_embeddings(model("clip"), table["caption"].to_list(), settings.batch_size)

    results = score_images(
        shard, table["image_ref"].to_list(), consumers, settings, progress, stats=stats, meanwhile=encode_captions
    )
    ids = table.select("sample_id")
    outputs: dict[str, TableOutput] = {}
    for name in due:
        if name == CLIP_EMBEDDINGS.name:
            clip = model("clip")
            frame = _clip_frame(table, clip, results[name_of(name)], captions["clip"])
            outputs[name] = TableOutput(frame, clip.identity, not clip.random_init, notes=precision_note(clip))
        elif name == IMAGE_PHASH.name:
            outputs[name] = TableOutput(
                ids.with_columns(pl.Series("phash", results[name], dtype=pl.String)), PHASH_PRODUCER
            )
        else:
            loaded = model(IMAGE_TABLE_MODELS[name])
            column = pl.Series(f"{name}_probability", results[name], dtype=pl.Float32)
            outputs[name] = TableOutput(
                ids.with_columns(column), loaded.identity, not loaded.random_init, notes=precision_note(loaded)
            )
    return outputs


def precision_note(loaded) -> dict:
    """The precision a model ran at (fp32, or fp16 / bf16 under half_precision), for its table's
    partition metadata: the one setting of the runtime that moves scores (by about 1e-3)."""
    from curation_assets.models.device import precision_name

    dtype = getattr(loaded, "dtype", None)  # the ONNX NSFW classifier runs float32 and has no dtype
    return {"precision": precision_name(dtype) if dtype is not None else "fp32"}


def _captions(table: pl.DataFrame, due: list[str]) -> list[str]:
    # Only ITM reads captions; image tables of other kinds (interleaved images) have none.
    return table["caption"].to_list() if ITM.name in due else []


def name_of(table_name: str) -> str:
    """The consumer name of a table (CLIP's consumer is named after its model)."""
    return "clip" if table_name == CLIP_EMBEDDINGS.name else table_name


def _clip_frame(table: pl.DataFrame, clip, image_vectors: np.ndarray, texts: np.ndarray) -> pl.DataFrame:
    rows = table.height
    images = np.zeros((rows, clip.embed_dim), dtype=np.float16)
    if rows:
        images[:] = image_vectors
    return table.select("sample_id").with_columns(
        pl.Series("image_embedding", images), pl.Series("text_embedding", texts)
    )


def clip_text_embeddings(clip, texts: list[str], batch_size: int) -> np.ndarray:
    """L2-normalised CLIP caption embeddings, float16, (len(texts), embed_dim): what
    clip.encode_texts computes, at a fraction of the cost for captions.

    open_clip pads every caption to the full context (77 tokens), but its text tower is causal and
    pools at the end-of-text token, so positions after it change nothing. Captions are therefore
    encoded in batches of similar length (sorted by token count), each batch cut to its longest
    caption: a 15-token caption costs 15 positions, not 77. Models this does not apply to (another
    pooling, a Hugging Face text tower) go through clip.encode_texts as they are."""
    vectors = np.zeros((len(texts), clip.embed_dim), dtype=np.float16)
    encode = _trimmed_text_encoder(clip)
    if not texts:
        return vectors
    if encode is None:
        for start in range(0, len(texts), batch_size):
            vectors[start : start + batch_size] = clip.encode_texts(texts[start : start + batch_size]).cpu().numpy()
        return vectors
    # Each distinct caption once: a repeated caption gets the very same vector wherever it appears,
    # whatever batch (and so cut length) it would have fallen into.
    distinct, where = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    tokens = clip.tokenizer(distinct.tolist())
    lengths = tokens.argmax(dim=-1) + 1  # the end-of-text token has the highest id: it ends each caption
    order = torch.argsort(lengths, stable=True)
    encoded = np.zeros((len(distinct), clip.embed_dim), dtype=np.float16)
    for start in range(0, len(distinct), batch_size):
        chunk = order[start : start + batch_size]
        encoded[chunk.numpy()] = encode(tokens[chunk, : int(lengths[chunk].max())]).cpu().numpy()
    vectors[:] = encoded[where.reshape(-1)]
    return vectors


def _trimmed_text_encoder(clip):
    """open_clip's CLIP.encode_text for token rows cut short, or None where it would not be exact."""
    import open_clip

    model = clip.model
    mask = getattr(model, "attn_mask", None)
    if type(model) is not open_clip.CLIP or getattr(model, "text_pool_type", None) != "argmax" or mask is None:
        return None

    @torch.inference_mode()
    def encode(tokens: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        tokens = tokens.to(clip.device)
        cast = model.transformer.get_cast_dtype()
        x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:length].to(cast)
        x = model.ln_final(model.transformer(x, attn_mask=mask[:length, :length]))
        x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
        projection = model.text_projection
        x = projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection
        return torch.nn.functional.normalize(x.float(), dim=-1)

    return encode


# --- one model at a time (the same pass with one consumer) ----------------------------------------


def clip_embeddings(
    shard: ShardFile, table: pl.DataFrame, clip, settings: BatchSettings, progress: Progress | None = None
) -> pl.DataFrame:
    """L2-normalised CLIP image and caption embeddings, float16: computed once, read by every
    embedding-based score (similarity, aesthetics, dedup, coreset, eval)."""
    return score_image_tables(shard, table, [CLIP_EMBEDDINGS.name], {"clip": clip}.__getitem__, settings, progress)[
        CLIP_EMBEDDINGS.name
    ].frame


def per_image_scores(
    shard: ShardFile,
    table: pl.DataFrame,
    transform,
    score: Callable[[Any, np.ndarray], np.ndarray],
    settings: BatchSettings,
    min_side: int | None,
    progress: Progress | None = None,
) -> np.ndarray:
    """One float per row of `table`: `score(batch, positions)` on decoded, transformed images."""
    consumer = ImageConsumer("scores", transform, min_side, score)
    return score_images(shard, table["image_ref"].to_list(), [consumer], settings, progress)["scores"]


def _one(shard, table, name: str, loaded, settings, progress) -> np.ndarray:
    consumers = image_consumers([name], {IMAGE_TABLE_MODELS[name]: loaded}.__getitem__, _captions(table, [name]))
    return score_images(shard, table["image_ref"].to_list(), consumers, settings, progress)[name]


def itm_probabilities(
    shard: ShardFile, table: pl.DataFrame, itm, settings: BatchSettings, progress: Progress | None = None
) -> np.ndarray:
    return _one(shard, table, ITM.name, itm, settings, progress)


def watermark_probabilities(
    shard: ShardFile, table: pl.DataFrame, detector, settings: BatchSettings, progress: Progress | None = None
) -> np.ndarray:
    return _one(shard, table, WATERMARK.name, detector, settings, progress)


def nsfw_probabilities(
    shard: ShardFile, table: pl.DataFrame, classifier, settings: BatchSettings, progress: Progress | None = None
) -> np.ndarray:
    return _one(shard, table, NSFW.name, classifier, settings, progress)


def perceptual_hashes(shard: ShardFile, table: pl.DataFrame, settings: BatchSettings) -> list[str]:
    return score_images(shard, table["image_ref"].to_list(), [phash_consumer()], settings)[IMAGE_PHASH.name]
