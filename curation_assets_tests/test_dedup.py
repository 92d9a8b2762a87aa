import io
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from datasketch import MinHashLSH
from PIL import Image

from curation_assets.scoring.hashes import lean_minhashes, phash_of_bytes, text_minhash
from curation_assets.selection.dedup import (
    band_plan,
    duplicate_groups,
    exact_duplicate_pairs,
    near_image_pairs,
    near_text_pairs,
    normalized_pairs,
    semantic_duplicate_pairs,
)
from curation_assets_tests.helpers import require_shared


def as_set(pairs) -> set[tuple[int, int]]:
    return set(zip(pairs[0].tolist(), pairs[1].tolist()))


def flip_bits(hex_hash: str, bits: list[int]) -> str:
    value = int(hex_hash, 16)
    for bit in bits:
        value ^= 1 << bit
    return f"{value:016x}"


def random_phashes(n: int, seed: int) -> list[str]:
    return [f"{v:016x}" for v in np.random.default_rng(seed).integers(0, 2**63, size=n, dtype=np.uint64) * 2 + 1]


def ids(n: int) -> list[str]:
    return [f"s{k:05d}" for k in range(n)]


def test_exact_duplicates_by_image_bytes():
    frame = pl.DataFrame({"sample_id": ids(5), "image_sha256": ["a", "b", "a", None, None]})
    assert as_set(exact_duplicate_pairs(frame)) == {(0, 2)}


@pytest.mark.parametrize("max_distance", [0, 2, 4, 6, 8])
def test_phash_neighbours_within_max_distance_found_and_one_more_not(max_distance):
    hashes = random_phashes(500, seed=max_distance)
    rng = np.random.default_rng(1)
    near = flip_bits(hashes[0], rng.choice(64, max_distance, replace=False).tolist())
    too_far = flip_bits(hashes[1], rng.choice(64, max_distance + 1, replace=False).tolist())
    pairs = as_set(near_image_pairs([*hashes, near, too_far], max_distance))
    assert (0, 500) in pairs
    assert (1, 501) not in pairs


def test_phash_matches_brute_force_on_clustered_hashes():
    """Many hashes a few bits apart, so every band sees crowded buckets and large radii."""
    rng = np.random.default_rng(3)
    base = rng.integers(0, 2**63, size=20, dtype=np.uint64)
    values = base[rng.integers(0, 20, size=600)] ^ (np.uint64(1) << rng.integers(0, 64, size=600).astype(np.uint64))
    values ^= np.uint64(1) << rng.integers(0, 64, size=600).astype(np.uint64)
    values = rng.permutation(np.unique(values))  # identical hashes are linked as a star, tested apart
    hashes = [f"{v:016x}" for v in values.tolist()]
    distances = np.bitwise_count(values[:, None] ^ values[None, :])
    expected = {(i, j) for i, j in zip(*np.nonzero(distances <= 5)) if i < j}
    assert len(expected) > 1_000
    assert as_set(near_image_pairs(hashes, 5)) == expected


def test_crowded_band_buckets_joined_in_small_batches_lose_nothing(monkeypatch):
    """2,048 distinct hashes that differ only in their low 11 bits: every row shares most bands
    with every other. Batches forced tiny, so one bucket spans many joins."""
    monkeypatch.setattr("curation_assets.selection.dedup._CANDIDATES_PER_BATCH", 5_000)
    values = np.uint64(0xABCD_EF01_2345_0000) | np.arange(2_048, dtype=np.uint64)
    distances = np.bitwise_count(values[:, None] ^ values[None, :])
    expected = np.count_nonzero(np.triu(distances <= 3, k=1))
    pairs = near_image_pairs([f"{v:016x}" for v in values.tolist()], 3)
    assert len(pairs[0]) == expected
    assert np.all(np.bitwise_count(values[pairs[0]] ^ values[pairs[1]]) <= 3)


def test_band_plan_covers_all_bits_and_obeys_pigeonhole():
    for n in (100, 100_000, 1_000_000):
        for distance in range(0, 11):
            plan = band_plan(n, distance)
            assert sum(width for _, width, _ in plan) == 64
            assert sum(radius + 1 for _, _, radius in plan) == distance + 1
            assert all(width <= 22 for _, width, _ in plan)


