"""Model loading in the smoke profile, through the same code paths real weights take.

Smoke models are saved to files or folders and loaded back as a user's local weights would be
(profile "pretrained", a path in the recipe), so the loading code is exercised without a network.
"""

import socket
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from curation_assets.models import device as device_module
from curation_assets.models.availability import ModelUnavailable, fetch_weights
from curation_assets.models.clip import load_clip
from curation_assets.models.device import inference_dtype, pick_device
from curation_assets.models.heads import load_aesthetics_head
from curation_assets.models.itm import build_smoke_itm, load_itm
from curation_assets.models.nsfw import load_nsfw, nsfw_preprocess
from curation_assets.models.text_embedding import load_text_embedder
from curation_assets.models.watermark import load_watermark
from curation_assets.recipe import (
    PACKAGED_RECIPES,
    AestheticsModel,
    ClipModel,
    ItmModel,
    NsfwModel,
    TextEmbeddingModel,
    WatermarkModel,
    load_recipe,
)

SMOKE = load_recipe(PACKAGED_RECIPES / "smoke.yaml")


def picture(colour: tuple[int, int, int], size: tuple[int, int] = (80, 60)) -> Image.Image:
    """A flat background with a differently coloured block, so two pictures differ in content."""
    image = Image.new("RGB", size, colour)
    image.paste(tuple(255 - c for c in colour), (10, 10, 40, 40))
    return image


PICTURES = [picture((200, 30, 30)), picture((30, 60, 200)), picture((20, 160, 60), size=(50, 90))]
TEXTS = ["a red square", "a blue square on a yellow background", "green"]


def no_network(*args, **kwargs):
    raise AssertionError(f"a network connection was attempted: socket.create_connection{args}")


@pytest.fixture(scope="module")
def smoke_clip():
    return load_clip(SMOKE.models.clip, SMOKE.models.profile, device="cpu")


# --- CLIP ---------------------------------------------------------------------------------------


def test_clip_checkpoint_file_reproduces_the_smoke_model(smoke_clip, tmp_path):
    path = tmp_path / "clip-tiny.pt"
    torch.save(smoke_clip.model.state_dict(), path)

    loaded = load_clip(
        ClipModel(model="smoke-ViT-tiny", pretrained=None, checkpoint=str(path)), "pretrained", device="cpu"
    )

    assert str(path) in loaded.identity
    assert loaded.identity != smoke_clip.identity
    assert loaded.embed_dim == smoke_clip.embed_dim == 64
    pixels = torch.stack([smoke_clip.preprocess(image) for image in PICTURES])
    assert torch.equal(torch.stack([loaded.preprocess(image) for image in PICTURES]), pixels)
    for encode, inputs in (("encode_images", pixels), ("encode_texts", TEXTS)):
        expected = getattr(smoke_clip, encode)(inputs)
        actual = getattr(loaded, encode)(inputs)
        assert actual.shape == (3, 64)
        torch.testing.assert_close(actual, expected, rtol=0, atol=0)
        torch.testing.assert_close(actual.norm(dim=-1), torch.ones(3), rtol=0, atol=1e-5)
        assert not torch.allclose(actual[0], actual[1])  # different inputs, different embeddings


def test_missing_clip_checkpoint_is_model_unavailable(tmp_path):
    missing = tmp_path / "nowhere" / "clip.pt"
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as raised:
        load_clip(
            ClipModel(model="smoke-ViT-tiny", pretrained=None, checkpoint=str(missing)), "pretrained", device="cpu"
        )
    elapsed = time.monotonic() - started
    assert str(missing) in str(raised.value), (
        f"message should name the path (failed after {elapsed:.2f}s): {raised.value}"
    )


# --- precision ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "native_bfloat16", "half_precision", "expected"),
    [
        ("cuda", False, True, torch.float16),
        ("cuda", True, False, torch.float32),
        ("cpu", True, True, torch.bfloat16),
        ("cpu", False, True, torch.float32),  # emulated bfloat16 is slower than float32: not used
        ("cpu", True, False, torch.float32),
        ("mps", True, True, torch.float32),
    ],
)
def test_half_precision_runs_at_the_precision_the_hardware_computes_fast(
    monkeypatch, device, native_bfloat16, half_precision, expected
):
    monkeypatch.setattr(device_module, "cpu_has_native_bfloat16", lambda: native_bfloat16)
    assert inference_dtype(torch.device(device), half_precision) == expected


