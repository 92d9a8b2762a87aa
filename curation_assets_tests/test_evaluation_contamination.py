"""Contamination: training pairs duplicating an eval image (bytes or pHash) or caption are removed and counted."""

import io

import numpy as np
from PIL import Image, ImageDraw

from curation_assets.evaluation.contamination import normalize_caption, remove_contaminated
from curation_assets.evaluation.pairs import PairSet
from curation_assets.evaluation.settings import Contamination
from curation_assets.scoring.hashes import hamming, phash_of_bytes


def _picture(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (160, 120), tuple(int(v) for v in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = (int(v) for v in rng.integers(0, 140, 2))
        draw.ellipse([x, y, x + 30, y + 25], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return image


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _pairs(name, rows):
    """rows: (sha, phash, caption)"""
    n = len(rows)
    return PairSet(
        name,
        [f"{name}-{i}" for i in range(n)],
        [r[2] for r in rows],
        [r[0] for r in rows],
        [r[1] for r in rows],
        np.zeros((n, 4), dtype=np.float16),
        np.zeros((n, 3), dtype=np.float16),
    )


def test_caption_normalisation_ignores_case_punctuation_and_spacing():
    assert normalize_caption("A dog, on the  BEACH!") == normalize_caption("a dog on the beach")
    assert normalize_caption("a dog on a beach") != normalize_caption("a dog on the beach")


def test_eval_duplicates_are_removed_and_counted_per_test():
    eval_picture = _picture(1)
    # A slightly cropped, re-encoded copy: other bytes, a pHash a few bits away.
    original, cropped = _jpeg(eval_picture, 95), _jpeg(eval_picture.crop((2, 0, 160, 120)), 70)
    near = phash_of_bytes(cropped)
    assert 0 < hamming(near, phash_of_bytes(original)) <= 4
    unrelated = [phash_of_bytes(_jpeg(_picture(seed), 90)) for seed in (2, 3, 4)]
    assert min(hamming(u, phash_of_bytes(original)) for u in unrelated) > 10

    eval_set = _pairs("eval", [("sha-eval", phash_of_bytes(original), "Two dogs play on the beach.")])
    train = _pairs(
        "train",
        [
            ("sha-eval", phash_of_bytes(original), "the same photo, another caption"),  # exact bytes (and pHash)
            ("sha-cropped", near, "a cropped copy of the eval photo"),  # pHash only
            ("sha-a", unrelated[0], "two dogs play on the BEACH"),  # caption only
            ("sha-b", unrelated[1], "a cat sleeps on a sofa"),  # clean
            ("sha-c", unrelated[2], "a red bus in the street"),  # clean
            (None, None, "no image hash at all"),  # clean, and missing hashes match nothing
        ],
    )
    kept, counts = remove_contaminated(train, [eval_set], Contamination(phash_max_distance=4))
    assert counts.as_dict() == {
        "pairs_in": 6,
        "by_image_sha256": 1,
        "by_image_phash": 2,
        "by_caption": 1,
        "removed": 3,
        "kept": 3,
    }
    assert kept.sample_ids == ["train-3", "train-4", "train-5"]

    # Each test can be switched off on its own.
    _, no_phash = remove_contaminated(train, [eval_set], Contamination(phash_max_distance=None))
    assert (no_phash.by_image_phash, no_phash.removed) == (0, 2)
    _, no_caption = remove_contaminated(train, [eval_set], Contamination(caption=False))
    assert (no_caption.by_caption, no_caption.removed) == (0, 2)
    _, nothing = remove_contaminated(
        train, [eval_set], Contamination(exact_image=False, phash_max_distance=None, caption=False)
    )
    assert nothing.removed == 0


def test_every_training_copy_of_a_near_duplicate_value_is_caught():
    # Three training rows share one pHash value that is near (not equal to) the eval image's: the
    # dedup helper links repeats only to the first of them, contamination must still flag all three.
    eval_hash = "f0f0f0f0f0f0f0f0"
    near_hash = "f0f0f0f0f0f0f0f3"  # 2 bits away
    eval_set = _pairs("eval", [("e", eval_hash, "eval caption")])
    train = _pairs("train", [(f"t{i}", near_hash, f"caption {i}") for i in range(3)] + [("x", "0f0f0f0f0f0f0f0f", "x")])
    kept, counts = remove_contaminated(train, [eval_set], Contamination(phash_max_distance=2))
    assert counts.by_image_phash == 3 and kept.sample_ids == ["train-3"]
    _, tighter = remove_contaminated(train, [eval_set], Contamination(phash_max_distance=1))
    assert tighter.by_image_phash == 0
