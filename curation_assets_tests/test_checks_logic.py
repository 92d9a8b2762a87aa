"""Image, text and path checks on tiny inputs."""

import io
import os

import pytest
from PIL import Image, UnidentifiedImageError
from upath import UPath

from curation_assets.image_checks import inspect_image, open_image, read_image_file, resolve_image_path
from curation_assets.quarantine import Quarantined, Reason
from curation_assets.text_checks import clean_caption, clean_document_text
from curation_assets_tests.fuzz.check import deadline


def png(width, height, mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def reason_of(call) -> Reason:
    with pytest.raises(Quarantined) as caught:
        call()
    return caught.value.reason


def test_inspect_image_describes_a_good_image():
    info = inspect_image(png(40, 10))
    assert (info.width, info.height, info.format, info.mode) == (40, 10, "png", "RGB")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", Reason.empty_file),
        (b"\x00\x01garbage" * 50, Reason.undecodable_image),
        (png(300, 300)[:-200], Reason.truncated_image),
    ],
)
def test_inspect_image_rejects_bad_bytes(data, reason):
    assert reason_of(lambda: inspect_image(data)) == reason


def test_decompression_bomb_is_caught_before_decoding():
    bomb = png(12_000, 10_000, mode="1")  # 120 Mpx, a few KB
    assert len(bomb) < 100_000
    assert reason_of(lambda: inspect_image(bomb)) == Reason.decompression_bomb


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<__dj__image> a dog  on a\nbeach <|__dj__eoc|>", "a dog on a beach"),
        ("<image>\nA cat.", "A cat."),
        (b"caf\xc3\xa9", "café"),
    ],
)
def test_clean_caption(raw, expected):
    assert clean_caption(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", Reason.empty_text),
        (" \t\n", Reason.empty_text),
        ("<__dj__image> <|__dj__eoc|>", Reason.empty_text),
        (b"\xff\xfe", Reason.non_utf8_text),
        (None, Reason.missing_field),
        (42, Reason.missing_field),
    ],
)
def test_clean_caption_rejects(raw, reason):
    assert reason_of(lambda: clean_caption(raw)) == reason


def test_document_text_keeps_line_breaks():
    assert clean_document_text("  line one\nline two  ") == "line one\nline two"


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    shard_dir = root / "raw" / "caption"
    (shard_dir / "imgs").mkdir(parents=True)
    (shard_dir / "imgs" / "ok.png").write_bytes(png(2, 2))
    (tmp_path / "outside.png").write_bytes(png(2, 2))
    os.symlink(tmp_path / "outside.png", shard_dir / "imgs" / "link_out.png")
    os.symlink(shard_dir / "imgs" / "ok.png", shard_dir / "imgs" / "link_in.png")
    return UPath(root), UPath(shard_dir)


@pytest.mark.parametrize(
    ("reference", "reason"),
    [
        ("../../../outside.png", Reason.path_escape),
        ("imgs/../../../../outside.png", Reason.path_escape),
        ("/etc/passwd", Reason.path_escape),
        ("C:\\Windows\\x.png", Reason.path_escape),
        ("s3://bucket/x.png", Reason.path_escape),
        ("imgs/link_out.png", Reason.path_escape),
        ("imgs/missing.png", Reason.missing_file),
        ("", Reason.missing_field),
        (None, Reason.missing_field),
    ],
)
def test_resolve_image_path_refuses(tree, reference, reason):
    root, shard_dir = tree
    assert reason_of(lambda: resolve_image_path(reference, shard_dir, root)) == reason


@pytest.mark.parametrize(
    "reference", ["imgs/ok.png", "imgs/link_in.png", "../caption/imgs/ok.png", "../../raw/caption/imgs/ok.png"]
)
def test_resolve_image_path_allows_paths_inside_the_root(tree, reference):
    root, shard_dir = tree
    assert resolve_image_path(reference, shard_dir, root).exists()


def test_resolve_image_path_on_an_object_store_path():
    root = UPath("memory://bucket/data")
    (root / "raw" / "caption" / "imgs").mkdir(parents=True, exist_ok=True)
    (root / "raw" / "caption" / "imgs" / "a.png").write_bytes(png(2, 2))
    shard_dir = root / "raw" / "caption"
    assert resolve_image_path("imgs/a.png", shard_dir, root).read_bytes() == png(2, 2)
    assert reason_of(lambda: resolve_image_path("../../../x.png", shard_dir, root)) == Reason.path_escape


