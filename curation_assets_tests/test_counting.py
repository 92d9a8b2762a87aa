"""The row counters: a second route to each shard's rows, independent of its reader, that survives
what the readers must survive."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from upath import UPath

from curation_assets.demo.writers import CaptionSample, write_webdataset_tar
from curation_assets.normalize import normalize_shard
from curation_assets.readers import READERS, Rejected, count_source_rows, read_shard
from curation_assets.readers.counting import json_array_row_keys, jsonl_row_keys, tar_row_keys
from curation_assets.sources import SourceKind
from curation_assets_tests.helpers import DEMO_SHARDS, shard_file


def write(tmp_path: Path, name: str, content: bytes) -> UPath:
    path = tmp_path / name
    path.write_bytes(content)
    return UPath(path)


@pytest.mark.parametrize("shard", DEMO_SHARDS)
def test_counter_and_reader_find_the_same_keys_in_every_demo_shard(demo_template, shard):
    kind, name = shard.split("/")
    source = shard_file(demo_template, kind, name)
    reader, counter = READERS[(SourceKind(kind), name.rsplit(".", 1)[1])]
    assert [outcome.key for outcome in reader(source)] == list(counter(source.path))


# --- LLaVA json: counted without parsing JSON ---------------------------------------------------


@pytest.mark.parametrize(
    ("content", "rows"),
    [
        (b"[]", 0),
        (b" [ \n ] ", 0),
        (b'[{"a": "],[,{"}, {"b": [1, 2, {"c": ","}]}]', 2),  # brackets and commas inside strings
        (b'[{"a": "\\"],"}, 3]', 2),  # an escaped quote
        (b"[" + b"[" * 200_000 + b"]" * 200_000 + b", 1]", 2),
        (b"[" + b"9" * 5000 + b", 1]", 2),
        (b"\xef\xbb\xbf[1, 2, 3]", 3),
        (b"[1,,2]", 3),  # an empty element is a row (quarantined)
        (b"[1, 2", 2),  # truncated
        (b'[1, "never closed, ] ', 2),
    ],
)
def test_llava_counter_counts_top_level_elements(tmp_path, content, rows):
    assert len(json_array_row_keys(write(tmp_path, "x.json", content))) == rows


@pytest.mark.parametrize(
    ("content", "keys"),
    [(b"{}", ["__shard__"]), (b"", ["__shard__"]), (b"[", ["__shard__"]), (b"[1]]", ["000000", "__after_array__"])],
)
def test_llava_counter_whole_file_and_trailing_rows(tmp_path, content, keys):
    assert list(json_array_row_keys(write(tmp_path, "x.json", content))) == keys


def test_llava_counter_never_parses_json(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the counter must not parse JSON")

    monkeypatch.setattr(json, "loads", refuse)
    monkeypatch.setattr(json.JSONDecoder, "raw_decode", refuse)
    assert len(json_array_row_keys(write(tmp_path, "x.json", b'[{"a": 1}, [2], "3"]'))) == 3


# --- jsonl: counted from bytes ------------------------------------------------------------------


def test_jsonl_counter_counts_lines_with_content(tmp_path):
    content = b"\xef\xbb\xbf{}\r\n\n   \n" + b"x" * (3 << 20) + b"\n\t\n{}"  # a line longer than a read chunk
    assert list(jsonl_row_keys(write(tmp_path, "x.jsonl", content))) == ["000000", "000003", "000005"]


def test_a_line_holding_only_a_byte_order_mark_at_the_start_is_blank(tmp_path):
    assert list(jsonl_row_keys(write(tmp_path, "x.jsonl", b"\xef\xbb\xbf\n{}\n"))) == ["000001"]


# --- tar: its own header walk -------------------------------------------------------------------


def test_tar_counter_sees_samples_after_a_corrupt_header_that_tarfile_streams_stop_at(tmp_path):
    path = tmp_path / "s.tar"
    write_webdataset_tar(path, [CaptionSample(b"\xff\xd8" + bytes(600), f"caption {i}") for i in range(6)])
    data = bytearray(path.read_bytes())
    with tarfile.open(path) as tar:
        third = tar.getmembers()[3]
    data[third.offset + 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with tarfile.open(path, mode="r|") as stream:  # the old reader and the old counter both did this
        streamed = {member.name.split(".")[0] for member in stream}
    assert streamed == {"000000000"}  # everything after the damaged header is gone
    assert tar_row_keys(UPath(path)) == [f"{i:09d}" for i in range(6)]


def test_tar_counter_reads_pax_gnu_and_ustar_names(tmp_path):
    for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        names = ["a.jpg", "a.txt", "dir/" + "y" * 150 + ".jpg", "café.txt", "b.c/d.e.txt"]
        if fmt == tarfile.USTAR_FORMAT:
            names = [name for name in names if len(name) < 100]
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=fmt, pax_headers={"comment": "global"}) as tar:
            for name in names:
                tar.addfile(tarfile.TarInfo(name), io.BytesIO())
            directory = tarfile.TarInfo("folder")
            directory.type = tarfile.DIRTYPE
            tar.addfile(directory)
        expected = list(
            dict.fromkeys(
                name.rsplit("/", 1)[0] + "/" + name.rsplit("/", 1)[1].split(".")[0]
                if "/" in name
                else name.split(".")[0]
                for name in names
            )
        )
        assert tar_row_keys(write(tmp_path, "t.tar", buffer.getvalue())) == expected, fmt


# --- read_shard: whatever the reader misses is still a row --------------------------------------


def test_rows_the_reader_never_reaches_become_unread_rows(demo_template, monkeypatch):
    source = shard_file(demo_template, "text", "web-00000.jsonl")
    reader, counter = READERS[(SourceKind.text, "jsonl")]

    def stops_after_two(shard):
        for index, outcome in enumerate(reader(shard)):
            if index == 2:
                return
            yield outcome

    monkeypatch.setitem(READERS, (SourceKind.text, "jsonl"), (stops_after_two, counter))
    table = normalize_shard(source)
    assert table.valid.height + table.quarantine.height == count_source_rows(source)
    assert table.quarantine.filter(table.quarantine["reason"] == "unread_row").height == count_source_rows(source) - 2


def test_a_reader_that_crashes_still_accounts_for_every_row(demo_template, monkeypatch):
    source = shard_file(demo_template, "text", "web-00000.jsonl")
    reader, counter = READERS[(SourceKind.text, "jsonl")]

    def crashes_after_one(shard):
        yield next(reader(shard))
        raise RuntimeError("a reader bug")

    monkeypatch.setitem(READERS, (SourceKind.text, "jsonl"), (crashes_after_one, counter))
    outcomes = list(read_shard(source))
    assert len(outcomes) == count_source_rows(source)
    assert all(
        isinstance(o, Rejected) and o.reason.value == "reader_error" and "a reader bug" in o.detail
        for o in outcomes[1:]
    )