def test_missing_phashes_match_nothing():
    assert as_set(near_image_pairs([None, "00000000000000ff", None, "00000000000000ff"], 4)) == {(1, 3)}


def test_giant_bucket_of_identical_hashes_forms_one_group():
    blank = "8000000000000000"
    hashes = [blank] * 2_000 + random_phashes(300, seed=5)
    pairs = near_image_pairs(hashes, 6)
    assert len(pairs[0]) < 2 * 2_000  # linked as a star, not all 2 million pairs
    groups = duplicate_groups(len(hashes), {"phash": pairs}, None, ids(len(hashes)))
    assert groups["group_id"].n_unique() == 1
    assert groups.height == 2_000
    assert groups.filter(pl.col("representative"))["sample_id"].to_list() == ["s00000"]


def test_minhash_caption_near_duplicates_found_and_unrelated_not():
    captions = [
        "A brown dog runs across a grassy field chasing a red ball.",
        "A brown dog runs across the grassy field chasing a red ball!",
        "Two people ride bicycles along a busy city street at night.",
        "A bowl of fresh fruit sits on a wooden kitchen table.",
        "",
        "",
    ]
    pairs = as_set(near_text_pairs(text_minhash(captions), 0.7))
    assert pairs == {(0, 1), (4, 5)}


def test_minhash_banding_finds_what_datasketch_lsh_finds():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**32, size=(40, 128), dtype=np.uint32)
    signatures = base[rng.integers(0, 40, size=400)].copy()
    changed = rng.random(signatures.shape) < rng.uniform(0.0, 0.5, size=(400, 1))
    changed[:, 0] = True  # no two rows identical: those are linked as a star, not pairwise
    signatures[changed] = rng.integers(0, 2**32, size=int(changed.sum()), dtype=np.uint32)
    threshold = 0.7
    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    minhashes = lean_minhashes(signatures)
    for row, minhash in enumerate(minhashes):
        lsh.insert(row, minhash)
    expected = {
        (min(row, other), max(row, other))
        for row, minhash in enumerate(minhashes)
        for other in lsh.query(minhash)
        if other != row and np.mean(signatures[row] == signatures[other]) >= threshold
    }
    assert expected  # the example has near duplicates to find
    assert as_set(near_text_pairs(signatures, threshold)) == expected


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float16)


def test_semantic_noisy_copies_grouped_and_orthogonal_not():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((200, 64))
    original = base[0]
    copies = original + 0.02 * rng.standard_normal((2, 64)) * np.linalg.norm(original) / 8
    orthogonal = rng.standard_normal(64)
    orthogonal -= orthogonal @ original / (original @ original) * original
    embeddings = unit(np.vstack([base, copies, orthogonal]))
    pairs = as_set(semantic_duplicate_pairs(embeddings, epsilon=0.05, num_clusters=4))
    assert {(0, 200), (0, 201), (200, 201)} <= pairs
    assert not any(202 in pair for pair in pairs)
    assert all(i in (0, 200) for i, _ in pairs)  # random 64-d vectors are far apart


def test_semantic_identical_float16_rows_are_duplicates_at_epsilon_zero():
    embeddings = unit(np.random.default_rng(1).standard_normal((50, 32)))
    embeddings = np.vstack([embeddings, embeddings[7]])
    assert as_set(semantic_duplicate_pairs(embeddings, epsilon=0.0, num_clusters=3)) == {(7, 50)}


def test_representative_has_highest_clip_score_then_smallest_id():
    pairs = {"exact": normalized_pairs(np.array([0, 1]), np.array([1, 2]))}
    groups = duplicate_groups(4, pairs, np.array([0.2, 0.9, 0.5, 1.0], dtype=np.float32), ["c", "b", "a", "d"])
    assert groups.to_dicts() == [
        {"sample_id": "b", "group_id": "b", "representative": True, "method": "exact", "duplicate_of": None},
        {"sample_id": "a", "group_id": "b", "representative": False, "method": "exact", "duplicate_of": "b"},
        {"sample_id": "c", "group_id": "b", "representative": False, "method": "exact", "duplicate_of": "b"},
    ]
    tied = duplicate_groups(3, pairs, np.array([0.5, 0.5, np.nan]), ["c", "b", "a"])
    assert tied.filter(pl.col("representative"))["sample_id"].to_list() == ["b"]
    unscored = duplicate_groups(3, pairs, None, ["c", "b", "a"])
    assert unscored.filter(pl.col("representative"))["sample_id"].to_list() == ["a"]


