"""The one image pass: every due model from one read and one decode per image, workers that split a
shard's members, and the device (tensor) path, checked on the CPU."""

from __future__ import annotations

import io
import os
import sys
import tarfile
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image, ImageOps

from curation_assets.demo import images
from curation_assets.demo.writers import CaptionSample, write_dj_jsonl, write_webdataset_tar
from curation_assets.image_ref import Scheme
from curation_assets.image_source import iter_image_bytes, plan_image_reads, split_reads
from curation_assets.models.loading import Runtime, load_model
from curation_assets.models.nsfw import nsfw_runs_on_gpu
from curation_assets.normalize import normalize_shard
from curation_assets.recipe import PACKAGED_RECIPES, load_recipe
from curation_assets.scoring import image_batches
from curation_assets.scoring.hashes import hamming, phash_hex
from curation_assets.scoring.image_batches import decode_rgb, draft_scale, reduced_for
from curation_assets.scoring.image_device import box_reduce, luma, orient
from curation_assets.scoring.image_models import (
    IMAGE_TABLE_MODELS,
    BatchSettings,
    clip_embeddings,
    clip_text_embeddings,
    image_consumers,
    itm_probabilities,
    nsfw_probabilities,
    perceptual_hashes,
    score_image_tables,
    watermark_probabilities,
)
from curation_assets.scoring.image_pass import ImageConsumer, PassStats, choose_path, decode_side, score_images
from curation_assets_tests.helpers import shard_file

ALL_TABLES = list(IMAGE_TABLE_MODELS)
SERIAL = BatchSettings(batch_size=4, num_workers=0)
# Two DataLoader workers decoding ahead: what a pass feeding a GPU does (CPU models decode between
# their forwards instead, BETWEEN).
WORKERS = BatchSettings(batch_size=2, num_workers=2, cpu_decode="workers")
BETWEEN = BatchSettings(batch_size=2, num_workers=2, cpu_decode="between")


@pytest.fixture(scope="module")
def models():
    recipe = load_recipe(PACKAGED_RECIPES / "smoke.yaml")
    runtime = Runtime(device="cpu")
    return {name: load_model(name, recipe.models, runtime) for name in ("clip", "itm", "watermark", "nsfw")}


def scene(index: int, width: int, height: int) -> images.Scene:
    shapes, colours = ("circle", "square", "ring", "stripes"), ("red", "yellow", "green", "blue", "white")
    return images.Scene(
        shapes[index % 4], colours[index % 5], colours[(index + 2) % 5], width, height, texture_seed=index
    )


# Photo-sized and small images, landscape and portrait: sizes where the models' reduced JPEG decodes
# differ (CLIP and pHash alone would decode at 1/2 or 1/4, the pass decodes at NSFW's 256).
SIZES = [(320, 240), (240, 320), (300, 300), (200, 150), (160, 160), (96, 80), (330, 250), (280, 210)]


def caption_samples(encode=images.jpeg_bytes) -> list[CaptionSample]:
    out = []
    for index, (width, height) in enumerate(SIZES):
        picture = scene(index, width, height)
        out.append(CaptionSample(encode(images.render(picture)), picture.caption()))
    return out


@pytest.fixture(scope="module")
def jpeg_tar(tmp_path_factory):
    root = tmp_path_factory.mktemp("pass-jpeg")
    write_webdataset_tar(root / "raw" / "caption" / "photos.tar", caption_samples())
    shard = shard_file(root, "caption", "photos.tar")
    return shard, normalize_shard(shard).valid


@pytest.fixture(scope="module")
def png_tar(tmp_path_factory):
    root = tmp_path_factory.mktemp("pass-png")
    write_webdataset_tar(root / "raw" / "caption" / "pngs.tar", caption_samples(images.png_bytes))
    shard = shard_file(root, "caption", "pngs.tar")
    return shard, normalize_shard(shard).valid