# --- images open with an allow-list of decoders -------------------------------------------------

POSTSCRIPT = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"


def encoded(fmt: str, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (8, 6)).save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_every_allowed_format_is_read(fmt):
    assert inspect_image(encoded(fmt, "P" if fmt == "GIF" else "RGB")).width == 8


@pytest.mark.parametrize(("data", "plugin"), [(POSTSCRIPT, "EPS"), (encoded("ICO"), "ICO"), (encoded("TGA"), "TGA")])
def test_formats_outside_the_allow_list_are_never_opened(data, plugin):
    """Pillow alone recognises these (and for PostScript would start Ghostscript to decode it);
    ingest and scoring refuse them before any plugin sees the bytes."""
    assert Image.open(io.BytesIO(data)).format == plugin
    assert reason_of(lambda: inspect_image(data)) == Reason.undecodable_image
    with pytest.raises(UnidentifiedImageError):
        open_image(data)


def test_scoring_decoders_use_the_allow_list_too():
    from curation_assets.scoring.hashes import phash_of_bytes
    from curation_assets.scoring.image_batches import open_rgb

    for decode in (open_rgb, phash_of_bytes):
        with pytest.raises(UnidentifiedImageError):
            decode(POSTSCRIPT)
    assert open_rgb(encoded("PNG")).size == (8, 6)


# --- reading referenced files -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "reason"),
    [
        ("imgs/a\x00b.png", Reason.invalid_path),
        ("imgs/\udc80.png", Reason.invalid_path),
        ("imgs/\ud800.png", Reason.invalid_path),
        ("imgs/" + "n" * 300 + ".png", Reason.invalid_path),
    ],
)
def test_paths_no_file_can_have_are_refused_before_any_system_call(tree, reference, reason):
    root, shard_dir = tree
    assert reason_of(lambda: resolve_image_path(reference, shard_dir, root)) == reason


def test_a_fifo_is_refused_without_blocking(tree):
    root, shard_dir = tree
    os.mkfifo(shard_dir.path + "/imgs/pipe.png")
    path = resolve_image_path("imgs/pipe.png", shard_dir, root)
    with deadline(5):  # a plain read would wait for a writer forever
        assert reason_of(lambda: read_image_file(path, 1_000_000)) == Reason.not_a_file


def test_a_directory_is_refused(tree):
    root, shard_dir = tree
    os.mkdir(shard_dir.path + "/imgs/folder.png")
    path = resolve_image_path("imgs/folder.png", shard_dir, root)
    assert reason_of(lambda: read_image_file(path, 1_000_000)) == Reason.not_a_file


def test_a_file_over_the_limit_is_refused_unread(tree):
    root, shard_dir = tree
    path = resolve_image_path("imgs/ok.png", shard_dir, root)
    size = len(png(2, 2))
    assert read_image_file(path, size) == png(2, 2)
    assert reason_of(lambda: read_image_file(path, size - 1)) == Reason.over_limit


def test_reading_a_file_on_an_object_store():
    root = UPath("memory://bucket/limits")
    (root / "a.png").write_bytes(png(3, 3))
    assert read_image_file(root / "a.png", 10_000) == png(3, 3)
    assert reason_of(lambda: read_image_file(root / "a.png", 10)) == Reason.over_limit
    assert reason_of(lambda: read_image_file(root / "missing.png", 10_000)) == Reason.missing_file


# --- text that shows nothing, or cannot be stored -----------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["\u200b", "\u200e\u200f", "\u2060", "\u202b", "\ufeff", "\u200b \u200e\t\u2060\u202b", "<image>\u200b", "\u3164"],
)
def test_text_of_only_invisible_characters_is_empty(raw):
    assert reason_of(lambda: clean_caption(raw)) == Reason.empty_text
    assert reason_of(lambda: clean_document_text(raw)) == Reason.empty_text


def test_visible_text_keeps_its_invisible_characters():
    assert clean_caption("zero\u200bwidth") == "zero\u200bwidth"


def test_a_lone_surrogate_in_text_is_non_utf8_text():
    assert reason_of(lambda: clean_caption("a \ud800 b")) == Reason.non_utf8_text
    assert reason_of(lambda: clean_document_text("\udfff")) == Reason.non_utf8_text


def test_text_over_the_length_limit():
    assert clean_caption("a" * 10, max_chars=10) == "a" * 10
    assert reason_of(lambda: clean_caption("a" * 11, max_chars=10)) == Reason.over_limit
