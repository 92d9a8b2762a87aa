"""LAION's watermark detector: timm efficientnet_b3 with a 3-layer head, P(watermark) = softmax[:, 0]."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn
from torchvision import transforms as T

from curation_assets.models.availability import WeightsMismatch, fetch_weights, random_weights
from curation_assets.models.device import inference_dtype, pick_device
from curation_assets.recipe import WatermarkModel

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def build_watermark_model(architecture: str) -> nn.Module:
    import timm

    model = timm.create_model(architecture, pretrained=False, num_classes=2)
    model.classifier = nn.Sequential(
        nn.Linear(model.num_features, 625),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(625, 256),
        nn.ReLU(),
        nn.Linear(256, 2),
    )
    return model


@dataclass
class LoadedWatermark:
    model: nn.Module
    preprocess: T.Compose
    device: torch.device
    dtype: torch.dtype
    image_size: int
    identity: str
    load_seconds: float
    random_init: bool

    @torch.inference_mode()
    def score(self, pixels: torch.Tensor) -> torch.Tensor:
        pixels = pixels.to(self.device, self.dtype, non_blocking=True)
        logits = self.model(pixels.contiguous(memory_format=torch.channels_last))
        return torch.softmax(logits.float(), dim=-1)[:, 0]


def load_watermark(
    spec: WatermarkModel, profile: str, device: str = "auto", half_precision: bool = True
) -> LoadedWatermark:
    started = time.monotonic()
    target = pick_device(device)
    dtype = inference_dtype(target, half_precision)
    random_init = random_weights(spec.weights, profile, "models.watermark")
    if random_init:
        torch.manual_seed(0)
    model = build_watermark_model(spec.architecture)
    if not random_init:
        state = torch.load(fetch_weights(spec.weights, "watermark detector"), map_location="cpu", weights_only=True)
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            raise WeightsMismatch(
                f"watermark weights {spec.weights} do not fit {spec.architecture} with LAION's 3-layer, 2-class head "
                f"(models.watermark.architecture must match the weights): {error}"
            ) from None
    # channels_last: EfficientNet's depthwise convolutions run 1.5x (float32) to 3x (bfloat16) faster
    # on CPU laid out this way (measured on efficientnet_b3 at 256 px); on CUDA it suits tensor cores.
    model.to(target, dtype, memory_format=torch.channels_last).eval()
    preprocess = T.Compose(
        [T.Resize((spec.image_size, spec.image_size)), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )
    identity = f"timm:{spec.architecture}@" + ("random-init-seed0" if random_init else spec.weights)
    return LoadedWatermark(
        model, preprocess, target, dtype, spec.image_size, identity, time.monotonic() - started, random_init
    )
