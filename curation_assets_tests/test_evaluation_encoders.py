"""Named encoders: local checkpoints load, classifiers are dropped, absent weights fail within seconds."""

import time

import pytest
import torch

from curation_assets.evaluation.encoders import load_image_encoder
from curation_assets.evaluation.settings import ImageEncoder
from curation_assets.models.availability import ModelUnavailable


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CURATION_MODEL_CACHE", str(tmp_path / "empty-cache"))


@pytest.mark.parametrize("model", ["timm/resnet18", "torchvision/resnet18"])
def test_absent_weights_fail_fast_with_the_ways_out(offline, model):
    started = time.monotonic()
    with pytest.raises(ModelUnavailable, match="Ways out"):
        load_image_encoder(ImageEncoder(model=model))
    assert time.monotonic() - started < 15


def test_a_missing_local_checkpoint_is_named(offline, tmp_path):
    with pytest.raises(ModelUnavailable, match="does not exist"):
        load_image_encoder(ImageEncoder(model="torchvision/resnet18", checkpoint=str(tmp_path / "nope.pth")))


def test_unknown_architectures_are_refused():
    with pytest.raises(ValueError, match="torchvision has no model"):
        load_image_encoder(ImageEncoder(model="torchvision/resnet-eighteen"))
    with pytest.raises(ValueError, match="timm has no model"):
        load_image_encoder(ImageEncoder(model="timm/not_a_model"))


@pytest.mark.parametrize("family", ["torchvision", "timm"])
def test_named_encoder_from_a_local_checkpoint_returns_penultimate_features(offline, tmp_path, family):
    if family == "torchvision":
        from torchvision.models import resnet18

        network = resnet18(weights=None)
    else:
        import timm

        network = timm.create_model("resnet18", pretrained=False)
    torch.manual_seed(0)
    with torch.no_grad():
        network.fc.weight.normal_()
    checkpoint = tmp_path / "resnet18.pth"
    torch.save(network.state_dict(), checkpoint)
    encoder = load_image_encoder(
        ImageEncoder(model=f"{family}/resnet18", checkpoint=str(checkpoint), image_size=64),
        device="cpu",
        half_precision=False,  # compared with the float32 network below
    )
    assert encoder.dim == 512  # what the classifier read, not 1000 logits
    assert str(checkpoint) in encoder.identity
    pixels = torch.randn(2, 3, 64, 64)
    features = encoder.encode(pixels)
    assert features.shape == (2, 512) and features.dtype.name == "float16"
    network.eval()
    with torch.no_grad():
        if family == "torchvision":
            network.fc = torch.nn.Identity()
            expected = network(pixels)
        else:
            expected = network.forward_head(network.forward_features(pixels), pre_logits=True)
    assert torch.allclose(torch.from_numpy(features).float(), expected, atol=2e-2, rtol=1e-2)