def test_runtime_from_the_environment_sets_device_and_precision_and_refuses_a_typo():
    from curation_assets.defs.models import model_resources, runtime_from_environment

    assert runtime_from_environment({}) == {}
    runtime = runtime_from_environment({"CURATION_DEVICE": "cpu", "CURATION_HALF_PRECISION": "False"})
    assert runtime == {"device": "cpu", "half_precision": False}
    assert {r.half_precision for r in model_resources(SMOKE, **runtime).values()} == {False}
    with pytest.raises(ValueError, match="CURATION_HALF_PRECISION='off'"):
        runtime_from_environment({"CURATION_HALF_PRECISION": "off"})


def test_model_resources_pass_who_decodes_and_the_workers_priority_to_the_image_pass_and_refuse_bad_values():
    import pydantic

    from curation_assets.defs.models import model_resources
    from curation_assets.scoring.batch_settings import BatchSettings

    assert model_resources(SMOKE)["clip"].batch_settings().worker_nice == BatchSettings().worker_nice > 0
    assert {r.batch_settings().worker_nice for r in model_resources(SMOKE, worker_nice=0).values()} == {0}
    with pytest.raises(pydantic.ValidationError, match="worker_nice"):
        model_resources(SMOKE, worker_nice=-5)
    assert model_resources(SMOKE)["itm"].batch_settings().cpu_decode == "auto"
    assert model_resources(SMOKE, cpu_decode="workers")["itm"].batch_settings().cpu_decode == "workers"
    with pytest.raises(pydantic.ValidationError, match="cpu_decode"):
        model_resources(SMOKE, cpu_decode="threads")


needs_native_bfloat16 = pytest.mark.skipif(
    not device_module.cpu_has_native_bfloat16(), reason="this CPU has no native bfloat16 (AVX512-BF16 or AMX)"
)


@needs_native_bfloat16
def test_bfloat16_clip_scores_stay_within_a_thousandth_or_so_of_float32():
    spec = ClipModel(model="ViT-B-32", pretrained=None)  # the default architecture, random weights
    half = load_clip(spec, "smoke", device="cpu")
    full = load_clip(spec, "smoke", device="cpu", half_precision=False)
    assert (half.dtype, full.dtype) == (torch.bfloat16, torch.float32)
    pixels = torch.stack([full.preprocess(image) for image in PICTURES])
    similarity = {
        name: (clip.encode_images(pixels) * clip.encode_texts(TEXTS)).sum(-1)
        for name, clip in (("half", half), ("full", full))
    }
    assert similarity["half"].dtype == torch.float32  # embeddings leave the model as float32
    torch.testing.assert_close(similarity["half"], similarity["full"], rtol=0, atol=5e-3)
    for encode, inputs in (("encode_images", pixels), ("encode_texts", TEXTS)):
        agreement = (getattr(half, encode)(inputs) * getattr(full, encode)(inputs)).sum(-1)
        assert agreement.min() > 0.999, (encode, agreement)


@needs_native_bfloat16
def test_bfloat16_watermark_and_itm_agree_with_float32():
    half_watermark = load_watermark(SMOKE.models.watermark, "smoke", device="cpu")
    full_watermark = load_watermark(SMOKE.models.watermark, "smoke", device="cpu", half_precision=False)
    pixels = torch.stack([full_watermark.preprocess(image) for image in PICTURES])
    torch.testing.assert_close(half_watermark.score(pixels), full_watermark.score(pixels), rtol=0, atol=1e-2)
    half_itm = load_itm(SMOKE.models.itm, "smoke", device="cpu")
    full_itm = load_itm(SMOKE.models.itm, "smoke", device="cpu", half_precision=False)
    assert (half_itm.dtype, full_itm.dtype) == (torch.bfloat16, torch.float32)
    pixels = torch.stack([full_itm.preprocess(image) for image in PICTURES])
    torch.testing.assert_close(
        half_itm.match_probability(pixels, TEXTS), full_itm.match_probability(pixels, TEXTS), rtol=0, atol=1e-2
    )


