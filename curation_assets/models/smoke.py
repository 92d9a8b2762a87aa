"""Smoke models built from config into a folder once, then loaded like any local checkpoint."""

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from curation_assets.models.availability import cache_dir


def smoke_folder(name: str, build: Callable[[Path], object]) -> Path:
    """`<model cache>/smoke/<name>`, built on first use: written to a temp folder beside it and
    renamed into place, so concurrent processes never read a half-written model."""
    folder = cache_dir() / "smoke" / name
    if (folder / "config.json").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{name}-"))
    build(staging)
    try:
        staging.rename(folder)
    except OSError:  # another process finished first; its model is the same
        shutil.rmtree(staging, ignore_errors=True)
    return folder


SMOKE_BLIP_IMAGE_SIZE = 32


def tiny_blip(vocab: list[str], model_class, text_config: dict, bos_token: str | None = None, **config):
    """A tiny random BLIP of `model_class` (a few layers of width 32 over 32 px images) with a toy
    WordPiece vocabulary, and its processor: the smoke stand-in for Salesforce's BLIP checkpoints."""
    import torch
    from transformers import BertTokenizerFast, BlipConfig, BlipImageProcessor, BlipProcessor

    tokenizer_options = {"bos_token": bos_token} if bos_token else {}
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, **tokenizer_options)
    size = {"height": SMOKE_BLIP_IMAGE_SIZE, "width": SMOKE_BLIP_IMAGE_SIZE}
    processor = BlipProcessor(image_processor=BlipImageProcessor(size=size), tokenizer=tokenizer)
    small = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    blip_config = BlipConfig(
        text_config=dict(
            vocab_size=len(vocab),
            encoder_hidden_size=32,
            max_position_embeddings=64,
            pad_token_id=0,
            **text_config,
            **small,
        ),
        vision_config=dict(image_size=SMOKE_BLIP_IMAGE_SIZE, patch_size=16, **small),
        projection_dim=32,
        **config,
    )
    torch.manual_seed(0)  # the same random weights on every machine
    return model_class(blip_config), processor
