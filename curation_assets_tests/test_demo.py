"""The demo generator: deterministic, complete, and truthful about the defects it plants."""

from __future__ import annotations

import io
import json
import os
import tarfile
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from curation_assets.demo import MANIFEST_NAME, QUARANTINE_REASONS, generate_demo_data
from curation_assets.demo.__main__ import branch_summary, main
from curation_assets.demo.generate import INTERLEAVED_DEFECTS, KEPT_DEFECTS, TEXT_DEFECTS
from curation_assets_tests.helpers import DEMO_SHARDS

IMAGE_EXTS = (".jpg", ".png", ".webp")
EXPECTED_SHARDS = set(DEMO_SHARDS)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("demo")
    return root, generate_demo_data(root)


def _snapshot(root: Path) -> dict[str, bytes | str]:
    """Every entry under root: file bytes, or 'symlink -> target' (never followed)."""
    entries = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            entries[rel] = f"symlink -> {os.readlink(path)}" if path.is_symlink() else path.read_bytes()
    return entries


def _tar_members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


def _decodes(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
        return True
    except Exception:
        return False


def test_same_seed_gives_byte_identical_files(tmp_path):
    generate_demo_data(tmp_path / "a", seed=0)
    generate_demo_data(tmp_path / "b", seed=0)
    first, second = _snapshot(tmp_path / "a"), _snapshot(tmp_path / "b")
    assert first.keys() == second.keys()
    differing = [name for name in first if first[name] != second[name]]
    assert differing == []


def test_other_seed_gives_other_data(tmp_path, demo):
    root, _ = demo
    generate_demo_data(tmp_path, seed=1)
    wds = "raw/caption/wds-00000.tar"
    assert (tmp_path / wds).read_bytes() != (root / wds).read_bytes()


def test_layout_and_size(demo):
    root, manifest = demo
    assert set(manifest) == EXPECTED_SHARDS
    for shard in EXPECTED_SHARDS:
        assert (root / "raw" / shard).is_file(), shard
    for images_dir in ("caption/dj-00000_images", "caption/llava-00000_images", "interleaved/mmc4-00000_images"):
        assert any((root / "raw" / images_dir).iterdir()), images_dir
    total = sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    assert total < 5 * 1024 * 1024


def test_manifest_is_consistent(demo):
    root, manifest = demo
    assert json.loads((root / MANIFEST_NAME).read_text()) == manifest
    for shard, entry in manifest.items():
        assert entry["rows"] == entry["valid"] + sum(entry["quarantine"].values()), shard
        key_width = 9 if shard.endswith(".tar") else 6
        for defect, keys in entry["defects"].items():
            assert defect in QUARANTINE_REASONS or defect in KEPT_DEFECTS, (shard, defect)
            assert all(len(k) == key_width and k.isdigit() and int(k) < entry["rows"] for k in keys), (shard, defect)
        # Quarantined rows are listed under their reason, one reason per row.
        for reason, count in entry["quarantine"].items():
            assert len(entry["defects"][reason]) == count, (shard, reason)
        quarantined = [k for d, keys in entry["defects"].items() if d in QUARANTINE_REASONS for k in keys]
        assert len(quarantined) == len(set(quarantined)), shard


def test_every_reason_and_defect_is_planted(demo):
    _, manifest = demo
    reasons = {reason for entry in manifest.values() for reason in entry["quarantine"]}
    defects = {defect for entry in manifest.values() for defect in entry["defects"]}
    assert reasons == set(QUARANTINE_REASONS)
    assert set(KEPT_DEFECTS) <= defects


def test_decompression_bomb_is_huge_but_small_on_disk(demo):
    root, manifest = demo
    (key,) = manifest["caption/wds-00001.tar"]["defects"]["decompression_bomb"]
    data = _tar_members(root / "raw/caption/wds-00001.tar")[f"{key}.png"]
    assert len(data) < 100 * 1024
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as img:  # reads the header only
            assert img.width * img.height > 100_000_000


def test_truncated_tar_fails_in_stream_mode(demo):
    root, manifest = demo
    path = root / "raw/caption/wds-00002.tar"
    assert path.stat().st_size % tarfile.BLOCKSIZE != 0  # cut inside data, not between blocks
    complete = set()
    with pytest.raises(tarfile.ReadError):
        with tarfile.open(path, mode="r|") as tar:
            for member in tar:
                tar.extractfile(member).read()
                complete.add(member.name.split(".")[0])
    entry = manifest["caption/wds-00002.tar"]
    (cut_key,) = entry["defects"]["truncated_tar"]
    assert cut_key not in complete and len(complete) == entry["rows"] - 1


def test_tar_rows_match_the_manifest(demo):
    """Check the planted tar defects against the bytes, without relying on the real readers."""
    root, manifest = demo
    for shard in ("caption/wds-00000.tar", "caption/wds-00001.tar"):
        members = _tar_members(root / "raw" / shard)
        outcome = {k: d for d, keys in manifest[shard]["defects"].items() for k in keys}
        for index in range(manifest[shard]["rows"]):
            key = f"{index:09d}"
            images = [data for name, data in members.items() if name.split(".")[0] == key and name.endswith(IMAGE_EXTS)]
            reason = outcome.get(key)
            if reason == "missing_image":
                assert images == []
                continue
            (image,) = images
            if reason == "empty_file":
                assert image == b""
            elif reason in ("undecodable_image", "truncated_image"):
                assert not _decodes(image), (shard, key)
            elif reason == "non_utf8_text":
                with pytest.raises(UnicodeDecodeError):
                    members[f"{key}.txt"].decode("utf-8")
            elif reason == "malformed_json":
                with pytest.raises(json.JSONDecodeError):
                    json.loads(members[f"{key}.json"])
            elif reason == "empty_text":
                assert members[f"{key}.txt"].decode("utf-8").strip() == ""
            elif reason != "decompression_bomb":
                assert _decodes(image), (shard, key)
                assert members[f"{key}.txt"].decode("utf-8").strip()
                assert json.loads(members[f"{key}.json"])["key"] == key
    for member in tarfile.open(root / "raw/caption/wds-00000.tar"):
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (0, 0, 0, "", "")


def test_dj_jsonl_escapes_and_broken_lines(demo):
    root, manifest = demo
    shard = root / "raw/caption/dj-00000.jsonl"
    defects = manifest["caption/dj-00000.jsonl"]["defects"]
    lines = shard.read_bytes().splitlines()
    assert len(lines) == manifest["caption/dj-00000.jsonl"]["rows"]
    escaping = []
    for key in defects["path_escape"]:
        (ref,) = json.loads(lines[int(key)])["images"]
        target = Path(os.path.realpath(shard.parent / ref))
        escaping.append(target.is_relative_to(root / "raw"))
    assert escaping == [False] * 3
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[int(defects["malformed_json"][0])])
    with pytest.raises(UnicodeDecodeError):
        lines[int(defects["non_utf8_text"][0])].decode("utf-8")


