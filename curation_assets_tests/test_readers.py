"""Each reader on generated shards of every format: valid rows, quarantine reasons, stable ids."""

import io
import json
import tarfile

import polars as pl
import pytest
from PIL import Image

from curation_assets.demo.writers import CaptionSample, write_webdataset_tar
from curation_assets.ids import sample_id
from curation_assets.normalize import normalize_shard
from curation_assets.quarantine import Reason
from curation_assets.readers import IngestLimits, count_source_rows, read_shard
from curation_assets.sources import SourceKind
from curation_assets.tables import QUARANTINE_SCHEMA, SCHEMAS
from curation_assets_tests.helpers import DEMO_SHARDS, shard_file


def jpeg(width=32, height=24, color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize("shard", DEMO_SHARDS)
def test_each_demo_shard_reads_as_the_generator_planted_it(demo_template, demo_manifest, shard):
    kind, name = shard.split("/")
    expected = demo_manifest[shard]
    table = normalize_shard(shard_file(demo_template, kind, name))

    assert table.valid.height == expected["valid"]
    assert table.reason_counts == expected["quarantine"]
    assert count_source_rows(shard_file(demo_template, kind, name)) == expected["rows"]
    # Each planted defect is quarantined under the key it was planted at, with that reason.
    quarantined = dict(zip(table.quarantine["key"], table.quarantine["reason"]))
    for reason in expected["quarantine"]:
        for key in expected["defects"][reason]:
            assert quarantined.get(key) == reason, (key, reason, quarantined.get(key))
    assert table.valid.schema == SCHEMAS[SourceKind(kind)]
    assert table.quarantine.schema == QUARANTINE_SCHEMA


# Reasons the demo corpus does not plant; each has its own test below (see test_reader_defects.py too).
NOT_PLANTED_IN_THE_DEMO = {
    Reason.unreadable_shard,
    Reason.duplicate_key,
    Reason.non_utf8_name,
    Reason.invalid_path,
    Reason.not_a_file,
    Reason.over_limit,
    Reason.corrupt_data,
    Reason.unread_row,
    Reason.reader_error,
}


def test_every_quarantine_reason_is_produced_by_some_demo_shard(demo_template):
    seen = set()
    for shard in DEMO_SHARDS:
        kind, name = shard.split("/")
        seen |= set(normalize_shard(shard_file(demo_template, kind, name)).reason_counts)
    assert seen >= {reason.value for reason in Reason} - {reason.value for reason in NOT_PLANTED_IN_THE_DEMO}


def test_caption_rows_carry_clean_text_and_image_stats(demo_template):
    valid = normalize_shard(shard_file(demo_template, "caption", "dj-00000.jsonl")).valid
    assert not valid["caption"].str.contains("__dj__").any()
    assert (valid["image_width"] > 0).all() and (valid["image_height"] > 0).all()
    assert valid["image_ref"].str.starts_with("file:raw/caption/dj-00000_images/").all()
    assert valid["image_sha256"].str.len_chars().eq(64).all()


def test_interleaved_rows_keep_order_and_align_texts_with_images(demo_template):
    valid = normalize_shard(shard_file(demo_template, "interleaved", "mmc4-00000.jsonl")).valid
    for texts, images in zip(valid["texts"].to_list(), valid["images"].to_list()):
        assert len(texts) == len(images)
        assert all((text is None) != (image is None) for text, image in zip(texts, images))
    assert valid["num_images"].sum() > 0


def test_mmc4_image_goes_before_its_matched_sentence(tmp_path):
    raw = tmp_path / "raw" / "interleaved"
    (raw / "doc_images").mkdir(parents=True)
    (raw / "doc_images" / "a.jpg").write_bytes(jpeg())
    row = {"text_list": ["first", "second"], "image_info": [{"image_name": "a.jpg", "matched_text_index": 1}]}
    (raw / "doc.jsonl").write_text(json.dumps(row) + "\n")
    [outcome] = list(read_shard(shard_file(tmp_path, "interleaved", "doc.jsonl")))
    assert outcome.columns["texts"] == ["first", None, "second"]
    assert outcome.columns["images"][1]["ref"] == "file:raw/interleaved/doc_images/a.jpg"


def test_sample_ids_are_stable_and_distinct(demo_template, demo_root):
    first = normalize_shard(shard_file(demo_template, "caption", "wds-00000.tar"))
    again = normalize_shard(shard_file(demo_root, "caption", "wds-00000.tar"))  # another folder, same shard
    ids = pl.concat([first.valid["sample_id"], first.quarantine["sample_id"]])
    assert ids.n_unique() == ids.len()
    assert first.valid["sample_id"].to_list() == again.valid["sample_id"].to_list()
    assert (
        sample_id("caption", "wds-00000.tar", "000000001")
        == first.valid.filter(pl.col("key") == "000000001")["sample_id"].item()
    )
    assert sample_id("caption", "wds-00001.tar", "000000001") != sample_id("caption", "wds-00000.tar", "000000001")


def _wds(tmp_path, samples, name="s.tar"):
    raw = tmp_path / "raw" / "caption"
    raw.mkdir(parents=True, exist_ok=True)
    write_webdataset_tar(raw / name, samples)
    return shard_file(tmp_path, "caption", name)


def test_tar_cut_at_a_member_boundary_loses_nothing_silently(tmp_path):
    shard = _wds(tmp_path, [CaptionSample(jpeg(), f"caption {i}", {}) for i in range(4)])
    data = shard.path.read_bytes()
    # Cut right after the third member's data block: a header boundary, no end-of-archive marker.
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = archive.getmembers()
    boundary = members[3].offset
    shard.path.write_bytes(data[:boundary])
    table = normalize_shard(shard)
    assert table.valid.height + table.quarantine.height == count_source_rows(shard)


def test_garbage_tar_is_one_unreadable_row(tmp_path):
    raw = tmp_path / "raw" / "caption"
    raw.mkdir(parents=True)
    (raw / "junk.tar").write_bytes(b"this is not a tar archive" * 40)
    shard = shard_file(tmp_path, "caption", "junk.tar")
    table = normalize_shard(shard)
    assert table.reason_counts == {"unreadable_shard": 1}
    assert count_source_rows(shard) == 1


def test_corrupt_parquet_is_one_unreadable_row(tmp_path):
    raw = tmp_path / "raw" / "text"
    raw.mkdir(parents=True)
    (raw / "bad.parquet").write_bytes(b"PAR1 not really")
    shard = shard_file(tmp_path, "text", "bad.parquet")
    assert normalize_shard(shard).reason_counts == {"unreadable_shard": 1}
    assert count_source_rows(shard) == 1


def test_parquet_without_caption_column_quarantines_every_row_with_the_reason(tmp_path):
    raw = tmp_path / "raw" / "caption"
    raw.mkdir(parents=True)
    pl.DataFrame({"jpg": [jpeg(), jpeg()], "alt": ["a", "b"]}).write_parquet(raw / "x.parquet")
    table = normalize_shard(shard_file(tmp_path, "caption", "x.parquet"))
    assert table.reason_counts == {"missing_field": 2}
    assert "caption column" in table.quarantine["detail"][0]


def test_decompression_bomb_limit_is_configurable(tmp_path):
    shard = _wds(tmp_path, [CaptionSample(jpeg(100, 100), "a red square", {})])
    assert normalize_shard(shard).valid.height == 1
    strict = shard_file(tmp_path, "caption", "s.tar", limits=IngestLimits(max_image_pixels=5_000))
    assert normalize_shard(strict).reason_counts == {"decompression_bomb": 1}


def test_unknown_shard_ending_is_refused_with_the_endings_we_know(tmp_path):
    with pytest.raises(ValueError, match=r"\.tar, \.parquet"):
        list(read_shard(shard_file(tmp_path, "caption", "notes.txt")))


@pytest.mark.parametrize("name", ["000001.jpg", "dir/000001.seg.png", "a/b.c/000.txt", "noext", "x.y.z", "k.JSON"])
def test_tar_member_names_split_like_webdataset(name):
    from webdataset.tariterators import base_plus_ext

    from curation_assets.readers.webdataset_tar import split_member_name

    assert split_member_name(name) == base_plus_ext(name)


# --- the ingest limits --------------------------------------------------------------------------


def test_ingest_limits_are_a_strict_frozen_recipe_section():
    from pydantic import ValidationError

    from curation_assets.image_checks import DEFAULT_MAX_PIXELS

    limits = IngestLimits()
    assert limits.max_image_pixels == DEFAULT_MAX_PIXELS
    assert all(field.description for field in IngestLimits.model_fields.values())
    with pytest.raises(ValidationError):
        IngestLimits(max_image_byte=1)  # a typo is an error, not a silent default
    with pytest.raises(ValidationError):
        IngestLimits(max_record_bytes=0)
    with pytest.raises(ValidationError):
        limits.max_text_chars = 5  # frozen: a ShardFile's limits cannot drift
    assert hash(limits) == hash(IngestLimits())


def test_a_shard_file_reads_with_default_limits_unless_given_others(tmp_path):
    shard = _wds(tmp_path, [CaptionSample(jpeg(), "a caption of some length", {})])
    assert shard.limits == IngestLimits()
    strict = shard_file(tmp_path, "caption", "s.tar", limits=IngestLimits(max_text_chars=5))
    assert normalize_shard(strict).reason_counts == {"over_limit": 1}


def test_too_many_images_in_one_document(tmp_path):
    raw = tmp_path / "raw" / "interleaved"
    (raw / "doc_images").mkdir(parents=True)
    (raw / "doc_images" / "a.jpg").write_bytes(jpeg())
    row = {"text_list": ["one"], "image_info": [{"image_name": "a.jpg", "matched_text_index": 0}] * 3}
    (raw / "doc.jsonl").write_text(json.dumps(row) + "\n")
    assert normalize_shard(shard_file(tmp_path, "interleaved", "doc.jsonl")).valid.height == 1
    strict = shard_file(tmp_path, "interleaved", "doc.jsonl", limits=IngestLimits(max_document_images=2))
    assert normalize_shard(strict).reason_counts == {"over_limit": 1}


# --- image paths that used to crash or block a shard --------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("imgs/a\x00b.jpg", "invalid_path"),
        ("imgs/\udc80.jpg", "non_utf8_text"),  # a lone surrogate in JSON text is caught as the row is parsed
        ("imgs/" + "n" * 300 + ".jpg", "invalid_path"),
        ("imgs/folder", "not_a_file"),
        ("imgs/pipe", "not_a_file"),
        ("imgs/big.jpg", "over_limit"),
    ],
)
def test_image_paths_that_crashed_or_blocked_ingest(tmp_path, path, reason):
    import os

    from curation_assets_tests.fuzz.check import deadline

    raw = tmp_path / "raw" / "caption"
    (raw / "imgs" / "folder").mkdir(parents=True)
    os.mkfifo(raw / "imgs" / "pipe")
    (raw / "imgs" / "ok.jpg").write_bytes(jpeg())
    (raw / "imgs" / "big.jpg").write_bytes(jpeg(400, 400) + b"\x00" * 100)
    rows = [{"text": "fine", "images": ["imgs/ok.jpg"]}, {"text": "bad", "images": [path]}]
    (raw / "p.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    shard = shard_file(tmp_path, "caption", "p.jsonl", limits=IngestLimits(max_image_bytes=len(jpeg(400, 400))))
    with deadline(10):  # the FIFO used to block here forever
        table = normalize_shard(shard)
    assert table.valid["key"].to_list() == ["000000"]
    assert dict(zip(table.quarantine["key"], table.quarantine["reason"])) == {"000001": reason}
