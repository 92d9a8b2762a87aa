"""CLIP through open_clip: a pretrained tag, a local checkpoint, or the tiny smoke architecture."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import open_clip
import torch

from curation_assets.models.availability import ModelUnavailable, advice, hub_access
from curation_assets.models.device import inference_dtype, pick_device, precision_name
from curation_assets.recipe import ClipModel

SMOKE_CONFIGS = Path(__file__).with_name("open_clip_configs")
open_clip.add_model_config(SMOKE_CONFIGS)  # registers smoke-ViT-tiny next to open_clip's own configs
SMOKE_SEED = 0


@dataclass
class LoadedClip:
    model: Any
    preprocess: Any  # PIL image -> normalised tensor, as the model was trained
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    embed_dim: int
    image_size: int
    identity: str  # what produced the embeddings, recorded in every table
    load_seconds: float
    random_init: bool  # True: random weights (smoke); its scores carry no meaning

    @torch.inference_mode()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.model.encode_image(pixels.to(self.device, self.dtype, non_blocking=True))
        return torch.nn.functional.normalize(features.float(), dim=-1)

    @torch.inference_mode()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts).to(self.device)
        features = self.model.encode_text(tokens)
        return torch.nn.functional.normalize(features.float(), dim=-1)


def load_clip(spec: ClipModel, profile: str, device: str = "auto", half_precision: bool = True) -> LoadedClip:
    """Weights from a checkpoint file, a pretrained tag, or (smoke profile only) random ones when
    neither is given."""
    started = time.monotonic()
    target = pick_device(device)
    dtype = inference_dtype(target, half_precision)
    precision = precision_name(dtype)  # open_clip keeps LayerNorms in float32 at fp16/bf16
    if open_clip.get_model_config(spec.model) is None:
        raise ModelUnavailable(
            advice(
                f"open_clip has no architecture {spec.model!r}; known: {', '.join(open_clip.list_models()[:8])}, ..."
            )
        )
    if spec.checkpoint:
        if not Path(spec.checkpoint).expanduser().exists():
            raise ModelUnavailable(advice(f"CLIP checkpoint {spec.checkpoint} does not exist"))
        model, _, preprocess = open_clip.create_model_and_transforms(
            spec.model, pretrained=str(Path(spec.checkpoint).expanduser()), device=target, precision=precision
        )
        identity = f"open_clip:{spec.model}@{spec.checkpoint}"
    elif spec.pretrained is None:
        if profile != "smoke":
            raise ModelUnavailable(
                advice(
                    f"models.clip names neither pretrained weights nor a checkpoint for {spec.model}; random weights "
                    "are for the smoke profile only"
                )
            )
        torch.manual_seed(SMOKE_SEED)  # same random weights on every machine, so smoke outputs are reproducible
        model, _, preprocess = open_clip.create_model_and_transforms(
            spec.model, pretrained=None, device=target, precision=precision
        )
        identity = f"open_clip:{spec.model}@random-init-seed{SMOKE_SEED}"
    else:
        with hub_access(f"open_clip weights {spec.model}/{spec.pretrained}"):
            model, _, preprocess = open_clip.create_model_and_transforms(
                spec.model, pretrained=spec.pretrained, device=target, precision=precision
            )
        identity = f"open_clip:{spec.model}@{spec.pretrained}"
    model.eval()
    config = open_clip.get_model_config(spec.model)
    image_size = config["vision_cfg"]["image_size"]
    return LoadedClip(
        model=model,
        preprocess=preprocess,
        tokenizer=open_clip.get_tokenizer(spec.model),
        device=target,
        dtype=dtype,
        embed_dim=config["embed_dim"],
        image_size=image_size if isinstance(image_size, int) else max(image_size),
        identity=identity,
        load_seconds=time.monotonic() - started,
        random_init=spec.checkpoint is None and spec.pretrained is None,
    )
