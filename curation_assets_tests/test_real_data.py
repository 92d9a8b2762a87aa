"""The shard readers on real third-party data from ../shared/data (see its README.md).

The data is read in place (read-only) or copied into pytest's tmp_path, never into the repo. Every
test skips with a reason when its folder is absent, as it is in a fresh clone.

What the real data looks like, checked when these tests were written: the 76 COCO JPEGs carry no
EXIF at all (so no orientation tag), one is greyscale (mode L), many embed an ICC profile, none is
progressive; two first captions hold a double space. Every MMC4 document has images, 51 list their
image_info out of sentence order, 7 put two images before one sentence, and image names end in
.jpg, .jpeg or .png.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from upath import UPath

from curation_assets.demo.writers import (
    CaptionSample,
    write_dj_jsonl,
    write_img2dataset_parquet,
    write_llava_json,
    write_webdataset_tar,
)
from curation_assets.normalize import NormalizedShard, normalize_shard
from curation_assets.readers import ShardFile, count_source_rows
from curation_assets.sources import SourceKind
from curation_assets.text_checks import SPECIAL_TOKENS
from curation_assets_tests.helpers import require_shared, shard_file

MMC4_SHARD = "mmc4_shard151_partial.jsonl"

# One writer per caption layout, keyed by the shard name the reader dispatches on.
CAPTION_WRITERS = {
    "coco-wds.tar": write_webdataset_tar,
    "coco-img2dataset.parquet": write_img2dataset_parquet,
    "coco-dj.jsonl": write_dj_jsonl,  # images go to coco-dj_images/, referenced relative to the jsonl
    "coco-llava.json": write_llava_json,  # images go to coco-llava_images/
}
PATH_FORMATS = ("coco-dj.jsonl", "coco-llava.json")  # layouts that reference image files by path


@dataclass(frozen=True)
class CocoPair:
    path: Path  # the original file in ../shared/data, never written to
    data: bytes
    caption: str  # the first of the five human captions
    width: int
    height: int


@pytest.fixture(scope="module")
def coco_pairs() -> list[CocoPair]:
    folder = require_shared("coco-cc")
    pairs = []
    for line in (folder / "pairs.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        path = folder / row["image"]
        pairs.append(CocoPair(path, path.read_bytes(), row["captions"][0], row["width"], row["height"]))
    return pairs


# --- helpers ----------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def normalised_whitespace(text: str) -> str:
    return " ".join(text.split())


def write_caption_shard(root: Path, name: str, samples: list[CaptionSample]) -> ShardFile:
    CAPTION_WRITERS[name](root / "raw" / "caption" / name, samples)
    return shard_file(root, "caption", name)


def read_with_accounting(shard: ShardFile) -> NormalizedShard:
    """Normalise a shard and check the invariant every ingest relies on: each source row, counted by
    the separate cheap route, lands in exactly one of the two tables."""
    table = normalize_shard(shard)
    assert count_source_rows(shard) == table.valid.height + table.quarantine.height, shard.shard_id
    return table


def quarantine_reasons(table: NormalizedShard) -> dict[str, str]:
    return dict(zip(table.quarantine["key"], table.quarantine["reason"]))


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """The same JPEG stream with an EXIF APP1 segment carrying `orientation` spliced in after SOI:
    the pixels are not re-encoded, only the header claims a rotation."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    payload = exif.tobytes()
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def small_jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (width * 3 % 256, height * 5 % 256, 90)).save(buffer, "JPEG")
    return buffer.getvalue()


def mmc4_layout(row: dict) -> list[tuple[str, str]]:
    """MMC4's intended reading order, computed independently of the reader: each image goes right
    before its matched sentence; images matched to the same sentence keep their image_info order."""
    layout = []
    for index, sentence in enumerate(row["text_list"]):
        layout += [("image", info["image_name"]) for info in row["image_info"] if info["matched_text_index"] == index]
        layout.append(("text", sentence))
    return layout


def read_layout(texts: list[str | None], images: list[dict | None]) -> list[tuple[str, str]]:
    """The reader's aligned texts/images lists as the same (kind, value) sequence; an image is named
    by the file name at the end of its ref."""
    assert all((text is None) != (image is None) for text, image in zip(texts, images))
    return [
        ("text", text) if text is not None else ("image", image["ref"].rsplit("/", 1)[-1])
        for text, image in zip(texts, images)
    ]


# --- 1. real COCO pairs through every caption layout -------------------------------------------


