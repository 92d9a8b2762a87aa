"""Decoding between the forwards (decode_between): what the image pass does when every model runs on
the CPU. Same values as workers decoding ahead, nothing decoded while a model runs, every byte read
once, errors raised where the pass runs, no thread left behind."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from curation_assets.demo import images
from curation_assets.demo.writers import CaptionSample, write_webdataset_tar
from curation_assets.image_source import plan_image_reads
from curation_assets.models.loading import Runtime, load_model
from curation_assets.normalize import normalize_shard
from curation_assets.recipe import PACKAGED_RECIPES, load_recipe
from curation_assets.scoring import decode_between
from curation_assets.scoring.batch_settings import BatchSettings
from curation_assets.scoring.decode_between import DecodeBetweenForwards
from curation_assets.scoring.image_models import IMAGE_TABLE_MODELS, pass_notes, score_image_tables
from curation_assets.scoring.image_pass import ImageConsumer, PassStats, decode_between_forwards, score_images
from curation_assets_tests.helpers import shard_file

ALL_TABLES = list(IMAGE_TABLE_MODELS)


@pytest.fixture(scope="module")
def shard_and_table(tmp_path_factory):
    root = tmp_path_factory.mktemp("between")
    samples = []
    for index in range(11):  # not a multiple of the batch size: a short last batch
        scene = images.Scene("circle", "red", "blue", 120 + 7 * index, 90 + 3 * index, texture_seed=index)
        samples.append(CaptionSample(images.jpeg_bytes(images.render(scene)), f"picture {index}"))
    write_webdataset_tar(root / "raw" / "caption" / "b.tar", samples)
    shard = shard_file(root, "caption", "b.tar")
    return shard, normalize_shard(shard).valid


@pytest.fixture(scope="module")
def models():
    recipe = load_recipe(PACKAGED_RECIPES / "smoke.yaml")
    runtime = Runtime(device="cpu")
    return {name: load_model(name, recipe.models, runtime) for name in ("clip", "itm", "watermark", "nsfw")}


def _pixels(image):
    return np.asarray(image.resize((4, 4))).copy()


def fake(name: str, device: str = "cpu") -> ImageConsumer:
    return ImageConsumer(name, _pixels, None, lambda batch, _positions: batch, output="vector", device=device)


def test_models_on_the_cpu_decode_between_forwards_a_model_on_a_gpu_keeps_workers():
    assert decode_between_forwards([fake("clip"), fake("nsfw")])
    assert not decode_between_forwards([fake("clip", "cuda"), fake("nsfw")])  # one on the GPU: workers
    assert not decode_between_forwards([fake("clip", "mps")])
    assert not decode_between_forwards([fake("clip")], "workers")
    assert decode_between_forwards([fake("clip", "cuda")], "between")
    with pytest.raises(ValueError, match="cpu_decode must be auto, workers or between, not 'threads'"):
        decode_between_forwards([fake("clip")], "threads")


def test_tables_are_the_same_whoever_decodes(shard_and_table, models):
    shard, table = shard_and_table
    outputs = {}
    for mode in ("workers", "between"):
        settings = BatchSettings(batch_size=4, num_workers=2, cpu_decode=mode)
        stats = PassStats()
        outputs[mode] = score_image_tables(shard, table, ALL_TABLES, models.__getitem__, settings, stats=stats)
        assert stats.decodes == stats.images == table.height
        assert stats.decoders == ("2 threads between forwards" if mode == "between" else "2 workers ahead")
        assert pass_notes(ALL_TABLES, stats)["image_pass_decoders"] == stats.decoders
    # Workers deal images out in turn, so the batches hold other rows than between forwards do, and
    # onnxruntime's kernels round a little differently by batch shape (NSFW): equal to float rounding.
    for name in ALL_TABLES:
        ahead, between = outputs["workers"][name].frame, outputs["between"][name].frame
        assert ahead.columns == between.columns and ahead.height == between.height == table.height
        for column in ahead.columns:
            a, b = ahead[column].to_numpy(), between[column].to_numpy()
            if a.dtype == object:
                assert a.tolist() == b.tolist(), (name, column)
            else:
                np.testing.assert_allclose(np.stack(b).astype(np.float32), np.stack(a).astype(np.float32), atol=1e-6)


def test_the_pixels_are_the_same_whoever_decodes(shard_and_table):
    shard, table = shard_and_table
    refs = table["image_ref"].to_list()
    seen = {}
    for mode in ("workers", "between"):
        settings = BatchSettings(batch_size=4, num_workers=2, cpu_decode=mode)
        seen[mode] = score_images(shard, refs, [fake("pixels")], settings)["pixels"]
    np.testing.assert_array_equal(seen["workers"], seen["between"])


def test_nothing_is_decoded_while_a_model_runs(shard_and_table):
    shard, table = shard_and_table
    decoded: list[int] = []
    seen_at_scoring: list[tuple[int, int]] = []

    def count(image):
        decoded.append(1)
        return _pixels(image)

    def score(batch, positions):
        seen_at_scoring.append((len(decoded), len(positions)))
        return batch

    consumer = ImageConsumer("counted", count, None, score, output="vector")
    score_images(shard, table["image_ref"].to_list(), [consumer], BatchSettings(batch_size=4, num_workers=2))
    # When batch k is scored, exactly the images of batches 0..k have been decoded: none ahead.
    rows_so_far = np.cumsum([rows for _, rows in seen_at_scoring]).tolist()
    assert [count for count, _ in seen_at_scoring] == rows_so_far
    assert rows_so_far[-1] == table.height


def test_every_image_byte_is_read_once(shard_and_table):
    shard, table = shard_and_table
    reads = plan_image_reads(shard, table["image_ref"].to_list())
    loader = DecodeBetweenForwards(shard, reads, lambda data: (len(data), 1), list, batch_size=3, threads=2)
    items = [item for batch in loader for item in batch]
    assert sorted(item.position for item in items) == list(range(table.height))
    assert loader.counter.bytes_read == sum(item.value for item in items)


def test_a_read_error_is_raised_in_the_pass_and_the_reader_stops(shard_and_table, monkeypatch):
    shard, table = shard_and_table
    real = decode_between.read_images

    def fails_after_three(*args):
        for count, item in enumerate(real(*args)):
            if count == 3:
                raise OSError("the object store went away")
            yield item

    monkeypatch.setattr(decode_between, "read_images", fails_after_three)
    consumer = fake("pixels")
    with pytest.raises(OSError, match="the object store went away"):
        score_images(shard, table["image_ref"].to_list(), [consumer], BatchSettings(batch_size=2, num_workers=2))
    assert not [t for t in threading.enumerate() if t.name == "image-bytes-reader"]


def test_a_model_error_stops_the_reader_too(shard_and_table):
    shard, table = shard_and_table

    def breaks(_batch, _positions):
        raise RuntimeError("model fell over")

    consumer = ImageConsumer("breaks", _pixels, None, breaks)
    with pytest.raises(RuntimeError, match="model fell over"):
        score_images(shard, table["image_ref"].to_list(), [consumer], BatchSettings(batch_size=2, num_workers=2))
    assert not [t for t in threading.enumerate() if t.name == "image-bytes-reader"]


def test_no_workers_still_decodes_with_one_thread_and_bad_sizes_are_refused(shard_and_table):
    shard, table = shard_and_table
    stats = PassStats()
    score_images(shard, table["image_ref"].to_list(), [fake("pixels")], BatchSettings(4, 0), stats=stats)
    assert stats.decoders == "1 threads between forwards"
    with pytest.raises(ValueError, match="at least 1"):
        DecodeBetweenForwards(shard, [], lambda data: (data, 1), list, batch_size=0, threads=1)


def test_the_eval_features_tell_the_pass_where_their_encoder_runs(shard_and_table, monkeypatch):
    import torch

    from curation_assets.evaluation import features
    from curation_assets.scoring import image_pass

    shard, table = shard_and_table
    seen = {}

    def record(shard, refs, consumers, settings, progress=None, **kwargs):
        seen.update({consumer.name: consumer.device for consumer in consumers})
        raise StopIteration  # enough: what the pass was handed

    class Encoder:
        device, dim, preprocess, image_size = torch.device("cuda", 1), 4, _pixels, 32

    class Encoders:
        image, batch_size = Encoder(), 4

    monkeypatch.setattr(image_pass, "score_images", record)
    with pytest.raises(StopIteration):
        features.encode_shard_images(shard, table["image_ref"].to_list(), Encoders())
    assert seen["features"] == "cuda:1"  # a GPU encoder: workers decode ahead of it
    assert not decode_between_forwards([fake("features", seen["features"]), fake("image_phash")])
