"""WebDataset tars that are damaged, cut, duplicated or oversized: every sample ends up exactly once in
the valid or the quarantine table, with the reason, and the independent count agrees."""

from __future__ import annotations

import hashlib
import io
import tarfile
import tracemalloc
from pathlib import Path

import pytest
from PIL import Image

from curation_assets.demo.writers import CaptionSample, write_webdataset_tar
from curation_assets.image_source import iter_image_bytes
from curation_assets.normalize import normalize_shard
from curation_assets.readers import IngestLimits, ShardFile, count_source_rows, source_row_keys
from curation_assets_tests.helpers import shard_file

SAMPLES = 8


def jpeg(shade: int = 0, size: tuple[int, int] = (32, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (shade, 90, 200 - shade)).save(buffer, "JPEG")
    return buffer.getvalue()


def write_tar(root: Path, name: str, members: list[tuple[str, bytes]], fmt=tarfile.USTAR_FORMAT, **limits) -> ShardFile:
    path = root / "raw" / "caption" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w", format=fmt, encoding="utf-8", errors="surrogateescape") as tar:
        for member_name, data in members:
            info = tarfile.TarInfo(member_name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return shard_file(root, "caption", name, limits=IngestLimits(**limits))


def outcome_of(shard: ShardFile) -> dict[str, str]:
    """key -> "valid" or the quarantine reason, checking the accounting on the way."""
    table = normalize_shard(shard)
    keys = table.valid["key"].to_list() + table.quarantine["key"].to_list()
    assert len(keys) == len(set(keys)), "a key twice"
    assert len(keys) == count_source_rows(shard) == len(list(source_row_keys(shard)))
    assert set(keys) == set(source_row_keys(shard))
    return {
        **dict.fromkeys(table.valid["key"].to_list(), "valid"),
        **dict(zip(table.quarantine["key"], table.quarantine["reason"])),
    }


def assert_refs_read_back(shard: ShardFile) -> None:
    valid = normalize_shard(shard).valid
    got = dict(iter_image_bytes(shard, valid["image_ref"].to_list()))
    for position, sha in enumerate(valid["image_sha256"].to_list()):
        assert hashlib.sha256(got[position]).hexdigest() == sha


@pytest.fixture
def clean_tar(tmp_path) -> tuple[ShardFile, bytes, list[tarfile.TarInfo]]:
    raw = tmp_path / "raw" / "caption"
    raw.mkdir(parents=True)
    write_webdataset_tar(raw / "s.tar", [CaptionSample(jpeg(i * 20), f"caption {i}") for i in range(SAMPLES)])
    data = (raw / "s.tar").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    return shard_file(tmp_path, "caption", "s.tar"), data, members


# --- damage and truncation ----------------------------------------------------------------------


@pytest.mark.parametrize("member", range(3 * SAMPLES))
def test_a_corrupt_header_anywhere_loses_no_sample(clean_tar, member):
    """tarfile's stream mode read a bad header after offset 0 as the end of the archive, and the old
    counter walked the same stream, so every later sample vanished with the check passing."""
    shard, data, members = clean_tar
    damaged = bytearray(data)
    damaged[members[member].offset + 5] ^= 0xFF  # inside the name: the checksum no longer matches
    shard.path.write_bytes(bytes(damaged))

    outcomes = outcome_of(shard)

    assert len(outcomes) == SAMPLES  # every sample still has members the walk can read
    damaged_key = members[member].name.split(".")[0]
    assert outcomes[damaged_key] == "corrupt_data"
    assert list(outcomes.values()).count("valid") >= SAMPLES - 2  # at most the two neighbours
    assert_refs_read_back(shard)


@pytest.mark.parametrize("boundary", range(1, 3 * SAMPLES))
def test_a_tar_cut_at_any_member_boundary_quarantines_the_last_sample(clean_tar, boundary):
    shard, data, members = clean_tar
    shard.path.write_bytes(data[: members[boundary].offset])  # no end-of-archive marker
    outcomes = outcome_of(shard)
    last_key = members[boundary - 1].name.split(".")[0]
    assert outcomes[last_key] == "truncated_tar"
    assert list(outcomes.values()).count("truncated_tar") == 1


@pytest.mark.parametrize("cut", ["inside_header", "inside_data", "after_padding"])
def test_a_tar_cut_anywhere_else_quarantines_the_sample_in_flight(clean_tar, cut):
    shard, data, members = clean_tar
    member = members[10]
    end = {
        "inside_header": member.offset + 100,
        "inside_data": member.offset_data + 7,
        "after_padding": members[-1].offset_data + 512 * ((members[-1].size + 511) // 512),
    }[cut]
    shard.path.write_bytes(data[:end])
    outcomes = outcome_of(shard)
    key = (member if cut != "after_padding" else members[-1]).name.split(".")[0]
    assert outcomes[key] == "truncated_tar"


def test_a_clean_end_marker_is_not_truncation_and_concatenated_tars_read_on(tmp_path, clean_tar):
    shard, data, _ = clean_tar
    second = tmp_path / "second.tar"
    write_webdataset_tar(second, [CaptionSample(jpeg(i), f"more {i}") for i in range(3)], keys=["x1", "x2", "x3"])
    shard.path.write_bytes(data + second.read_bytes())  # two archives back to back, as `cat` makes them
    outcomes = outcome_of(shard)
    assert len(outcomes) == SAMPLES + 3 and set(outcomes.values()) == {"valid"}


@pytest.mark.parametrize("content", [b"", b"not a tar" * 100, b"\x01" * 300])
def test_a_file_that_is_no_tar_is_one_unreadable_row(tmp_path, content):
    raw = tmp_path / "raw" / "caption"
    raw.mkdir(parents=True)
    (raw / "junk.tar").write_bytes(content)
    assert outcome_of(shard_file(tmp_path, "caption", "junk.tar")) == {"__shard__": "unreadable_shard"}


def test_an_empty_archive_has_no_rows(tmp_path):
    shard = write_tar(tmp_path, "empty.tar", [])
    assert outcome_of(shard) == {}


# --- duplicate keys -----------------------------------------------------------------------------


def test_a_key_that_comes_back_later_keeps_its_first_sample(tmp_path):
    first, second = jpeg(10), jpeg(200)
    shard = write_tar(
        tmp_path,
        "dup.tar",
        [
            ("a.jpg", first),
            ("a.txt", b"first a"),
            ("b.jpg", second),
            ("b.txt", b"b"),
            ("a.jpg", second),
            ("a.txt", b"x"),
        ],
    )
    assert outcome_of(shard) == {"a": "valid", "b": "valid", "a.dup2": "duplicate_key"}
    valid = normalize_shard(shard).valid
    assert valid.filter(valid["key"] == "a")["image_sha256"].item() == hashlib.sha256(first).hexdigest()
    assert_refs_read_back(shard)  # ingest and the read-back agree on which copy of a.jpg


@pytest.mark.parametrize("second_name", ["a.jpg", "a.JPG"])
def test_one_extension_twice_in_a_sample_quarantines_it(tmp_path, second_name):
    shard = write_tar(
        tmp_path,
        "dup.tar",
        [("a.jpg", jpeg(1)), ("a.txt", b"a"), (second_name, jpeg(2)), ("b.jpg", jpeg(3)), ("b.txt", b"b")],
    )
    assert outcome_of(shard) == {"a": "duplicate_key", "b": "valid"}


# --- names --------------------------------------------------------------------------------------


def test_a_member_name_that_is_not_utf8_is_quarantined(tmp_path):
    shard = write_tar(
        tmp_path,
        "names.tar",
        [("ok.jpg", jpeg()), ("ok.txt", b"fine"), ("caf\udce9.jpg", jpeg(5)), ("caf\udce9.txt", b"latin-1 name")],
        fmt=tarfile.GNU_FORMAT,
    )
    assert outcome_of(shard) == {"ok": "valid", "caf\\xe9": "non_utf8_name"}


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_long_and_non_ascii_names_in_pax_and_gnu_tars(tmp_path, fmt):
    long = "deep/" + "x" * 180
    shard = write_tar(
        tmp_path,
        "long.tar",
        [(f"{long}.jpg", jpeg()), (f"{long}.txt", b"a"), ("café.jpg", jpeg(9)), ("café.txt", b"b")],
        fmt,
    )
    assert outcome_of(shard) == {long: "valid", "café": "valid"}
    assert_refs_read_back(shard)


# --- size limits --------------------------------------------------------------------------------


def test_members_over_the_limits_are_quarantined_and_never_read(tmp_path):
    big = 24 * 1024 * 1024
    shard = write_tar(
        tmp_path,
        "big.tar",
        [
            ("a.jpg", jpeg()),
            ("a.txt", b"x" * big),  # over max_record_bytes
            ("b.jpg", jpeg(1)),
            ("b.npy", b"\x00" * big),  # not part of a caption sample
            ("b.txt", b"fine"),
            ("c.jpg", b"\xff\xd8" + b"\x00" * big),  # over max_image_bytes
            ("c.txt", b"c"),
        ],
        max_record_bytes=1024 * 1024,
        max_image_bytes=1024 * 1024,
    )
    tracemalloc.start()
    try:
        outcomes = outcome_of(shard)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcomes == {"a": "over_limit", "b": "valid", "c": "over_limit"}
    assert peak < big / 2, f"peak {peak} bytes: a {big}-byte member was read"


def test_a_pax_member_name_holding_a_nul_byte_is_quarantined(tmp_path):
    """ustar and GNU names end at the first NUL; a pax path record keeps it (found by `make fuzz`)."""
    shard = write_tar(
        tmp_path,
        "nul.tar",
        [("é\x00b.jpg", jpeg()), ("é\x00b.txt", b"x"), ("ok.jpg", jpeg(3)), ("ok.txt", b"y")],
        tarfile.PAX_FORMAT,
    )
    assert outcome_of(shard) == {"é\x00b": "invalid_path", "ok": "valid"}  # non-ASCII: a pax record