# --- BLIP ITM -----------------------------------------------------------------------------------


def test_itm_loads_a_blip_folder_by_path(tmp_path):
    folder = build_smoke_itm(tmp_path / "blip")
    itm = load_itm(ItmModel(model=str(folder)), "pretrained", device="cpu")

    assert itm.identity == f"transformers:{folder}"  # no random-init marker: these are "real" weights
    pixels = torch.stack([itm.preprocess(image) for image in PICTURES])
    assert pixels.shape == (3, 3, itm.image_size, itm.image_size)
    probabilities = itm.match_probability(pixels, TEXTS)
    assert probabilities.shape == (3,)
    assert torch.all((probabilities >= 0) & (probabilities <= 1)), probabilities


# --- watermark ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_watermark():
    return load_watermark(SMOKE.models.watermark, SMOKE.models.profile, device="cpu")


def test_watermark_weights_file_reproduces_the_smoke_model(smoke_watermark, tmp_path):
    path = tmp_path / "watermark.pt"
    torch.save(smoke_watermark.model.state_dict(), path)

    loaded = load_watermark(WatermarkModel(weights=str(path), image_size=64), "pretrained", device="cpu")

    assert str(path) in loaded.identity
    pixels = torch.stack([loaded.preprocess(image) for image in PICTURES])
    assert pixels.shape == (3, 3, 64, 64)
    scores = loaded.score(pixels)
    assert scores.shape == (3,)
    assert torch.all((scores >= 0) & (scores <= 1))
    torch.testing.assert_close(scores, smoke_watermark.score(pixels), rtol=0, atol=1e-6)


def test_watermark_weights_of_another_shape_are_rejected(smoke_watermark, tmp_path):
    state = dict(smoke_watermark.model.state_dict())
    state["classifier.5.weight"] = torch.zeros(3, 256)  # a 3-class head where the detector has 2
    state["classifier.5.bias"] = torch.zeros(3)
    path = tmp_path / "other.pt"
    torch.save(state, path)
    with pytest.raises(
        ValueError, match=r"(?s)do not fit efficientnet_b3 .*size mismatch for classifier\.5\.weight"
    ) as raised:
        load_watermark(WatermarkModel(weights=str(path), image_size=64), "pretrained", device="cpu")
    assert str(path) in str(raised.value)


def test_missing_watermark_weights_file_is_model_unavailable(tmp_path):
    missing = tmp_path / "watermark.pt"
    with pytest.raises(ModelUnavailable, match="does not exist") as raised:
        load_watermark(WatermarkModel(weights=str(missing), image_size=64), "pretrained", device="cpu")
    assert str(missing) in str(raised.value)


# --- aesthetics ---------------------------------------------------------------------------------


def test_aesthetics_linear_head_from_a_weights_file(tmp_path):
    torch.manual_seed(1)
    linear = nn.Linear(64, 1)
    path = tmp_path / "head.pth"
    torch.save(linear.state_dict(), path)

    head = load_aesthetics_head(AestheticsModel(head="linear", weights=str(path)), embed_dim=64, profile="pretrained")

    assert str(path) in head.identity
    x = torch.nn.functional.normalize(torch.randn(5, 64), dim=-1)
    with torch.no_grad():
        expected = linear(x).squeeze(-1).numpy()
    np.testing.assert_allclose(head.score(x.numpy()), expected, rtol=1e-6, atol=1e-6)


def test_aesthetics_head_for_another_clip_is_rejected(tmp_path):
    path = tmp_path / "vit-l-head.pth"
    torch.save(nn.Linear(768, 1).state_dict(), path)
    with pytest.raises(ValueError, match=r"must be trained on the same CLIP model as models\.clip") as raised:
        load_aesthetics_head(AestheticsModel(head="linear", weights=str(path)), embed_dim=64, profile="pretrained")
    assert "64-d" in str(raised.value)


# --- bundled real models ------------------------------------------------------------------------