def separate_tables(shard, table, models, settings) -> dict[str, object]:
    """Each image table the old way: one model, one pass, one decode each."""
    return {
        "clip_embeddings": clip_embeddings(shard, table, models["clip"], settings),
        "itm": itm_probabilities(shard, table, models["itm"], settings),
        "watermark": watermark_probabilities(shard, table, models["watermark"], settings),
        "nsfw": nsfw_probabilities(shard, table, models["nsfw"], settings),
        "image_phash": perceptual_hashes(shard, table, settings),
    }


def assert_tables_equal(together: dict, separate: dict) -> None:
    clip = together["clip_embeddings"].frame
    assert clip.equals(separate["clip_embeddings"]), "CLIP embeddings differ"
    for name in ("itm", "watermark", "nsfw"):
        column = together[name].frame[f"{name}_probability"].to_numpy()
        np.testing.assert_array_equal(column, separate[name], err_msg=name)
    assert together["image_phash"].frame["phash"].to_list() == separate["image_phash"]


# --- one pass equals the separate passes ----------------------------------------------------------


def test_one_pass_equals_the_separate_passes_value_for_value(png_tar, models):
    # PNGs have no reduced decode, so every model sees the same pixels alone or together.
    shard, table = png_tar
    together = score_image_tables(shard, table, ALL_TABLES, models.__getitem__, SERIAL)
    assert_tables_equal(together, separate_tables(shard, table, models, SERIAL))
    assert together["clip_embeddings"].frame["sample_id"].to_list() == table["sample_id"].to_list()
    assert together["nsfw"].produced_by == models["nsfw"].identity
    assert together["image_phash"].produced_by == "imagehash.phash"


def test_jpegs_decoded_once_at_the_largest_need_equal_separate_passes_at_that_size(jpeg_tar, models):
    shard, table = jpeg_tar
    consumers = image_consumers(ALL_TABLES, models.__getitem__, table["caption"].to_list())
    side = decode_side(consumers)
    assert side == 256  # NSFW's resize; CLIP, watermark and pHash need 64, ITM 32
    together = score_image_tables(shard, table, ALL_TABLES, models.__getitem__, SERIAL)
    pinned = BatchSettings(batch_size=4, num_workers=0, decode_min_side=side)
    assert_tables_equal(together, separate_tables(shard, table, models, pinned))


def test_separate_passes_at_their_own_sizes_differ_only_by_the_reduced_decode(jpeg_tar, models):
    # Alone, CLIP and pHash decode these JPEGs at 1/2 or 1/4 scale (cheaper); in the pass they get
    # the 256 px decode. The difference is the DCT scaling's, no more.
    shard, table = jpeg_tar
    together = score_image_tables(shard, table, ALL_TABLES, models.__getitem__, SERIAL)
    alone = separate_tables(shard, table, models, SERIAL)
    a = together["clip_embeddings"].frame["image_embedding"].to_numpy().astype(np.float32)
    b = alone["clip_embeddings"]["image_embedding"].to_numpy().astype(np.float32)
    assert not np.array_equal(a, b)  # the sizes really differ here
    assert (a * b).sum(axis=1).min() > 0.99
    distances = [hamming(x, y) for x, y in zip(together["image_phash"].frame["phash"], alone["image_phash"])]
    assert max(distances) <= 6  # well inside what dedup treats as the same picture at max_distance 4..8
    np.testing.assert_array_equal(together["nsfw"].frame["nsfw_probability"].to_numpy(), alone["nsfw"])


