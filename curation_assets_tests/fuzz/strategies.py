"""Hypothesis strategies for shards of every format the readers accept, valid and damaged.

Each strategy draws rows (good and bad captions, images, paths, JSON), writes them in one format,
then damages the bytes: truncation at any offset and at structural boundaries (tar headers, member
data, lines), byte flips, zeroed blocks, corrupt tar headers (bad checksums, and valid checksums
over absurd sizes), duplicated tar members, odd and non-UTF-8 names, JSON nested 200,000 deep,
integers of 5,000 digits, lone surrogates, byte order marks, FIFOs and directories as image files.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import strategies as st

from curation_assets.readers import IngestLimits, ShardFile
from curation_assets.sources import SourceKind
from curation_assets_tests.fuzz.images import bad_images, good_images

# Small limits, so every limit is reached by small generated inputs.
FUZZ_LIMITS = IngestLimits(
    max_image_bytes=4096,
    max_record_bytes=16_384,
    max_text_chars=3000,
    max_json_depth=12,
    max_document_images=5,
    max_rows_per_shard=400,
    parquet_batch_rows=2,  # so damage can fall between the batches of one row group
)

FIFO, DIRECTORY = "fifo", "directory"  # special files a case asks for, beside plain bytes


@dataclass
class ShardCase:
    kind: str
    name: str
    content: bytes
    files: dict[str, bytes | str | tuple[str, str]] = field(default_factory=dict)  # relative to the shard folder
    story: list[str] = field(default_factory=list)  # what was generated and done to it, for reports

    def write(self, root: Path) -> ShardFile:
        folder = root / "raw" / self.kind
        folder.mkdir(parents=True, exist_ok=True)
        (folder / self.name).write_bytes(self.content)
        for relative, content in self.files.items():
            target = folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if content == FIFO:
                os.mkfifo(target)
            elif content == DIRECTORY:
                target.mkdir(exist_ok=True)
            elif isinstance(content, tuple):  # ("symlink", target)
                os.symlink(content[1], target)
            else:
                target.write_bytes(content)
        return ShardFile(SourceKind(self.kind), _upath(root) / "raw" / self.kind / self.name, _upath(root), FUZZ_LIMITS)


def _upath(path: Path):
    from upath import UPath

    return UPath(path)


# --- pieces -------------------------------------------------------------------------------------

_PERCENT = st.integers(0, 99)


def chance(draw, percent: int) -> bool:
    return draw(_PERCENT) < percent


def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of the strategies, picked with the given weights (hypothesis's one_of picks evenly)."""
    choices = tuple((weight, strategy) for weight, strategy in choices if weight)
    number = st.integers(0, sum(weight for weight, _ in choices) - 1)

    @st.composite
    def pick(draw):
        left = draw(number)
        for weight, strategy in choices:
            if left < weight:
                return draw(strategy)
            left -= weight
        raise AssertionError(left)

    return pick()


PLAIN_TEXTS = (
    "a red square on a table",
    "two dogs  play\nin snow",
    "日本語のキャプション",
    "<__dj__image> a cat <|__dj__eoc|>",
)
EMPTY_TEXTS = ("", "   ", "\u200b\u200e\u200f", "\u2060\u202b", "<image>", "\ufeff", "<|__dj__eoc|>")
SURROGATE_TEXTS = ("\ud800", "a\udfffb", "\udc80")


@cache
def texts(surrogates: bool) -> st.SearchStrategy[str]:
    """Mostly real captions; the rest empty, invisible, random, too long or (JSON only) surrogates."""
    return weighted(
        (80, st.sampled_from(PLAIN_TEXTS)),
        (8, st.sampled_from(EMPTY_TEXTS)),
        (6, st.text(max_size=30)),
        (3, st.just("long " * 700)),  # over max_text_chars
        (3 if surrogates else 0, st.sampled_from(SURROGATE_TEXTS)),
    )


big_image = good_images()[0] + b"\x00" * 5000  # a JPEG with trailing bytes, over max_image_bytes
images = weighted((85, st.sampled_from(good_images())), (10, st.sampled_from(bad_images())), (5, st.just(big_image)))