def test_cli_refuses_to_overwrite_without_force(tmp_path, capsys):
    root = str(tmp_path)
    assert main(["--root", root]) == 0
    stale = tmp_path / "raw/caption/stale.txt"
    stale.write_text("left over")
    assert main(["--root", root]) != 0
    assert "--force" in capsys.readouterr().err
    assert stale.exists()
    assert main(["--root", root, "--force"]) == 0
    assert not stale.exists()
    assert (tmp_path / "raw/caption/wds-00000.tar").is_file()


def test_interleaved_documents_match_the_manifest(demo):
    root, manifest = demo
    mmc4 = root / "raw/interleaved/mmc4-00000.jsonl"
    defects = manifest["interleaved/mmc4-00000.jsonl"]["defects"]
    lines = mmc4.read_bytes().splitlines()
    assert len(lines) == manifest["interleaved/mmc4-00000.jsonl"]["rows"]
    images_dir = mmc4.parent / "mmc4-00000_images"
    for index, line in enumerate(lines):
        key = f"{index:06d}"
        if key in defects.get("malformed_json", []):
            with pytest.raises(json.JSONDecodeError):
                json.loads(line)
            continue
        doc = json.loads(line)
        assert 3 <= len(doc["text_list"]) <= 8 and 2 <= len(doc["image_info"]) <= 4
        files = [images_dir / info["image_name"] for info in doc["image_info"]]
        if key in defects.get("missing_file", []):
            assert sum(not f.exists() for f in files) == 1
        elif key in defects.get("truncated_image", []):
            assert sum(not _decodes(f.read_bytes()) for f in files) == 1
        else:
            assert all(_decodes(f.read_bytes()) for f in files), key

    table = pq.read_table(root / "raw/interleaved/obelics-00000.parquet").to_pylist()
    (corrupt,) = manifest["interleaved/obelics-00000.parquet"]["defects"]["undecodable_image"]
    for index, row in enumerate(table):
        assert len(row["texts"]) == len(row["images"])
        assert all((text is None) != (image is None) for text, image in zip(row["texts"], row["images"]))
        decodable = [_decodes(image) for image in row["images"] if image is not None]
        assert all(decodable) == (f"{index:06d}" != corrupt)