def test_the_pass_computes_what_each_model_computes_on_the_decoded_image(jpeg_tar, models):
    # An oracle outside the pass: decode each image by hand at the pass's size, transform, run.
    shard, table = jpeg_tar
    refs = table["image_ref"].to_list()
    request = refs[::-1] + refs[:2]  # out of shard order, two rows showing an image again
    captions = [f"caption {i}" for i in range(len(request))]
    consumers = image_consumers(ALL_TABLES, models.__getitem__, captions)
    got = score_images(shard, request, consumers, SERIAL)

    data = dict(iter_image_bytes(shard, request))
    decoded = [decode_rgb(data[position], 256) for position in range(len(request))]
    clip, itm, watermark, nsfw = (models[n] for n in ("clip", "itm", "watermark", "nsfw"))

    def seen_by(need):  # each model's view of the one decode: reduced to its own scale
        return [reduced_for(image, need) for image in decoded]

    expected = clip.encode_images(torch.stack([clip.preprocess(i) for i in seen_by(clip.image_size)])).numpy()
    np.testing.assert_allclose(got["clip"].astype(np.float32), expected, atol=2e-3)
    pixels = torch.stack([itm.preprocess(image) for image in seen_by(itm.image_size)])
    np.testing.assert_allclose(got["itm"], itm.match_probability(pixels, captions).numpy(), atol=1e-5)
    pixels = torch.stack([watermark.preprocess(image) for image in seen_by(watermark.image_size)])
    np.testing.assert_allclose(got["watermark"], watermark.score(pixels).numpy(), atol=1e-5)
    from curation_assets.models.nsfw import nsfw_preprocess

    np.testing.assert_allclose(
        got["nsfw"], nsfw.score(np.stack([nsfw_preprocess(image) for image in seen_by(256)])), atol=1e-5
    )
    assert got["image_phash"] == [phash_hex(image) for image in seen_by(64)]
    assert got["image_phash"][-2:] == got["image_phash"][len(refs) - 1 : len(refs) - 3 : -1]


def test_only_the_due_tables_are_computed_and_only_their_models_asked_for(jpeg_tar, models):
    shard, table = jpeg_tar
    asked: list[str] = []

    def model(name):
        asked.append(name)
        return models[name]

    out = score_image_tables(shard, table, ["watermark", "image_phash"], model, SERIAL)
    assert set(out) == {"watermark", "image_phash"}
    assert set(asked) == {"watermark"}
    with pytest.raises(KeyError, match="no image table"):
        score_image_tables(shard, table, ["aesthetics"], model, SERIAL)


def test_an_empty_table_gives_empty_tables(jpeg_tar, models):
    shard, table = jpeg_tar
    out = score_image_tables(shard, table.head(0), ALL_TABLES, models.__getitem__, SERIAL)
    assert all(output.frame.height == 0 for output in out.values())
    assert out["clip_embeddings"].frame.columns == ["sample_id", "image_embedding", "text_embedding"]


@pytest.mark.parametrize("size", [(640, 480), (480, 640), (333, 500), (1023, 767), (130, 129), (2000, 90)])
@pytest.mark.parametrize("need", [32, 64, 224, 256, 384, None])
def test_a_reduced_decode_is_the_size_and_about_the_picture_of_the_models_own(size, need):
    data = images.jpeg_bytes(images.render(scene(size[0] % 7, *size)))
    own = decode_rgb(data, need)
    assert own.scale == draft_scale(size, need)  # the simulation of Pillow's rule is Pillow's rule
    for larger in (None, 256, 384):
        if larger is not None and (need is None or larger < need):
            continue  # only decodes at least as large as the model's own need
        view = reduced_for(decode_rgb(data, larger), need)
        assert view.size == own.image.size
        difference = np.abs(np.asarray(view, np.int16) - np.asarray(own.image, np.int16))
        assert difference.mean() < 3, (larger, difference.mean())  # box vs DCT averaging: a few levels


def test_a_png_is_never_reduced():
    decoded = decode_rgb(images.png_bytes(images.render(scene(1, 640, 480))), 32)
    assert (decoded.jpeg, decoded.scale) == (False, 1)
    assert reduced_for(decoded, 32) is decoded.image


def test_caption_embeddings_cut_to_length_are_clips_own():
    captions = [
        "a dog",
        "!!! wow !!!",
        "",
        " ".join(["a very long caption about a red bus"] * 20),  # past the 77-token context: truncated
        "two people on a street near a tree",
        "a dog",
    ]
    # Exact in float32; under bfloat16 the rounding follows the batch's length (test_models.py covers it).
    clip = load_model("clip", load_recipe(PACKAGED_RECIPES / "smoke.yaml").models, Runtime("cpu", half_precision=False))
    got = clip_text_embeddings(clip, captions, batch_size=2).astype(np.float32)
    expected = clip.encode_texts(captions).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-3)  # float16 storage
    assert np.array_equal(got[0], got[5])  # a repeated caption: the very same vector
    assert clip_text_embeddings(clip, [], batch_size=2).shape == (0, clip.embed_dim)