DEEP = b"[" * 200_000
BIG_INT = b"1" * 5000


@st.composite
def json_bytes(draw, value: object) -> bytes:
    """`value` as JSON, or one of the ways a JSON record goes wrong."""
    kind = draw(
        st.sampled_from(["plain"] * 20 + ["ascii"] * 6 + ["deep", "closed_deep", "big_int", "broken", "not_utf8"])
    )
    if kind == "plain":
        return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    if kind == "ascii":
        return json.dumps(value).encode()
    if kind == "deep":
        return DEEP
    if kind == "closed_deep":
        depth = draw(st.sampled_from([13, 900, 3000]))
        return b"[" * depth + b"1" + b"]" * depth
    if kind == "big_int":
        return b'{"n": ' + BIG_INT + b"}"
    if kind == "broken":
        return json.dumps(value).encode()[: draw(st.integers(0, 20))]
    return b'{"text": "caf\xe9 \xff"}'  # not UTF-8


@dataclass
class PathChoice:
    reference: object
    files: dict


@st.composite
def image_reference(draw, index: int, prefix: str) -> PathChoice:
    """A path as a row would hold it (relative to the shard folder, under `prefix`), and the files it
    needs; most point at a real image, the rest at every way a path goes wrong."""
    name = f"{prefix}{index:03d}.img"
    kind = draw(
        st.sampled_from(
            ["good"] * 60
            + ["missing", "dotdot", "absolute", "nul", "surrogate", "long", "dir", "fifo", "symlink_out"]
            + ["nonstring", "big", "empty_name"]
        )
    )
    if kind == "good":
        return PathChoice(name, {name: draw(images)})
    if kind == "big":
        return PathChoice(name, {name: big_image})
    if kind == "dir":
        return PathChoice(name, {name: DIRECTORY})
    if kind == "fifo":
        return PathChoice(name, {name: FIFO})
    if kind == "symlink_out":
        return PathChoice(name, {name: ("symlink", "/etc/hostname")})
    return PathChoice(
        {
            "missing": name,
            "dotdot": "../../../../outside.jpg",
            "absolute": "/etc/hostname",
            "nul": prefix + "a\x00b.jpg",
            "surrogate": prefix + "\udc80.jpg",
            "long": prefix + "n" * 300 + ".jpg",
            "nonstring": draw(st.sampled_from([42, None, ["a"], {"p": 1}])),
            "empty_name": prefix,
        }[kind],
        {},
    )


# --- damage -------------------------------------------------------------------------------------


@st.composite
def damaged(draw, data: bytes, boundaries: list[int], story: list[str], extra: list[Callable] = ()) -> bytes:
    """`data` after 0 to 2 kinds of damage; `boundaries` are structural offsets worth cutting at."""
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
        kind = draw(
            st.sampled_from(["cut", "cut_at_boundary", "flip", "zero_block", "garbage", *[f.__name__ for f in extra]])
        )
        if not data:
            break
        if kind == "cut":
            at = draw(st.integers(0, len(data)))
            data = data[:at]
        elif kind == "cut_at_boundary":
            at = draw(st.sampled_from(boundaries)) if boundaries else draw(st.integers(0, len(data)))
            data = data[:at]
        elif kind == "flip":
            data = bytearray(data)
            for _ in range(draw(st.integers(1, 8))):
                at = draw(st.integers(0, len(data) - 1))
                data[at] ^= draw(st.integers(1, 255))
            data = bytes(data)
            at = "several"
        elif kind == "zero_block":
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + b"\x00" * 512 + data[at + 512 :]
        elif kind == "garbage":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.binary(min_size=1, max_size=700)) + data[at:]
        else:
            function = next(f for f in extra if f.__name__ == kind)
            data, at = function(draw, data)
        story.append(f"{kind} at {at}")
    return data


# --- webdataset tar -----------------------------------------------------------------------------