def test_every_new_rule_has_its_planted_defect_in_the_right_branch(demo):
    _, manifest = demo
    planted = {
        kind: {d for name, entry in manifest.items() if name.startswith(f"{kind}/") for d in entry["defects"]}
        for kind in ("interleaved", "text")
    }
    assert set(INTERLEAVED_DEFECTS) <= planted["interleaved"]
    assert set(TEXT_DEFECTS) | {"exact_duplicate", "near_duplicate"} <= planted["text"]


def test_planted_interleaved_documents_carry_their_defect_in_the_bytes(demo):
    root, manifest = demo
    mmc4 = root / "raw/interleaved/mmc4-00000.jsonl"
    defects = {d: keys[0] for d, keys in manifest["interleaved/mmc4-00000.jsonl"]["defects"].items()}
    lines = mmc4.read_bytes().splitlines()
    malformed = set(manifest["interleaved/mmc4-00000.jsonl"]["defects"]["malformed_json"])
    by_key = {f"{i:06d}": json.loads(line) for i, line in enumerate(lines) if f"{i:06d}" not in malformed}
    unrelated = by_key[defects["unrelated_images"]]
    assert max(max(row) for row in unrelated["similarity_matrix"]) < 0.15  # MMC4's bar
    assert not any(s.startswith("Pictured:") for s in unrelated["text_list"])
    images_dir = mmc4.parent / "mmc4-00000_images"
    broken = by_key[defects["all_images_broken"]]
    sizes = [Image.open(images_dir / info["image_name"]).size for info in broken["image_info"]]
    assert sizes == [(1, 1)] * len(sizes)
    first = by_key["000000"]["image_info"][0]["image_name"]
    copy = by_key[defects["cross_document_duplicate_image"]]["image_info"]
    assert (images_dir / first).read_bytes() in [(images_dir / info["image_name"]).read_bytes() for info in copy]

    obelics = pq.read_table(root / "raw/interleaved/obelics-00000.parquet").to_pylist()
    defects = {d: int(keys[0]) for d, keys in manifest["interleaved/obelics-00000.parquet"]["defects"].items()}
    caption_images = set(_tar_members(root / "raw/caption/wds-00000.tar").values())
    assert set(obelics[defects["caption_duplicate_image"]]["images"]) & caption_images  # across kinds
    assert len(set(obelics[defects["repetitive_spam"]]["texts"]) - {None}) == 1


def test_demo_summary_reports_each_branch(demo):
    _, manifest = demo
    lines = branch_summary(manifest)
    assert [line.split(":")[0] for line in lines] == ["caption", "interleaved", "text"]
    assert "unrelated_images=1" in lines[1] and "non_english=2" in lines[2]
