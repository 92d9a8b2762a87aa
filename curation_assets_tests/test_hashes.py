"""Perceptual hashes and caption MinHash signatures on synthetic images and tiny captions."""

import io
import itertools
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from datasketch import MinHash, MinHashLSH
from PIL import Image

from curation_assets.scoring.hashes import (
    MINHASH_SCHEME,
    MinhashParams,
    hamming,
    lean_minhashes,
    minhash_jaccard,
    phash_hex,
    phash_of_bytes,
    text_minhash,
    text_shingles,
)
from curation_assets.selection.dedup import near_text_pairs
from curation_assets_tests.helpers import require_shared


def textured_image(seed: int, width: int = 320, height: int = 240) -> Image.Image:
    """Smooth waves over a grid of random colour blocks: structure at several scales, like a photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / 40.0
    waves = np.zeros((height, width, 3))
    for channel in range(3):
        for _ in range(5):
            fx, fy, phase = rng.uniform(0.2, 3, 3)
            waves[..., channel] += np.sin(fx * x + fy * y + phase * 6)
    blocks = rng.random((height // 40 + 1, width // 40 + 1, 3)).repeat(40, 0).repeat(40, 1)[:height, :width]
    pixels = (waves - waves.min()) / np.ptp(waves) * 0.6 + blocks * 0.4
    return Image.fromarray((pixels * 255).astype(np.uint8))


def encode(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def original() -> Image.Image:
    return textured_image(seed=1)


def test_phash_is_16_hex_characters(original):
    digest = phash_hex(original)
    assert len(digest) == 16
    int(digest, 16)


def test_hamming():
    assert hamming("0000000000000000", "0000000000000000") == 0
    assert hamming("0000000000000000", "000000000000000f") == 4
    assert hamming("ffffffffffffffff", "0000000000000000") == 64
    with pytest.raises(ValueError):
        hamming("00", "000")


def test_reencoded_and_resized_copies_keep_their_phash(original):
    reference = phash_of_bytes(encode(original, "JPEG", quality=95))
    low_quality = phash_of_bytes(encode(original, "JPEG", quality=60))
    smaller = phash_of_bytes(encode(original.resize((256, 192), Image.LANCZOS), "JPEG", quality=90))
    lossless = phash_of_bytes(encode(original, "PNG"))
    assert hamming(reference, low_quality) <= 2
    assert hamming(reference, smaller) <= 2
    # PNG decodes at full size, JPEG at a reduced DCT scale: still the same image
    assert hamming(reference, lossless) <= 2


def test_unrelated_image_is_far(original):
    other = textured_image(seed=2)
    assert hamming(phash_of_bytes(encode(original, "JPEG")), phash_of_bytes(encode(other, "JPEG"))) > 10


def test_exif_orientation_is_applied(original):
    # Stored sideways with an EXIF tag saying "rotate 90 degrees clockwise to display".
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = encode(original.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95, exif=exif)
    upright = encode(original, "JPEG", quality=95)
    assert hamming(phash_of_bytes(sideways), phash_of_bytes(upright)) <= 2


def test_phash_of_non_rgb_modes(original):
    for mode in ("L", "RGBA", "P"):
        assert len(phash_of_bytes(encode(original.convert(mode), "PNG"))) == 16


NEAR_A = "a brown dog with a red collar runs along the sandy beach at sunset next to the calm blue sea"
NEAR_B = "a brown dog with a red collar walks along the sandy beach at sunset next to the calm blue sea"
UNRELATED = "portrait of a young woman reading a book in a quiet library"


def test_shingles_ignore_case_and_punctuation():
    assert text_shingles("A Dog, running!") == text_shingles("a dog running")
    assert text_shingles("cat") == {b"cat"}
    assert text_shingles("  ...  ") == set()


def test_captions_one_word_apart_are_close_and_unrelated_ones_far():
    near_a, near_b, unrelated = text_minhash([NEAR_A, NEAR_B, UNRELATED])
    assert minhash_jaccard(near_a, near_b) > 0.7
    assert minhash_jaccard(near_a, unrelated) < 0.2
    assert minhash_jaccard(near_a, near_a) == 1.0


def test_estimate_tracks_the_exact_jaccard():
    a, b = text_shingles(NEAR_A), text_shingles(NEAR_B)
    exact = len(a & b) / len(a | b)
    signatures = text_minhash([NEAR_A, NEAR_B], MinhashParams(num_perm=256))
    assert minhash_jaccard(*signatures) == pytest.approx(exact, abs=0.1)


def test_one_parameter_object_drives_signing_and_lsh():
    """Signatures of other parameters are refused by the LSH, naming what to re-sign."""
    signatures = text_minhash([NEAR_A, NEAR_B], MinhashParams(num_perm=64))
    with pytest.raises(ValueError, match="re-sign"):
        near_text_pairs(signatures, 0.7)  # default parameters: 128 permutations
    assert near_text_pairs(signatures, 0.5, MinhashParams(num_perm=64))[0].tolist() == [0]


def test_signatures_are_deterministic_and_shaped():
    first = text_minhash([NEAR_A, UNRELATED], MinhashParams(num_perm=64))
    second = text_minhash([UNRELATED, NEAR_A], MinhashParams(num_perm=64))
    assert first.shape == (2, 64)
    assert first.dtype == np.uint32
    np.testing.assert_array_equal(first[0], second[1])
    assert not np.array_equal(text_minhash([NEAR_A], MinhashParams(seed=2))[0], text_minhash([NEAR_A])[0])


def test_signatures_equal_plain_datasketch_minhash():
    """The hash cache is only a speed-up: results are what MinHash computes by itself."""
    texts = [NEAR_A, UNRELATED, "x"]
    expected = [
        MinHash.bulk([sorted(text_shingles(text))], num_perm=32, seed=1, scheme=MINHASH_SCHEME)[0].hashvalues
        for text in texts
    ]
    np.testing.assert_array_equal(text_minhash(texts, MinhashParams(num_perm=32)), np.stack(expected))


def test_empty_captions_match_only_each_other():
    empty, also_empty, word = text_minhash(["", "!!", "dog"], MinhashParams(num_perm=32))
    assert minhash_jaccard(empty, also_empty) == 1.0
    assert minhash_jaccard(empty, word) == 0.0


def test_empty_input():
    assert text_minhash([], MinhashParams(num_perm=16)).shape == (0, 16)


@pytest.mark.parametrize("dtype", [pl.UInt64, pl.UInt32])
def test_signatures_round_trip_through_a_polars_array_column(tmp_path, dtype):
    signatures = text_minhash([NEAR_A, NEAR_B, ""], MinhashParams(num_perm=128))
    frame = pl.DataFrame({"caption_minhash": pl.Series(signatures, dtype=pl.Array(dtype, 128))})
    frame.write_parquet(tmp_path / "hashes.parquet")
    back = pl.read_parquet(tmp_path / "hashes.parquet")["caption_minhash"].to_numpy()
    assert back.shape == (3, 128)
    np.testing.assert_array_equal(back, signatures)
    assert minhash_jaccard(back[0], back[1]) == minhash_jaccard(signatures[0], signatures[1])


def test_stored_signatures_feed_a_datasketch_lsh_index():
    signatures = text_minhash([NEAR_A, UNRELATED, NEAR_B])
    index = MinHashLSH(threshold=0.5, num_perm=128)
    near_a, unrelated, near_b = lean_minhashes(signatures)
    index.insert("near_a", near_a)
    index.insert("unrelated", unrelated)
    assert index.query(near_b) == ["near_a"]


def test_jaccard_rejects_mismatched_signatures():
    with pytest.raises(ValueError):
        minhash_jaccard(np.zeros(8, np.uint32), np.zeros(16, np.uint32))


def coco_pairs() -> tuple[Path, list[dict]]:
    folder = require_shared("coco-cc")
    return folder, [json.loads(line) for line in (folder / "pairs.jsonl").read_text().splitlines()]


def test_real_photos_keep_their_phash_when_copied_and_differ_from_each_other():
    folder, pairs = coco_pairs()
    hashes = []
    for pair in pairs:
        data = (folder / pair["image"]).read_bytes()
        hashes.append(phash_of_bytes(data))
        with Image.open(io.BytesIO(data)) as image:
            copy = image.convert("RGB").resize((image.width * 4 // 5, image.height * 4 // 5), Image.LANCZOS)
        assert hamming(hashes[-1], phash_of_bytes(encode(copy, "JPEG", quality=60))) <= 4, pair["image"]
    # When written: copies were 0-2 bits away, the closest two different photos 18.
    assert min(hamming(a, b) for a, b in itertools.combinations(hashes, 2)) > 10


def test_real_captions_of_different_images_are_mostly_far():
    _, pairs = coco_pairs()
    captions = [caption for pair in pairs for caption in pair["captions"]]
    image_of = [index for index, pair in enumerate(pairs) for _ in pair["captions"]]
    signatures = text_minhash(captions)
    across = [
        minhash_jaccard(signatures[i], signatures[j])
        for i, j in itertools.combinations(range(len(captions)), 2)
        if image_of[i] != image_of[j]
    ]
    # When written: 99th percentile 0.13; the few above 0.4 are true near-duplicates such as
    # "a couple of pizzas are (sat out) on a table".
    assert np.quantile(across, 0.99) < 0.2