KEY_POOL = (
    "000000000",
    "000000001",
    "000000002",
    "a",
    "b/c",
    "dir.x/k",
    "k" * 120,
    "caf\udce9",
    "sp ace",
    "x:y",
    "é\x00x",
)
EXTENSIONS = ("jpg", "png", "JPG", "webp", "txt", "txt", "json", "caption", "npy", "seg.png", "")


caption_bytes = weighted(
    (90, texts(surrogates=False).map(lambda text: text.encode("utf-8"))),
    (7, st.binary(max_size=20)),
    (3, st.just(b"x" * 20_000)),  # over max_record_bytes
)


def _member_content(draw, extension: str) -> bytes:
    if extension.lower() in ("jpg", "png", "webp", "seg.png"):
        return draw(images)
    if extension in ("txt", "caption"):
        return draw(caption_bytes)
    if extension == "json":
        return draw(json_bytes({"caption": draw(texts(surrogates=True)), "url": "http://x/y.jpg"}))
    return draw(st.binary(max_size=64))


@st.composite
def webdataset_tars(draw) -> ShardCase:
    story: list[str] = []
    members: list[tuple[str, bytes, bytes]] = []  # name, data, type
    for index in range(draw(st.integers(0, 7))):
        usual = st.just(f"{index:09d}")
        odd = st.one_of(st.sampled_from(KEY_POOL), st.text(st.characters(codec="utf-8"), min_size=1, max_size=8))
        key = draw(usual if chance(draw, 85) else odd)
        if draw(st.integers(0, 9)):  # img2dataset's own layout
            extensions = ["jpg", "txt"] + (["json"] if draw(st.booleans()) else [])
        else:
            extensions = draw(st.lists(st.sampled_from(EXTENSIONS), max_size=4))
        for extension in extensions:
            name = f"{key}.{extension}" if extension else key
            members.append((name, _member_content(draw, extension), tarfile.REGTYPE))
        if draw(st.integers(0, 9)) == 0:
            members.append(
                (f"{key}.d", b"", draw(st.sampled_from([tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.FIFOTYPE])))
            )
    fmt = draw(st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT]))
    data = _write_tar(members, fmt)
    story.append(f"tar format {fmt} with members {[name for name, _, _ in members]}")
    boundaries = _tar_boundaries(data)
    data = draw(
        damaged(
            data, boundaries, story, [_corrupt_header, _absurd_size, _drop_end_marker, _repeat_member, _flip_extension]
        )
    )
    return ShardCase("caption", "fuzz.tar", data, story=story)


