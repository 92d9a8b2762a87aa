"""image_ref: one type for every scheme, written and parsed both ways, and read back to the very bytes
ingest checked, for every row of every demo shard and of the real COCO images."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from curation_assets.demo.writers import (
    CaptionSample,
    DocImage,
    InterleavedDoc,
    write_dj_jsonl,
    write_dj_parquet,
    write_img2dataset_parquet,
    write_llava_json,
    write_mmc4_jsonl,
    write_obelics_parquet,
    write_webdataset_tar,
)
from curation_assets.image_ref import ImageRef, Scheme, image_value
from curation_assets.image_source import iter_image_bytes
from curation_assets.normalize import normalize_shard
from curation_assets.quarantine import Quarantined, Reason
from curation_assets.readers import ShardFile
from curation_assets_tests.helpers import DEMO_SHARDS, require_shared, shard_file


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- format and parse ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "text"),
    [
        (ImageRef.tar("000001.jpg"), "tar:000001.jpg"),
        (ImageRef.tar("dir/with:colon/a.b.jpg"), "tar:dir/with:colon/a.b.jpg"),
        (ImageRef.parquet(42, "jpg"), "parquet:42:jpg"),
        (ImageRef.parquet(7, "images", 3), "parquet:7:images:3"),
        (ImageRef.parquet(0, "odd:name%"), "parquet:0:odd%3Aname%25"),
        (ImageRef.file("raw/caption/x_images/000001.jpg"), "file:raw/caption/x_images/000001.jpg"),
    ],
)
def test_each_scheme_formats_and_parses_back(ref, text):
    assert ref.format() == str(ref) == text
    assert ImageRef.parse(text) == ref


@given(
    row=st.integers(0, 10**12),
    column=st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), min_size=1, max_size=30),
    index=st.none() | st.integers(0, 10**6),
)
def test_any_parquet_column_name_round_trips(row, column, index):
    ref = ImageRef.parquet(row, column, index)
    assert ImageRef.parse(ref.format()) == ref


@given(name=st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), min_size=1, max_size=60))
def test_any_member_name_or_path_round_trips(name):
    for ref in (ImageRef.tar(name), ImageRef.file(name)):
        assert ImageRef.parse(ref.format()) == ref


@pytest.mark.parametrize(
    "text",
    [
        "000001.jpg",  # no scheme
        "bytes:3",  # what the OBELICS reader used to write, and nothing could read
        "http://example.com/a.jpg",
        "tar:",
        "file:",
        "parquet:x:jpg",
        "parquet:1",
        "parquet:1:",
        "parquet:-1:jpg",
        "parquet:1:images:x",
        "parquet:1:a:2:3",
        "tar:a\x00.jpg",
    ],
)
def test_parse_refuses_what_no_reader_writes(text):
    with pytest.raises(ValueError):
        ImageRef.parse(text)


def test_scheme_is_known_after_parsing():
    assert ImageRef.parse("parquet:1:images:0").scheme is Scheme.parquet
    assert ImageRef.parse("tar:a.jpg").scheme is Scheme.tar


@pytest.mark.parametrize(
    ("cell", "index", "expected"),
    [
        (b"jpg", None, b"jpg"),
        ([b"jpg"], None, b"jpg"),  # Data-Juicer's one-element image_bytes list
        ({"bytes": b"jpg", "path": "a.jpg"}, None, b"jpg"),  # Hugging Face image struct
        ([None, b"a", None, b"b"], 3, b"b"),  # OBELICS images list
        ([None, {"bytes": b"a"}], 1, b"a"),
    ],
)
def test_image_value_unwraps_every_container_one_way(cell, index, expected):
    assert image_value(cell, index) == expected


@pytest.mark.parametrize(
    ("cell", "index", "reason"),
    [([b"a", b"b"], None, Reason.missing_field), ([b"a"], 5, Reason.missing_image), (b"a", 0, Reason.missing_image)],
)
def test_image_value_refuses_cells_without_that_image(cell, index, reason):
    with pytest.raises(Quarantined) as caught:
        image_value(cell, index)
    assert caught.value.reason == reason


# --- read back: every valid row of every demo shard ---------------------------------------------


def recorded_images(shard: ShardFile) -> list[tuple[str, str]]:
    """(image_ref, recorded sha256) of every image of every valid row of the shard."""
    valid = normalize_shard(shard).valid
    if shard.kind.value == "caption":
        return list(zip(valid["image_ref"].to_list(), valid["image_sha256"].to_list()))
    if shard.kind.value == "interleaved":
        return [(image["ref"], image["sha256"]) for images in valid["images"].to_list() for image in images if image]
    return []


def assert_read_back(shard: ShardFile, images: list[tuple[str, str]]) -> None:
    refs = [ref for ref, _ in images]
    for ref in refs:  # every reader builds its refs through ImageRef: each is canonical
        assert ImageRef.parse(ref).format() == ref
    request = refs[::-1] + refs[:2]  # out of shard order, with repeats: positions index the request
    got = dict(iter_image_bytes(shard, request))
    assert sorted(got) == list(range(len(request)))
    recorded = dict(images)
    for position, ref in enumerate(request):
        assert sha256(got[position]) == recorded[ref], (shard.shard_id, ref)


@pytest.mark.parametrize("shard", [name for name in DEMO_SHARDS if not name.startswith("text/")])
def test_every_demo_image_ref_reads_back_to_its_recorded_sha256(demo_template, shard):
    kind, name = shard.split("/")
    source = shard_file(demo_template, kind, name)
    images = recorded_images(source)
    assert images, f"{shard} has no valid image to check"
    assert_read_back(source, images)


def test_obelics_inline_images_get_list_element_refs(demo_template):
    images = recorded_images(shard_file(demo_template, "interleaved", "obelics-00000.parquet"))
    refs = [ImageRef.parse(ref) for ref, _ in images]
    assert all(ref.scheme is Scheme.parquet and ref.column == "images" and ref.index is not None for ref in refs)


def test_read_back_fails_loudly_when_the_shard_lost_a_member(demo_template):
    source = shard_file(demo_template, "caption", "wds-00000.tar")
    with pytest.raises(FileNotFoundError, match="no longer in the tar"):
        list(iter_image_bytes(source, ["tar:not-there.jpg"]))


# --- read back: the real COCO images in every layout --------------------------------------------


@pytest.fixture(scope="module")
def coco(tmp_path_factory) -> tuple[list[CaptionSample], Path]:
    folder = require_shared("coco-cc")
    samples = []
    for line in (folder / "pairs.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        samples.append(CaptionSample((folder / row["image"]).read_bytes(), row["captions"][0]))
    return samples, tmp_path_factory.mktemp("coco")


CAPTION_LAYOUTS = {
    "coco-wds.tar": write_webdataset_tar,
    "coco-img2dataset.parquet": write_img2dataset_parquet,
    "coco-dj-bytes.parquet": write_dj_parquet,
    "coco-dj.jsonl": write_dj_jsonl,
    "coco-llava.json": write_llava_json,
}


@pytest.mark.parametrize("name", CAPTION_LAYOUTS)
def test_real_coco_images_read_back_in_every_caption_layout(coco, name):
    samples, root = coco
    CAPTION_LAYOUTS[name](root / "raw" / "caption" / name, samples)
    shard = shard_file(root, "caption", name)
    images = recorded_images(shard)
    assert sorted(sha for _, sha in images) == sorted(sha256(sample.image) for sample in samples)
    assert_read_back(shard, images)


@pytest.mark.parametrize("name", ["coco-obelics.parquet", "coco-mmc4.jsonl"])
def test_real_coco_images_read_back_in_interleaved_documents(coco, name):
    samples, root = coco
    docs = [
        InterleavedDoc(
            f"https://example.com/{start}",
            [sample.caption for sample in samples[start : start + 4]],
            [
                DocImage(sample.image, index, f"https://img/{start + index}")
                for index, sample in enumerate(samples[start : start + 4])
            ],
        )
        for start in range(0, len(samples), 4)
    ]
    writer = write_obelics_parquet if name.endswith(".parquet") else write_mmc4_jsonl
    writer(root / "raw" / "interleaved" / name, docs)
    shard = shard_file(root, "interleaved", name)
    images = recorded_images(shard)
    assert sorted(sha for _, sha in images) == sorted(sha256(sample.image) for sample in samples)
    assert_read_back(shard, images)