def test_chains_across_methods_collapse_into_one_group_with_their_methods():
    pairs = {
        "exact": normalized_pairs(np.array([0]), np.array([1])),
        "phash": normalized_pairs(np.array([1]), np.array([2])),
        "semantic": normalized_pairs(np.array([2, 5]), np.array([3, 6])),
    }
    groups = duplicate_groups(8, pairs, None, ids(8))
    assert groups.group_by("group_id").len().sort("group_id").rows() == [("s00000", 4), ("s00005", 2)]
    methods = dict(zip(groups["sample_id"], groups["method"]))
    assert methods == {
        "s00000": "exact",
        "s00001": "exact,phash",
        "s00002": "phash,semantic",
        "s00003": "semantic",
        "s00005": "semantic",
        "s00006": "semantic",
    }


def test_no_pairs_no_groups():
    groups = duplicate_groups(
        3, {"exact": normalized_pairs(np.array([], dtype=np.int64), np.array([], dtype=np.int64))}, None, ids(3)
    )
    assert groups.height == 0
    assert groups.schema == pl.Schema(
        {
            "sample_id": pl.String,
            "group_id": pl.String,
            "representative": pl.Boolean,
            "method": pl.String,
            "duplicate_of": pl.String,
        }
    )


def test_deterministic():
    rng = np.random.default_rng(7)
    embeddings = unit(rng.standard_normal((400, 32)))
    embeddings = np.vstack(
        [embeddings, unit(embeddings[:40].astype(np.float64) + 0.01 * rng.standard_normal((40, 32)))]
    )
    hashes = random_phashes(220, seed=2) * 2  # every hash twice
    runs = []
    for _ in range(2):
        pairs = {
            "phash": near_image_pairs(hashes, 6),
            "semantic": semantic_duplicate_pairs(embeddings, 0.02, num_clusters=8, seed=0),
        }
        runs.append(duplicate_groups(len(embeddings), pairs, np.linspace(0, 1, len(embeddings)), ids(len(embeddings))))
    assert runs[0].equals(runs[1])
    assert runs[0].height > 0


# --- real photos ---------------------------------------------------------------------------------

# JPEG quality 50 and a 0.7x resize move a COCO photo's pHash by at most 2 bits (measured on all 76),
# while the closest two different photos are 18 bits apart: 6 leaves a wide margin on both sides.
REAL_MAX_DISTANCE = 6


def reencoded(data: bytes) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(out, "JPEG", quality=50)
    return out.getvalue()


def resized(data: bytes) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    out = io.BytesIO()
    image.resize((round(image.width * 0.7), round(image.height * 0.7)), Image.LANCZOS).save(out, "JPEG", quality=90)
    return out.getvalue()


def test_real_photos_copies_grouped_with_originals_and_originals_apart(tmp_path: Path):
    photos = sorted((require_shared("coco-cc") / "images").glob("*.jpg"))
    assert len(photos) >= 50
    originals = [phash_of_bytes(path.read_bytes()) for path in photos]
    assert near_image_pairs(originals, REAL_MAX_DISTANCE)[0].size == 0  # no groups among originals

    copied = photos[::7][:10]
    copies, copy_of = [], []
    for path in copied:
        for transform in (reencoded, resized):
            copy_path = tmp_path / f"{path.stem}-{transform.__name__}.jpg"
            copy_path.write_bytes(transform(path.read_bytes()))
            copies.append(phash_of_bytes(copy_path.read_bytes()))
            copy_of.append(photos.index(path))

    hashes = originals + copies
    sample_ids = [path.stem for path in photos] + [f"copy{k:02d}" for k in range(len(copies))]
    groups = duplicate_groups(len(hashes), {"phash": near_image_pairs(hashes, REAL_MAX_DISTANCE)}, None, sample_ids)
    group_of = dict(zip(groups["sample_id"], groups["group_id"]))
    for k, original in enumerate(copy_of):
        assert group_of[f"copy{k:02d}"] == group_of[photos[original].stem]
    assert groups.height == 3 * len(copied)  # each original and its two copies, nothing else
    assert groups["group_id"].n_unique() == len(copied)
