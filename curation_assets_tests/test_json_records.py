"""JSON that crashed readers (lone surrogates, 200,000 `[`, 5,000-digit integers, a byte order mark)
is one quarantine row in every format whose text comes from JSON, and the row count agrees."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from curation_assets.normalize import normalize_shard
from curation_assets.quarantine import Quarantined, Reason
from curation_assets.readers import IngestLimits, ShardFile, count_source_rows
from curation_assets.readers.json_records import json_depth, parse_json, parse_json_object
from curation_assets_tests.helpers import shard_file

LIMITS = IngestLimits()
DEEP = b"[" * 200_000
BIG_INT = b"7" * 5000


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (9, 90, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def reason_of(raw: bytes) -> Reason:
    with pytest.raises(Quarantined) as caught:
        parse_json_object(raw, LIMITS)
    return caught.value.reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"text": "\\ud800"}', Reason.non_utf8_text),
        (b'{"\\udfff": 1}', Reason.non_utf8_text),  # in a key too
        (b'{"a": [{"b": "x\\udc80"}]}', Reason.non_utf8_text),
        (DEEP, Reason.over_limit),
        (b"[" * 65 + b"]" * 65, Reason.over_limit),  # parses, but deeper than max_json_depth (64)
        (b'{"n": ' + BIG_INT + b"}", Reason.over_limit),
        (b'{"text": "caf\xe9"}', Reason.non_utf8_text),
        (b'{"text": ', Reason.malformed_json),
        (b"[1, 2]", Reason.malformed_json),  # not an object
        (b"x" * (LIMITS.max_record_bytes + 1), Reason.over_limit),
    ],
)
def test_records_that_crashed_json_loads_are_quarantined(raw, reason):
    assert reason_of(raw) == reason


def test_what_json_allows_stays_valid():
    assert parse_json_object(b'\xef\xbb\xbf{"text": "\\ud83d\\ude00 ok"}', LIMITS) == {"text": "\U0001f600 ok"}
    assert parse_json(b"[" * 64 + b"]" * 64, LIMITS) is not None
    assert parse_json(b'{"n": ' + b"7" * 4000 + b"}", LIMITS)["n"] > 0
    assert json_depth({"a": [1, {"b": []}]}) == 4 and json_depth(5) == 0


# --- every JSON-sourced format ------------------------------------------------------------------


def write(root: Path, kind: str, name: str, content: bytes) -> ShardFile:
    folder = root / "raw" / kind
    (folder / "imgs").mkdir(parents=True, exist_ok=True)
    (folder / "imgs" / "ok.jpg").write_bytes(jpeg())
    (folder / f"{name.rsplit('.', 1)[0]}_images").mkdir(exist_ok=True)
    (folder / f"{name.rsplit('.', 1)[0]}_images" / "ok.jpg").write_bytes(jpeg())
    (folder / name).write_bytes(content)
    return shard_file(root, kind, name)


def outcomes(shard: ShardFile) -> dict[str, str]:
    table = normalize_shard(shard)
    assert count_source_rows(shard) == table.valid.height + table.quarantine.height
    return {
        **dict.fromkeys(table.valid["key"].to_list(), "valid"),
        **dict(zip(table.quarantine["key"], table.quarantine["reason"])),
    }


BAD_RECORDS = {
    "surrogate": ("non_utf8_text", lambda good: good.replace(b"a red thing", b"\\ud800")),
    "deep": ("over_limit", lambda good: DEEP),
    "big_int": ("over_limit", lambda good: good[:-1] + b', "n": ' + BIG_INT + b"}"),
}
GOOD_RECORDS = {
    ("caption", "dj.jsonl"): {"text": "<__dj__image> a red thing", "images": ["imgs/ok.jpg"]},
    ("interleaved", "mmc4.jsonl"): {
        "text_list": ["a red thing"],
        "image_info": [{"image_name": "ok.jpg", "matched_text_index": 0}],
    },
    ("text", "web.jsonl"): {"text": "a red thing"},
}


@pytest.mark.parametrize("bad", BAD_RECORDS)
@pytest.mark.parametrize(("kind", "name"), GOOD_RECORDS)
def test_each_jsonl_format_quarantines_the_bad_line_and_reads_on(tmp_path, kind, name, bad):
    good = json.dumps(GOOD_RECORDS[(kind, name)]).encode()
    reason, make = BAD_RECORDS[bad]
    shard = write(tmp_path, kind, name, b"\n".join([good, make(good), good]) + b"\n")
    assert outcomes(shard) == {"000000": "valid", "000001": reason, "000002": "valid"}


@pytest.mark.parametrize(("kind", "name"), GOOD_RECORDS)
def test_a_byte_order_mark_does_not_cost_the_first_row(tmp_path, kind, name):
    good = json.dumps(GOOD_RECORDS[(kind, name)]).encode()
    shard = write(tmp_path, kind, name, b"\xef\xbb\xbf" + good + b"\n" + good + b"\n")
    assert outcomes(shard) == {"000000": "valid", "000001": "valid"}


LLAVA = {
    "id": "1",
    "image": "imgs/ok.jpg",
    "conversations": [{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "a red thing"}],
}


@pytest.mark.parametrize("bad", BAD_RECORDS)
def test_llava_quarantines_the_bad_element_and_reads_on(tmp_path, bad):
    good = json.dumps(LLAVA).encode()
    reason, make = BAD_RECORDS[bad]
    bad_element = make(good) + (b"]" * 200_000 if bad == "deep" else b"")
    shard = write(tmp_path, "caption", "llava.json", b"[" + b",\n".join([good, bad_element, good]) + b"]")
    assert outcomes(shard) == {"000000": "valid", "000001": reason, "000002": "valid"}


def test_a_tar_sidecar_with_a_surrogate_caption_is_quarantined(tmp_path):
    import tarfile

    path = tmp_path / "raw" / "caption" / "s.tar"
    path.parent.mkdir(parents=True)
    with tarfile.open(path, "w") as tar:
        for name, data in [
            ("a.jpg", jpeg()),
            ("a.json", b'{"caption": "\\ud800"}'),
            ("b.jpg", jpeg()),
            ("b.json", b'{"caption": "fine"}'),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert outcomes(shard_file(tmp_path, "caption", "s.tar")) == {"a": "non_utf8_text", "b": "valid"}


@pytest.mark.parametrize(
    ("image_info", "reason"),
    [
        (7, "missing_field"),
        ("a.jpg", "missing_field"),
        ([{"image_name": 5, "matched_text_index": 0}], "missing_field"),
        ([{"image_name": "ok.jpg", "matched_text_index": True}], "missing_field"),
        (None, "valid"),
    ],
)
def test_mmc4_image_info_of_the_wrong_shape(tmp_path, image_info, reason):
    row = {"text_list": ["a red thing"], "image_info": image_info}
    shard = write(tmp_path, "interleaved", "mmc4.jsonl", json.dumps(row).encode() + b"\n")
    assert outcomes(shard) == {"000000": reason}