def _write_tar(members: list[tuple[str, bytes, bytes]], fmt: int) -> bytes:
    buffer = io.BytesIO()
    try:
        with tarfile.open(fileobj=buffer, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape") as tar:
            for name, data, kind in members:
                info = tarfile.TarInfo(name)
                info.type = kind
                info.size = len(data) if kind == tarfile.REGTYPE else 0
                info.linkname = "target" if kind == tarfile.SYMTYPE else ""
                tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    except ValueError:  # a name ustar cannot hold: write it the GNU way
        return _write_tar(members, tarfile.GNU_FORMAT)
    return buffer.getvalue()


def _tar_members(data: bytes) -> list[tarfile.TarInfo]:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:", ignore_zeros=True) as tar:
            return tar.getmembers()
    except tarfile.TarError:
        return []


def _tar_boundaries(data: bytes) -> list[int]:
    offsets = set()
    for info in _tar_members(data):
        offsets |= {info.offset, info.offset_data, info.offset_data + (info.size + 511) // 512 * 512, info.offset + 100}
    return sorted(offset for offset in offsets if offset <= len(data))


def _corrupt_header(draw, data: bytes) -> tuple[bytes, int]:
    members = _tar_members(data)
    if not members:
        return data, -1
    at = draw(st.sampled_from(members)).offset + draw(st.integers(0, 511))
    data = bytearray(data)
    if at < len(data):
        data[at] ^= draw(st.integers(1, 255))
    return bytes(data), at


def _absurd_size(draw, data: bytes) -> tuple[bytes, int]:
    """A header with a valid checksum over a size that is huge, negative (base-256) or too small."""
    members = [info for info in _tar_members(data) if info.offset + 512 <= len(data)]
    if not members:
        return data, -1
    info = draw(st.sampled_from(members))
    header = bytearray(data[info.offset : info.offset + 512])
    field = draw(
        st.sampled_from(
            [
                b"77777777777\x00",
                b"\xff" + b"\xff" * 10 + b"\xfe",
                b"00000000001\x00",
                b"\x80" + b"\x00" * 7 + b"\x7f\xff\xff\xff",
            ]
        )
    )
    header[124:136] = field
    header[148:156] = b"        "
    header[148:156] = b"%06o\x00 " % sum(header)
    return data[: info.offset] + bytes(header) + data[info.offset + 512 :], info.offset


def _flip_extension(draw, data: bytes) -> tuple[bytes, int]:
    """Damage a pax record or GNU long name: data blocks no header checksum covers."""
    spans = [
        (info.offset + 512, info.offset_data - 512)
        for info in _tar_members(data)
        if info.offset_data - 512 > info.offset
    ]
    if not spans:
        return data, -1
    start, end = draw(st.sampled_from(spans))
    at = draw(st.integers(start, min(end, len(data)) - 1)) if min(end, len(data)) > start else start
    if at >= len(data):
        return data, -1
    replacement = draw(st.sampled_from([b"0", b"9", b" ", b"=", b"\n", b"\x00", b"\xff", b"/"]))
    return data[:at] + replacement + data[at + 1 :], at


def _drop_end_marker(draw, data: bytes) -> tuple[bytes, int]:
    members = _tar_members(data)
    if not members:
        return data, -1
    last = members[-1]
    end = last.offset_data + (last.size + 511) // 512 * 512
    return data[:end], end


def _repeat_member(draw, data: bytes) -> tuple[bytes, int]:
    """Copy one member (header and data) to the end of the archive: a key seen twice, far apart."""
    members = [info for info in _tar_members(data) if info.isreg()]
    if not members:
        return data, -1
    info = draw(st.sampled_from(members))
    end_of = info.offset_data + (info.size + 511) // 512 * 512
    last = _tar_members(data)[-1]
    archive_end = last.offset_data + (last.size + 511) // 512 * 512
    return data[:archive_end] + data[info.offset : end_of] + data[archive_end:], archive_end


# --- parquet ------------------------------------------------------------------------------------

_CAPTION_CELLS = weighted((90, texts(False).map(str.encode)), (5, st.binary(max_size=8)), (5, st.none()))


def _maybe_bad_utf8(values: list[bytes | None]) -> pa.Array:
    """A string column whose bytes need not be UTF-8 (arrow only checks when asked)."""
    return pa.array(values, pa.binary()).view(pa.string())


@st.composite
def _extra_columns(draw, rows: int) -> dict[str, pa.Array]:
    extra = {}
    if draw(st.booleans()):  # a timestamp Python cannot represent, only ever in source_meta
        extra["crawled"] = pa.array([253402300800000000 + i for i in range(rows)], pa.timestamp("us"))
    if draw(st.booleans()):
        extra["url"] = _maybe_bad_utf8([draw(st.sampled_from([b"http://a", b"\xff\xfe", None])) for _ in range(rows)])
    return extra


@st.composite
def _parquet_bytes(draw, columns: dict[str, pa.Array], story: list[str]) -> bytes:
    buffer = io.BytesIO()
    compression = draw(st.sampled_from(["zstd", "snappy", "gzip", "none"]))
    group = draw(st.integers(1, 6))
    pq.write_table(pa.table(columns), buffer, compression=compression, row_group_size=group, data_page_size=256)
    story.append(f"parquet {compression}, {group} rows per group, columns {sorted(columns)}")
    return draw(damaged(buffer.getvalue(), [], story))


@st.composite
def caption_parquets(draw) -> ShardCase:
    story: list[str] = []
    rows = draw(st.integers(0, 8))
    captions = [draw(_CAPTION_CELLS) for _ in range(rows)]
    layout = draw(st.sampled_from(["img2dataset"] * 4 + ["data_juicer"] * 3 + ["hf_struct"] * 2 + ["no_caption"]))
    columns: dict[str, pa.Array] = {}
    if layout != "no_caption":
        columns["caption" if layout != "data_juicer" else "text"] = _maybe_bad_utf8(captions)
    pictures = [draw(images) if chance(draw, 95) else None for _ in range(rows)]
    if layout == "data_juicer":
        columns["image_bytes"] = pa.array(
            [[] if p is None else [p] * draw(st.sampled_from([1] * 9 + [2])) for p in pictures], pa.list_(pa.binary())
        )
    elif layout == "hf_struct":
        columns["image"] = pa.array(
            [{"bytes": p, "path": "x.jpg"} for p in pictures],
            pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
        )
    else:
        columns["jpg"] = pa.array(pictures, pa.binary())
    columns.update(draw(_extra_columns(rows)))
    story.append(f"caption parquet ({layout}), {rows} rows")
    return ShardCase("caption", "fuzz.parquet", draw(_parquet_bytes(columns, story)), story=story)


@st.composite
def obelics_parquets(draw) -> ShardCase:
    story: list[str] = []
    all_texts, all_images = [], []
    for _ in range(draw(st.integers(0, 5))):
        texts_, images_ = [], []
        for _ in range(draw(st.integers(0, 7))):
            slot = draw(st.sampled_from(["text"] * 10 + ["image"] * 8 + ["both", "neither"]))
            text = draw(texts(False)) if slot in ("text", "both") else None
            picture = draw(images) if slot in ("image", "both") else None
            texts_.append(text)
            images_.append(picture)
        if draw(st.integers(0, 9)) == 0:
            images_.append(None)  # lists of different lengths
        all_texts.append(texts_)
        all_images.append(images_)
    columns = {
        "texts": pa.array(all_texts, pa.list_(pa.string())),
        "images": pa.array(all_images, pa.list_(pa.binary())),
    }
    columns.update(draw(_extra_columns(len(all_texts))))
    story.append(f"OBELICS parquet, {len(all_texts)} documents")
    return ShardCase("interleaved", "fuzz.parquet", draw(_parquet_bytes(columns, story)), story=story)


@st.composite
def text_parquets(draw) -> ShardCase:
    story: list[str] = []
    rows = draw(st.integers(0, 10))
    columns = {"text": _maybe_bad_utf8([draw(_CAPTION_CELLS) for _ in range(rows)])}
    columns.update(draw(_extra_columns(rows)))
    return ShardCase("text", "fuzz.parquet", draw(_parquet_bytes(columns, story)), story=story)


# --- jsonl --------------------------------------------------------------------------------------

SPECIAL_LINES = (
    b"",
    b"   \t",
    b"\r",
    DEEP,
    b'{"text": "a number", "n": ' + BIG_INT + b"}",
    b'{"text": ',
    b"[1, 2]",
    b'"just a string"',
    b'{"text": "caf\xe9"}',
    b"\xef\xbb\xbf",
    b'{"text": "' + b"y" * 20_000 + b'"}',  # over max_record_bytes
)


@st.composite
def _jsonl(draw, records: list[bytes], story: list[str]) -> bytes:
    lines = list(records)
    for _ in range(draw(st.integers(0, 3))):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(SPECIAL_LINES)))
    separator = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = separator.join(lines) + draw(st.sampled_from([b"", separator]))
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data  # a byte order mark before the first row
        story.append("BOM")
    boundaries = [index for index, byte in enumerate(data) if byte == 0x0A]
    return draw(damaged(data, boundaries, story))