@pytest.mark.parametrize("name", CAPTION_WRITERS)
def test_real_coco_pairs_read_back_exactly_in_every_caption_format(tmp_path, coco_pairs, name):
    shard = write_caption_shard(tmp_path, name, [CaptionSample(pair.data, pair.caption) for pair in coco_pairs])
    table = read_with_accounting(shard)

    assert table.quarantine.height == 0, table.quarantine.to_dicts()
    assert table.valid.height == len(coco_pairs)
    # Rows come back in shard order, so row i must still be pair i (image and caption together).
    for row, pair in zip(table.valid.iter_rows(named=True), coco_pairs):
        assert (row["image_width"], row["image_height"]) == (pair.width, pair.height), pair.path.name
        assert row["image_format"] == "jpeg"
        assert row["image_sha256"] == sha256(pair.path.read_bytes())
        assert row["image_num_bytes"] == pair.path.stat().st_size
        # The reader collapses runs of whitespace (two real first captions hold a double space).
        assert row["caption"] == normalised_whitespace(pair.caption)
        if name in PATH_FORMATS:  # a file ref must name a copy of this very image under the data root
            assert row["image_ref"].startswith(f"file:raw/caption/{Path(name).stem}_images/")
            assert sha256((tmp_path / row["image_ref"].removeprefix("file:")).read_bytes()) == row["image_sha256"]


def test_exif_orientation_on_a_real_jpeg_does_not_change_the_reported_size(tmp_path, coco_pairs):
    """None of the real COCO files has an orientation tag, so we add one (6 = rotate 90 degrees
    clockwise to display) to a real JPEG without re-encoding it. The reader reports the stored
    width/height, as COCO's own annotations do, not the displayed (rotated) size; the bytes it
    hands on keep the tag for whoever decodes them."""
    pair = next(pair for pair in coco_pairs if pair.width != pair.height)
    rotated = with_exif_orientation(pair.data, 6)
    assert Image.open(io.BytesIO(rotated)).getexif().get(0x0112) == 6
    table = read_with_accounting(write_caption_shard(tmp_path, "coco-wds.tar", [CaptionSample(rotated, pair.caption)]))

    row = table.valid.row(0, named=True)
    assert (row["image_width"], row["image_height"]) == (pair.width, pair.height)
    assert row["image_sha256"] == sha256(rotated)


# --- 2. wrong captions and corrupted copies of real images --------------------------------------


def test_wrong_captions_on_real_images_pass_ingest_with_the_pairing_as_given(tmp_path, coco_pairs):
    """Ingest checks form, not meaning: an image paired with another image's caption is kept, and
    must reach the later (CLIP-score) stage exactly as mispaired, not shuffled back or dropped."""
    shifted = coco_pairs[1:] + coco_pairs[:1]
    samples = [CaptionSample(pair.data, other.caption) for pair, other in zip(coco_pairs, shifted)]
    table = read_with_accounting(write_caption_shard(tmp_path, "coco-wds.tar", samples))

    assert table.quarantine.height == 0
    assert table.valid["image_sha256"].to_list() == [sha256(pair.data) for pair in coco_pairs]
    assert table.valid["caption"].to_list() == [normalised_whitespace(other.caption) for other in shifted]