# --- one decode per image -------------------------------------------------------------------------


def test_each_image_is_decoded_once_for_all_models(jpeg_tar, models, monkeypatch):
    shard, table = jpeg_tar
    opened = []
    real_open = image_batches.open_image
    monkeypatch.setattr(image_batches, "open_image", lambda data: opened.append(len(data)) or real_open(data))
    refs = table["image_ref"].to_list()
    request = refs + refs[:3]  # three images shown by two rows each: still one decode each
    consumers = image_consumers(ALL_TABLES, models.__getitem__, ["a caption"] * len(request))

    stats = PassStats()
    score_images(shard, request, consumers, SERIAL, stats=stats)

    assert len(opened) == len(refs) == stats.images == stats.decodes
    assert stats.rows == len(request)
    assert stats.decodes_per_image == 1.0
    # The old way: one pass per model, each decoding every image again.
    opened.clear()
    separate_tables(shard, table, models, SERIAL)
    assert len(opened) == 5 * len(refs)


def test_two_workers_decode_once_per_image_too(jpeg_tar, models):
    shard, table = jpeg_tar
    consumers = image_consumers(ALL_TABLES, models.__getitem__, table["caption"].to_list())
    stats = PassStats()
    for settings in (WORKERS, BETWEEN):
        stats = PassStats()
        score_images(shard, table["image_ref"].to_list(), consumers, settings, stats=stats)
        assert stats.decodes == stats.images == table.height


def _decode_and_mark(marker, image):
    marker.touch()  # in a worker: decoding has begun
    return np.asarray(image.resize((8, 8)))


def test_meanwhile_runs_once_while_the_workers_are_decoding(jpeg_tar, tmp_path):
    """Work that needs no image (CLIP's captions) fills the wait for the first batch: it runs after
    the workers have started, not before the loader exists."""
    import functools
    import time

    shard, table = jpeg_tar
    marker = tmp_path / "a-worker-decoded"
    consumer = ImageConsumer(
        "marked", functools.partial(_decode_and_mark, marker), 64, lambda batch, _: batch, output="vector"
    )
    seen = []

    def meanwhile():
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen.append(marker.exists())

    results = score_images(shard, table["image_ref"].to_list(), [consumer], WORKERS, meanwhile=meanwhile)
    assert seen == [True]
    assert len(results["marked"]) == table.height


def test_clip_captions_encoded_while_decoding_are_the_tables_captions(jpeg_tar, models):
    shard, table = jpeg_tar
    frame = score_image_tables(shard, table, ["clip_embeddings"], models.__getitem__, BatchSettings(4, 2))
    texts = frame["clip_embeddings"].frame["text_embedding"].to_numpy()
    expected = clip_text_embeddings(models["clip"], table["caption"].to_list(), 4)
    np.testing.assert_array_equal(texts, expected)


def _parents_marker(_data):
    return getattr(image_batches, "_SET_IN_THE_PARENT_ONLY", None), 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")
def test_workers_are_forked_even_where_the_process_default_is_spawn(jpeg_tar, monkeypatch):
    """A daemon-launched run is a spawn child, whose default start method is spawn: its workers
    re-imported torch per shard. Forked workers see what the parent set at run time."""
    import multiprocessing

    from curation_assets.image_source import plan_image_reads

    shard, table = jpeg_tar
    previous = multiprocessing.get_start_method()
    multiprocessing.set_start_method("spawn", force=True)
    monkeypatch.setattr(image_batches, "_SET_IN_THE_PARENT_ONLY", "forked", raising=False)
    try:
        reads = plan_image_reads(shard, table["image_ref"].to_list())
        loader = image_batches.shard_loader(shard, reads, _parents_marker, list, batch_size=4, num_workers=2)
        seen = {item.value for batch in loader for item in batch}
    finally:
        multiprocessing.set_start_method(previous, force=True)
    assert seen == {"forked"}


def _niceness(_image):
    return os.nice(0)