@st.composite
def dj_jsonls(draw) -> ShardCase:
    story: list[str] = []
    records, files = [], {}
    for index in range(draw(st.integers(0, 6))):
        choice = draw(image_reference(index, "fuzz_images/"))
        files.update(choice.files)
        images_field = draw(st.sampled_from(["one"] * 12 + ["none", "two", "not_a_list"]))
        value = {"one": [choice.reference], "none": [], "two": [choice.reference] * 2, "not_a_list": choice.reference}[
            images_field
        ]
        records.append(draw(json_bytes({"text": draw(texts(True)), "images": value, "id": index})))
    story.append(f"Data-Juicer jsonl, {len(records)} records")
    return ShardCase("caption", "fuzz.jsonl", draw(_jsonl(records, story)), files, story)


_BAD_INDEXES = st.sampled_from([-1, 99, True, "0"])


@st.composite
def mmc4_jsonls(draw) -> ShardCase:
    story: list[str] = []
    records, files = [], {}
    for doc in range(draw(st.integers(0, 4))):
        sentences = draw(st.lists(texts(True), min_size=1, max_size=4))
        infos = []
        for index in range(draw(st.integers(0, 4))):
            choice = draw(image_reference(doc * 10 + index, ""))
            files.update({f"fuzz_images/{name}": content for name, content in choice.files.items()})
            matched = draw(st.integers(0, len(sentences) - 1)) if chance(draw, 90) else draw(_BAD_INDEXES)
            infos.append({"image_name": choice.reference, "matched_text_index": matched})
        image_info = draw(st.sampled_from(["list"] * 12 + ["number", "missing", "strings"]))
        record: dict = {"url": f"https://e/{doc}", "text_list": sentences}
        if image_info != "missing":
            record["image_info"] = {"list": infos, "number": 7, "strings": ["a.jpg"]}[image_info]
        records.append(draw(json_bytes(record)))
    story.append(f"MMC4 jsonl, {len(records)} documents")
    return ShardCase("interleaved", "fuzz.jsonl", draw(_jsonl(records, story)), files, story)


