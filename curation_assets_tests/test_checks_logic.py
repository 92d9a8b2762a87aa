"""Image, text and path checks on tiny inputs."""

import io
import os

import pytest
from PIL import Image
from upath import UPath

from curation_assets.image_checks import inspect_image, resolve_image_path
from curation_assets.quarantine import Quarantined, Reason
from curation_assets.text_checks import clean_caption, clean_document_text


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