@pytest.mark.skipif(not hasattr(os, "nice"), reason="CPU priority (nice) is Unix only")
def test_the_pass_workers_run_below_the_models_cpu_priority(jpeg_tar):
    shard, table = jpeg_tar
    here = os.nice(0)
    consumer = ImageConsumer("niceness", _niceness, None, _same_values, output="object", collate=list)

    def seen(settings):
        return set(score_images(shard, table["image_ref"].to_list(), [consumer], settings)["niceness"])

    assert BatchSettings().worker_nice > 0  # the default lowers it
    assert seen(WORKERS) == {min(here + BatchSettings().worker_nice, 19)}
    assert seen(replace(WORKERS, worker_nice=0)) == {here}
    assert seen(replace(WORKERS, num_workers=0)) == {here}  # no workers: nothing to lower
    assert seen(BETWEEN) == {here}  # threads of this process
    assert os.nice(0) == here  # this process keeps its own
    with pytest.raises(ValueError, match="worker_nice"):
        image_batches.LowerPriority(-1)


def _same_values(values, _positions):
    return values


# --- workers split the shard's members ------------------------------------------------------------


def member_sizes(path) -> dict[str, int]:
    with tarfile.open(path) as tar:
        return {member.name: member.size for member in tar.getmembers()}


def test_two_workers_each_read_only_their_own_members(tmp_path, models):
    samples = [CaptionSample(images.scene_jpeg(scene(i, 120 + i, 90)), f"picture {i}") for i in range(11)]
    write_webdataset_tar(tmp_path / "raw" / "caption" / "w.tar", samples)
    shard = shard_file(tmp_path, "caption", "w.tar")
    table = normalize_shard(shard).valid
    refs = table["image_ref"].to_list()
    sizes = member_sizes(shard.path)
    image_bytes = [sizes[ref.removeprefix("tar:")] for ref in refs]
    consumers = image_consumers(["watermark", "image_phash"], models.__getitem__, [])

    serial_stats, split_stats = PassStats(), PassStats()
    serial = score_images(shard, refs, consumers, SERIAL, stats=serial_stats)
    split = score_images(shard, refs, consumers, WORKERS, stats=split_stats)

    # Members are dealt in turn: worker 0 reads images 0, 2, 4, ..., worker 1 images 1, 3, 5, ...
    assert split_stats.bytes_read == {0: sum(image_bytes[0::2]), 1: sum(image_bytes[1::2])}
    assert sum(split_stats.bytes_read.values()) == sum(image_bytes) == serial_stats.bytes_read[0]
    # Streaming workers read the whole tar each: 2x the file. Here the images, once, and headers once.
    assert sum(split_stats.bytes_read.values()) + split_stats.plan_bytes < shard.path.stat().st_size
    np.testing.assert_array_equal(split["watermark"], serial["watermark"])
    assert split["image_phash"] == serial["image_phash"]