@st.composite
def text_jsonls(draw) -> ShardCase:
    story: list[str] = []
    records = [
        draw(json_bytes({"text": draw(texts(True)), "meta": {"i": index}})) for index in range(draw(st.integers(0, 8)))
    ]
    story.append(f"text jsonl, {len(records)} records")
    return ShardCase("text", "fuzz.jsonl", draw(_jsonl(records, story)), story=story)


# --- LLaVA json ---------------------------------------------------------------------------------


_ODD_ELEMENTS = st.sampled_from([b"", b"42", b'"text"', b"null", b"[]"])


@st.composite
def llava_jsons(draw) -> ShardCase:
    story: list[str] = []
    elements, files = [], {}
    for index in range(draw(st.integers(0, 6))):
        choice = draw(image_reference(index, "fuzz_images/"))
        files.update(choice.files)
        conversations = [{"from": "human", "value": "<image>\nDescribe."}]
        if draw(st.integers(0, 19)):
            conversations.append({"from": "gpt", "value": draw(texts(True))})
        record = {"id": str(index), "image": choice.reference, "conversations": conversations}
        elements.append(draw(json_bytes(record)) if chance(draw, 92) else draw(_ODD_ELEMENTS))
    separators = [draw(st.sampled_from([b",", b", ", b",\n  ", b" ,"])) for _ in elements]
    body = b"".join(element + separator for element, separator in zip(elements, separators))
    if elements:
        body = body[: len(body) - len(separators[-1])]  # no separator after the last element
    data = draw(st.sampled_from([b"[", b"[\n", b" [ "])) + body + draw(st.sampled_from([b"]", b"]\n", b"\n]"]))
    if draw(st.integers(0, 7)) == 0:
        data += draw(st.sampled_from([b"]", b"garbage", b" {}", b"\x00"]))
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
        story.append("BOM")
    story.append(f"LLaVA json, {len(elements)} elements")
    boundaries = [index for index, byte in enumerate(data) if byte in b",[]{}"]
    return ShardCase("caption", "fuzz.json", draw(damaged(data, boundaries, story)), files, story)


FORMATS: dict[str, st.SearchStrategy[ShardCase]] = {
    "webdataset_tar": webdataset_tars(),
    "caption_parquet": caption_parquets(),
    "data_juicer_jsonl": dj_jsonls(),
    "llava_json": llava_jsons(),
    "mmc4_jsonl": mmc4_jsonls(),
    "obelics_parquet": obelics_parquets(),
    "text_jsonl": text_jsonls(),
    "text_parquet": text_parquets(),
}