@pytest.mark.parametrize("name", CAPTION_WRITERS)
def test_real_jpegs_cut_in_half_are_quarantined_as_truncated(tmp_path, coco_pairs, name):
    """Every real JPEG cut to half its bytes, after one intact control image in the same shard."""
    control = coco_pairs[0]
    samples = [CaptionSample(control.data, control.caption)]
    samples += [CaptionSample(pair.data[: len(pair.data) // 2], pair.caption) for pair in coco_pairs]
    table = read_with_accounting(write_caption_shard(tmp_path, name, samples))

    assert table.valid.height == 1
    assert table.valid.row(0, named=True)["image_sha256"] == sha256(control.data)
    assert table.reason_counts == {"truncated_image": len(coco_pairs)}


@pytest.mark.parametrize("name", PATH_FORMATS)
def test_symlink_from_the_data_root_to_the_real_file_outside_it_is_path_escape(tmp_path, coco_pairs, name):
    """A link inside the data root that leads to the original in ../shared/data (outside the root)
    must be refused even though the target is a perfectly good image; a link to a copy inside the
    root is fine, so it is the destination that is judged, not the link."""
    pair = coco_pairs[0]
    inside_copy = tmp_path / "pool" / pair.path.name
    inside_copy.parent.mkdir()
    shutil.copyfile(pair.path, inside_copy)
    samples = [
        CaptionSample(None, pair.caption, {"symlink_to": str(inside_copy)}),
        CaptionSample(None, pair.caption, {"symlink_to": str(pair.path.resolve())}),
    ]
    table = read_with_accounting(write_caption_shard(tmp_path, name, samples))

    assert table.valid["key"].to_list() == ["000000"]
    assert table.valid.row(0, named=True)["image_sha256"] == sha256(pair.data)
    assert quarantine_reasons(table) == {"000001": "path_escape"}
    assert str(pair.path.resolve()) in table.quarantine.row(0, named=True)["detail"]


# --- 3. real web text ---------------------------------------------------------------------------


def test_real_text_documents_are_all_kept_with_their_cleaned_text(tmp_path):
    folder = require_shared("text-docs")
    files = sorted(folder.glob("*.jsonl"))
    assert files, f"no jsonl files in {folder}"
    for path in files:
        source = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        # Read in place: the data root is the folder's parent, which the reader only reads.
        table = read_with_accounting(ShardFile(SourceKind.text, UPath(path), UPath(folder.parent)))

        assert table.quarantine.height == 0, (path.name, table.quarantine.to_dicts())
        assert table.valid.height == len(source), path.name
        for row, doc in zip(table.valid.iter_rows(named=True), source):
            # No special tokens occur in these docs, so cleaning is just trimming the ends (arXiv
            # docs end in blank lines and some use \r\n inside, which is kept).
            assert not any(token in doc["text"] for token in SPECIAL_TOKENS)
            assert row["text"] == doc["text"].strip(), (path.name, row["key"])
            assert row["num_chars"] == len(doc["text"].strip())
            assert json.loads(row["source_meta"]) == {name: value for name, value in doc.items() if name != "text"}


# --- 4. real MMC4 documents ---------------------------------------------------------------------


def test_real_mmc4_documents_without_pixels_then_with_attached_synthetic_pixels(tmp_path):
    """The MMC4 text and structure are real; the pixels are not (MMC4 ships URLs only). First the
    shard is read with no image files: every document that lists images is quarantined as
    missing_file, naming the first image in reading order. Then a small generated JPEG is written
    under each image_name (also for names ending .png: the reader goes by content, so every image
    reports jpeg), and every document reads back whole, in MMC4's intended order."""
    original = require_shared("mmc4-docs") / MMC4_SHARD
    shard_path = tmp_path / "raw" / "interleaved" / "mmc4-real.jsonl"
    shard_path.parent.mkdir(parents=True)
    shutil.copyfile(original, shard_path)
    shard = shard_file(tmp_path, "interleaved", "mmc4-real.jsonl")
    docs = [json.loads(line) for line in original.read_text(encoding="utf-8").splitlines() if line.strip()]

    # Without pixels.
    before = read_with_accounting(shard)
    reasons = quarantine_reasons(before)
    details = dict(zip(before.quarantine["key"], before.quarantine["detail"]))
    for index, doc in enumerate(docs):
        key = f"{index:06d}"
        if doc["image_info"]:
            assert reasons.get(key) == "missing_file", key
            first_image = next(value for kind, value in mmc4_layout(doc) if kind == "image")
            assert f"'mmc4-real_images/{first_image}' does not exist" in details[key], key
        else:
            assert key in before.valid["key"].to_list()

    # With a distinct synthetic JPEG per image_name (distinct sizes make every sha256 distinct).
    images_dir = shard_path.parent / "mmc4-real_images"
    images_dir.mkdir()
    written: dict[str, bytes] = {}
    for ordinal, info in enumerate(info for doc in docs for info in doc["image_info"]):
        written[info["image_name"]] = small_jpeg(16 + ordinal % 64, 16 + ordinal // 64)
        (images_dir / info["image_name"]).write_bytes(written[info["image_name"]])

    after = read_with_accounting(shard)
    assert after.quarantine.height == 0, after.quarantine.to_dicts()
    # Same sample ids as before, so a re-ingest replaces the quarantine rows instead of adding to them.
    assert set(after.valid["sample_id"]) == set(before.valid["sample_id"]) | set(before.quarantine["sample_id"])
    for row, doc in zip(after.valid.iter_rows(named=True), docs):
        assert row["num_images"] == len(doc["image_info"])
        assert row["num_texts"] == len(doc["text_list"])
        assert [text for text in row["texts"] if text is not None] == doc["text_list"]
        assert read_layout(row["texts"], row["images"]) == mmc4_layout(doc), row["key"]
        for image in filter(None, row["images"]):
            name = image["ref"].rsplit("/", 1)[-1]
            assert image["ref"] == f"file:raw/interleaved/mmc4-real_images/{name}"
            assert image["sha256"] == sha256(written[name])
            assert image["format"] == "jpeg"
        meta = json.loads(row["source_meta"])
        assert meta["url"] == doc["url"]
        assert meta["image_info"] == doc["image_info"]  # raw urls and match scores are kept, not dropped