def write_grouped_parquet(path, samples: list[CaptionSample], rows_per_group: int) -> None:
    keys = [f"{i:09d}" for i in range(len(samples))]
    table = pa.table(
        {
            "key": keys,
            "caption": [sample.caption for sample in samples],
            "jpg": pa.array([sample.image for sample in samples], pa.binary()),
            "url": [f"http://images.example.com/{key}.jpg" for key in keys],
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=rows_per_group)


def test_parquet_workers_read_whole_row_groups_of_their_own(tmp_path, models):
    samples = [CaptionSample(images.scene_jpeg(scene(i, 100, 80 + i)), f"picture {i}") for i in range(10)]
    write_grouped_parquet(tmp_path / "raw" / "caption" / "g.parquet", samples, rows_per_group=3)
    shard = shard_file(tmp_path, "caption", "g.parquet")
    table = normalize_shard(shard).valid
    refs = table["image_ref"].to_list()

    shares = split_reads(plan_image_reads(shard, refs), 2)
    groups = [{read.row_group for read in share} for share in shares]
    assert groups[0] and groups[1] and not groups[0] & groups[1]  # 4 groups of 3,3,3,1 rows, none split
    assert sorted(len(share) for share in shares) == [4, 6]

    consumers = image_consumers(["image_phash"], models.__getitem__, [])
    stats = PassStats()
    split = score_images(shard, refs, consumers, WORKERS, stats=stats)
    assert split == score_images(shard, refs, consumers, SERIAL)
    chunk = pq.ParquetFile(shard.path).metadata.row_group
    # Each worker reads the image column of its own row groups, and nothing else (not even the footer:
    # the plan read it once); the groups together are the column, read once.
    assert stats.bytes_read == {
        worker: sum(chunk(group).column(2).total_compressed_size for group in groups[worker]) for worker in (0, 1)
    }


def test_files_are_dealt_to_workers_one_each(tmp_path, models):
    samples = [CaptionSample(images.scene_jpeg(scene(i, 90, 70)), f"picture {i}") for i in range(5)]
    write_dj_jsonl(tmp_path / "raw" / "caption" / "dj.jsonl", samples)
    shard = shard_file(tmp_path, "caption", "dj.jsonl")
    refs = normalize_shard(shard).valid["image_ref"].to_list()
    assert all(ref.startswith("file:") for ref in refs)
    sizes = [(tmp_path / ref.removeprefix("file:")).stat().st_size for ref in refs]

    stats = PassStats()
    score_images(shard, refs, image_consumers(["image_phash"], {}.get, []), WORKERS, stats=stats)
    assert stats.bytes_read == {0: sum(sizes[0::2]), 1: sum(sizes[1::2])}


def test_split_reads_deals_every_image_to_exactly_one_reader(jpeg_tar):
    shard, table = jpeg_tar
    reads = plan_image_reads(shard, table["image_ref"].to_list())
    assert all(read.ref.scheme is Scheme.tar and read.size > 0 for read in reads)
    for readers in (1, 2, 3, 16):
        shares = split_reads(reads, readers)
        assert len(shares) == readers
        assert sorted(read.offset for share in shares for read in share) == sorted(read.offset for read in reads)


# --- the device path ------------------------------------------------------------------------------


def fake(name: str, device: str = "cpu", tensors: bool = True) -> ImageConsumer:
    return ImageConsumer(
        name, lambda image: image, 64, lambda batch, _: batch, device_transform=(lambda x: x) if tensors else None,
        device=device,
    )  # fmt: skip


def test_the_gpu_path_is_chosen_only_with_cuda_a_model_on_it_and_tensor_transforms_for_all(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    gpu = choose_path([fake("clip", "cuda"), fake("image_phash")])
    assert (gpu.kind, str(gpu.device)) == ("device", "cuda")
    assert str(choose_path([fake("clip", "cuda:1"), fake("nsfw")]).device) == "cuda:1"
    assert choose_path([fake("clip", "cuda"), fake("odd", tensors=False)]).kind == "cpu"
    assert choose_path([fake("nsfw"), fake("image_phash")]).kind == "cpu"  # nothing on the GPU to feed
    assert choose_path([fake("clip", "cuda")], decode="cpu").kind == "cpu"
    with pytest.raises(ValueError, match="odd have no tensor transform"):
        choose_path([fake("odd", "cuda", tensors=False)], decode="device")
    with pytest.raises(ValueError, match="decode must be"):
        choose_path([fake("clip", "cuda")], decode="gpu")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_path([fake("clip", "cuda"), fake("image_phash")]).kind == "cpu"
    assert choose_path([fake("clip")], decode="device").device == torch.device("cpu")


def test_every_smoke_model_has_a_tensor_transform(models):
    consumers = image_consumers(ALL_TABLES, models.__getitem__, [])
    assert all(consumer.device_transform is not None for consumer in consumers)
    assert [consumer.device for consumer in consumers] == ["cpu"] * 5
    assert models["nsfw"].device == "cpu" and not nsfw_runs_on_gpu()  # no CUDA here: NSFW stays off the GPU


def exif_jpeg(picture: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=92, exif=exif)
    return buffer.getvalue()


def test_tensor_path_on_the_cpu_matches_the_pil_path(tmp_path, models):
    # What the GPU path computes, run on the CPU: nvJPEG's stand-in is libjpeg through torchvision.
    pictures = [images.render(scene(i, *size)) for i, size in enumerate(SIZES[:5])]
    payloads = [
        images.jpeg_bytes(pictures[0]),
        exif_jpeg(pictures[1], 6),  # stored sideways, upright by its EXIF tag
        images.png_bytes(pictures[2]),  # not a JPEG: decoded in the worker, uploaded
        images.jpeg_bytes(pictures[3].convert("L")),  # greyscale JPEG
        images.webp_bytes(pictures[4]),
    ]
    write_webdataset_tar(tmp_path / "raw" / "caption" / "mix.tar", [CaptionSample(p, "a picture") for p in payloads])
    shard = shard_file(tmp_path, "caption", "mix.tar")
    refs = normalize_shard(shard).valid["image_ref"].to_list()
    consumers = image_consumers(ALL_TABLES, models.__getitem__, ["a picture"] * len(refs))

    cpu_stats, device_stats = PassStats(), PassStats()
    cpu = score_images(shard, refs, consumers, BatchSettings(4, 0, decode="cpu"), stats=cpu_stats)
    tensor = score_images(shard, refs, consumers, BatchSettings(4, 0, decode="device"), stats=device_stats)

    assert (cpu_stats.path, device_stats.path) == ("cpu", "device:cpu")
    assert device_stats.decodes == cpu_stats.decodes == len(refs)
    a, b = cpu["clip"].astype(np.float32), tensor["clip"].astype(np.float32)
    assert (a * b).sum(axis=1).min() > 0.999  # bicubic resizes of PIL and torch differ by a level here and there
    np.testing.assert_allclose(tensor["itm"], cpu["itm"], atol=1e-4)  # the same torchvision ops on the same pixels
    np.testing.assert_allclose(tensor["watermark"], cpu["watermark"], atol=1e-3)
    np.testing.assert_allclose(
        tensor["nsfw"], cpu["nsfw"], atol=0.03
    )  # a 1-level resize difference, through a JPEG round trip
    assert tensor["image_phash"] == cpu["image_phash"]  # same decoded pixels, same luma, same hash


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orient_turns_images_upright_as_pil_does(orientation):
    picture = Image.fromarray(np.arange(5 * 3 * 3, dtype=np.uint8).reshape(5, 3, 3) * 5)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", exif=exif)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(buffer)).convert("RGB"))
    tensor = torch.from_numpy(np.array(picture)).permute(2, 0, 1)
    np.testing.assert_array_equal(orient(tensor, orientation).permute(1, 2, 0).numpy(), upright)


@pytest.mark.parametrize("shape, factor", [((480, 640), 2), ((241, 321), 4), ((101, 67), 8)])
def test_box_reduce_is_pils_reduce_bit_for_bit(shape, factor):
    rgb = np.random.default_rng(1).integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(rgb).reduce(factor))
    got = box_reduce(torch.from_numpy(rgb).permute(2, 0, 1), factor).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(got, expected)


def test_luma_is_pils_greyscale_bit_for_bit():
    rgb = np.random.default_rng(0).integers(0, 256, size=(37, 41, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(luma(torch.from_numpy(rgb).permute(2, 0, 1)).numpy(), expected)


def test_nsfw_scores_a_cpu_tensor_as_it_scores_an_array(models):
    from curation_assets.models.nsfw import nsfw_preprocess

    batch = np.stack([nsfw_preprocess(images.render(scene(i, 90, 90))) for i in range(2)])
    np.testing.assert_array_equal(models["nsfw"].score_tensor(torch.from_numpy(batch)), models["nsfw"].score(batch))


def test_a_pass_takes_its_first_models_settings_and_phash_alone_decodes_small():
    from curation_assets.scoring.image_models import pass_settings

    asked = []

    def settings_of(model):
        asked.append(model)
        return BatchSettings(batch_size=8, num_workers=3)

    assert pass_settings(settings_of, ["image_phash", "itm", "clip_embeddings"]) == BatchSettings(8, 3)
    assert asked == ["itm"]
    assert pass_settings(settings_of, ["image_phash"]) == BatchSettings(batch_size=64, num_workers=2)
