"""Hashes for near-duplicate detection: perceptual hashes of images, MinHash signatures of captions.

Both are stored per sample and compared later (dedup across all shards), so they must be stable:
same input, same library version -> same hash, in any process.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import imagehash
import numpy as np
from datasketch import LeanMinHash, MinHash
from datasketch.hashfunc import sha1_hash32
from PIL import Image, ImageOps

from curation_assets.image_checks import open_image

# pHash reads a 32x32 greyscale thumbnail. Decoding JPEGs at a reduced DCT scale that still covers
# this size is several times cheaper than a full decode; 64 px keeps the final resize a true
# downscale, so the hash matches a full-size decode's within a bit or two.
_PHASH_DECODE_SIDE = 64

# datasketch >= 2 defaults to the affine32 scheme but refuses to guess it when rebuilding from stored
# values; naming it keeps stored signatures readable and comparable across datasketch defaults.
MINHASH_SCHEME = "affine32"


@dataclass(frozen=True)
class MinhashParams:
    """Everything that makes two MinHash signatures comparable. Signing and LSH both take this one
    object, so they cannot disagree (a changed value re-signs every text: see produced_by)."""

    num_perm: int = 128
    ngram: int = 5  # character n-grams (see text_shingles)
    seed: int = 1
    scheme: str = MINHASH_SCHEME

    @property
    def produced_by(self) -> str:
        return f"datasketch.MinHash(num_perm={self.num_perm}, ngram={self.ngram}, seed={self.seed}, {self.scheme})"


MINHASH = MinhashParams()
_NON_WORD = re.compile(r"[\W_]+")


def phash_hex(image: Image.Image) -> str:
    """64-bit DCT perceptual hash (imagehash.phash) as 16 hex characters."""
    return str(imagehash.phash(image))


def phash_of_bytes(data: bytes) -> str:
    """pHash of encoded image bytes, decoded only as large as the hash needs.

    EXIF orientation is applied first, so a rotated-by-tag copy hashes like its re-encoded original.
    Raises PIL's errors for bytes that are not an image (ingest has quarantined those already).
    """
    with open_image(data) as image:  # only the allow-listed decoders (image_checks.ALLOWED_IMAGE_FORMATS)
        if image.format == "JPEG":
            image.draft("L", (_PHASH_DECODE_SIDE, _PHASH_DECODE_SIDE))
        upright = ImageOps.exif_transpose(image)
        return phash_hex(upright.convert("L"))


def hamming(a_hex: str, b_hex: str) -> int:
    """Number of differing bits between two hex hashes of the same length."""
    if len(a_hex) != len(b_hex):
        raise ValueError(f"hashes differ in length: {a_hex!r} vs {b_hex!r}")
    return (int(a_hex, 16) ^ int(b_hex, 16)).bit_count()


def text_shingles(text: str, ngram: int = MINHASH.ngram) -> set[bytes]:
    """Character n-grams of the caption, lowercased, with punctuation removed and spaces collapsed.

    Why characters and not words: captions are short (5-20 words), so word n-grams are few, and one
    changed word removes n of them (a 10-word caption with one word changed keeps about half its
    word 3-grams), while word unigrams make unrelated captions look alike through "a", "the", "of".
    Character 5-grams span word boundaries, so they keep word order, and one changed word touches
    only the n-grams that overlap it: one-word edits of a typical caption keep a Jaccard of about
    0.6-0.8, unrelated captions stay under about 0.15. A text shorter than n is one shingle, and
    an empty text has none.
    """
    normalized = _NON_WORD.sub(" ", text.lower()).strip()
    if len(normalized) <= ngram:
        return {normalized.encode()} if normalized else set()
    return {normalized[i : i + ngram].encode() for i in range(len(normalized) - ngram + 1)}


def text_minhash(texts: list[str], params: MinhashParams = MINHASH) -> np.ndarray:
    """MinHash signatures of the texts' character n-gram sets (see text_shingles), shape
    (len(texts), params.num_perm), dtype uint32 (datasketch's affine32 values).

    Stores as a polars Array(UInt32, num_perm) column, or losslessly as Array(UInt64, num_perm).
    An empty text gets datasketch's empty signature (every value 2**32 - 1): it matches only other
    empty texts.
    """
    shingle_sets = [text_shingles(text, params.ngram) for text in texts]
    # Texts share many n-grams (" the ", "of a "): hash each distinct one once, with datasketch's
    # default hash function (stable across processes, unlike Python's salted hash()).
    hashes = {shingle: sha1_hash32(shingle) for shingle in set().union(*shingle_sets)}
    signatures = np.empty((len(texts), params.num_perm), dtype=np.uint32)
    minhashes = MinHash.generator(
        shingle_sets, num_perm=params.num_perm, seed=params.seed, scheme=params.scheme, hashfunc=hashes.__getitem__
    )
    for row, minhash in enumerate(minhashes):
        signatures[row] = minhash.hashvalues
    return signatures


def minhash_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Estimated Jaccard similarity: the share of permutations whose minimum agrees."""
    sig_a, sig_b = np.asarray(sig_a), np.asarray(sig_b)
    if sig_a.shape != sig_b.shape or sig_a.ndim != 1:
        raise ValueError(f"need two signatures of the same length, got shapes {sig_a.shape} and {sig_b.shape}")
    return float(np.count_nonzero(sig_a == sig_b)) / sig_a.size


def lean_minhashes(signatures: Iterable[np.ndarray], params: MinhashParams = MINHASH) -> list[LeanMinHash]:
    """Stored signatures back as datasketch objects, e.g. to insert into a MinHashLSH index."""
    return [LeanMinHash(seed=params.seed, hashvalues=signature, scheme=params.scheme) for signature in signatures]