def test_nsfw_bundled_model_scores_offline(monkeypatch):
    monkeypatch.setattr(socket, "create_connection", no_network)
    nsfw = load_nsfw(NsfwModel(), device="cpu")
    batch = np.stack([nsfw_preprocess(image) for image in PICTURES[:2]])
    scores = nsfw.score(batch)
    assert scores.shape == (2,)
    assert scores.dtype == np.float32
    assert np.all((scores >= 0) & (scores <= 1)), scores


def test_text_embedder_bundled_model_works_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", no_network)
    embedder = load_text_embedder(TextEmbeddingModel(), device="cpu")

    assert embedder.dim == 384
    vectors = embedder.embed(
        ["A cat sleeps on the sofa.", "A kitten is napping on the couch.", "Quarterly tax filings are due in April."]
    )
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float16
    np.testing.assert_allclose(np.linalg.norm(vectors.astype(np.float32), axis=1), 1.0, atol=2e-3)
    similar = float(vectors[0].astype(np.float32) @ vectors[1].astype(np.float32))
    unrelated = float(vectors[0].astype(np.float32) @ vectors[2].astype(np.float32))
    assert similar > unrelated + 0.2, (similar, unrelated)


# --- weights that cannot be had -----------------------------------------------------------------


@pytest.fixture
def empty_hub_cache(monkeypatch, tmp_path):
    """An empty Hugging Face cache. huggingface_hub resolves HF_HOME into module constants when it is
    first imported, so the environment variable alone would not redirect a process that already
    imported it: patch the constants too."""
    import huggingface_hub.constants as hub_constants

    home = tmp_path / "hf-home"
    home.mkdir()
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setattr(hub_constants, "HF_HOME", str(home))
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setenv("CURATION_MODEL_CACHE", str(tmp_path / "curation-cache"))
    return home


def test_offline_and_not_cached_fails_at_once_without_touching_the_network(monkeypatch, empty_hub_cache):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", no_network)
    before = hub_constants.HF_HUB_OFFLINE

    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as raised:
        load_clip(ClipModel(), "pretrained", device="cpu")
    elapsed = time.monotonic() - started

    message = str(raised.value)
    assert "smoke profile" in message, f"after {elapsed:.2f}s: {message}"
    assert "cache" in message, f"after {elapsed:.2f}s: {message}"
    assert "ViT-B-32" in message
    assert hub_constants.HF_HUB_OFFLINE == before  # hub_access puts huggingface_hub's switch back


def test_unreachable_hub_fails_at_once(monkeypatch, empty_hub_cache):
    import huggingface_hub.constants as hub_constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    # As if huggingface_hub had been imported online: the hub client itself would try the network,
    # so only hub_access's own probe may, and only of the configured endpoint.
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    probed = []
    real_create_connection = socket.create_connection

    def recording_create_connection(address, *args, **kwargs):
        probed.append(address)
        if address[0] != "hub.invalid":
            raise AssertionError(f"connection to {address} attempted; only the endpoint probe should run")
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", recording_create_connection)

    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as raised:
        load_clip(ClipModel(), "pretrained", device="cpu")
    elapsed = time.monotonic() - started

    assert "unreachable" in str(raised.value), f"after {elapsed:.2f}s: {raised.value}"
    assert probed == [("hub.invalid", 443)]
    assert hub_constants.HF_HUB_OFFLINE is False  # restored after the load


def test_fetch_weights_from_an_unreachable_url(monkeypatch, empty_hub_cache):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as raised:
        fetch_weights("https://example.invalid/x.pth", "test weights")
    elapsed = time.monotonic() - started
    message = str(raised.value)
    assert "https://example.invalid/x.pth" in message, f"after {elapsed:.2f}s: {message}"
    assert "cannot be downloaded" in message
    assert "test weights" in message


def test_fetch_weights_offline_does_not_probe(monkeypatch, empty_hub_cache):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(ModelUnavailable, match="is not cached"):
        fetch_weights("https://example.invalid/x.pth", "test weights")


# --- device -------------------------------------------------------------------------------------


def test_pick_device_auto_without_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if getattr(torch.backends, "mps", None) is not None:
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    assert pick_device("cpu") == torch.device("cpu")


def test_pick_device_cuda_without_cuda_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        pick_device("cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        pick_device("cuda:0")
