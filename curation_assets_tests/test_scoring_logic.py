"""Scorers on tiny inputs whose answers are known in advance."""

import hashlib
import io
import tarfile

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from curation_assets.demo import images
from curation_assets.demo.writers import CaptionSample, write_webdataset_tar
from curation_assets.image_source import iter_image_bytes
from curation_assets.models.clip import load_clip
from curation_assets.normalize import normalize_shard
from curation_assets.recipe import PACKAGED_RECIPES, load_recipe
from curation_assets.scoring.embedding_scores import clip_similarity
from curation_assets.scoring.image_batches import image_batches, open_rgb
from curation_assets.scoring.image_models import BatchSettings, clip_embeddings
from curation_assets_tests.helpers import shard_file

# --- clip_similarity ----------------------------------------------------------------------------


def embeddings_frame(images_: np.ndarray, texts: np.ndarray) -> pl.DataFrame:
    frame = pl.DataFrame(
        [
            pl.Series("sample_id", [f"s{i}" for i in range(len(images_))]),
            pl.Series("image_embedding", images_.astype(np.float16)),
            pl.Series("text_embedding", texts.astype(np.float16)),
        ]
    )
    assert frame.schema["image_embedding"] == pl.Array(pl.Float16, images_.shape[1])
    return frame


def test_clip_similarity_is_the_cosine_of_each_pair():
    rng = np.random.default_rng(0)
    d = 16
    base = rng.normal(size=d)
    base /= np.linalg.norm(base)
    other = rng.normal(size=d)
    other -= (other @ base) * base  # orthogonal to base
    other /= np.linalg.norm(other)
    diagonal = (base + other) / np.sqrt(2)  # 45 degrees from base
    image_rows = np.stack([base, base, base, 3.0 * base, base])
    text_rows = np.stack([base, other, -base, base, diagonal])

    similarity = clip_similarity(embeddings_frame(image_rows, text_rows))

    assert similarity.dtype == np.float32
    assert similarity.shape == (5,)
    # identical, orthogonal, opposite, same direction at another norm (renormalised), 45 degrees
    np.testing.assert_allclose(similarity, [1.0, 0.0, -1.0, 1.0, np.sqrt(0.5)], atol=2e-3)


def test_clip_similarity_of_a_zero_vector_is_zero_not_nan():
    frame = embeddings_frame(np.zeros((1, 4)), np.array([[1.0, 0, 0, 0]]))
    assert clip_similarity(frame).tolist() == [0.0]


# --- iter_image_bytes ---------------------------------------------------------------------------


def direct_bytes(shard, ref: str) -> bytes:
    """The referenced bytes read the obvious way, one reference at a time (the oracle)."""
    scheme, _, rest = ref.partition(":")
    if scheme == "tar":
        with tarfile.open(shard.path, "r") as tar:
            return tar.extractfile(rest).read()
    if scheme == "parquet":
        row, column = rest.split(":")
        value = pq.read_table(shard.path, columns=[column]).column(0)[int(row)].as_py()
        return value[0] if isinstance(value, list) else value
    if scheme == "file":
        return (shard.data_root / rest).read_bytes()
    raise AssertionError(ref)


@pytest.mark.parametrize(
    "name, scheme",
    [
        ("wds-00000.tar", "tar:"),
        ("img2dataset-00000.parquet", "parquet:"),
        ("dj-bytes-00000.parquet", "parquet:"),  # one-element list column
        ("dj-00000.jsonl", "file:"),
        ("llava-00000.json", "file:"),
    ],
)
def test_iter_image_bytes_returns_each_referenced_image(demo_template, name, scheme):
    shard = shard_file(demo_template, "caption", name)
    valid = normalize_shard(shard).valid
    refs = valid["image_ref"].to_list()
    assert refs and all(ref.startswith(scheme) for ref in refs)
    # Ask in reverse, with one reference twice: positions index the request, not the shard.
    request = refs[::-1] + [refs[0]]

    got = list(iter_image_bytes(shard, request))

    positions = [position for position, _ in got]
    assert sorted(positions) == list(range(len(request)))
    by_position = dict(got)
    sha = dict(zip(refs, valid["image_sha256"].to_list()))
    for position, ref in enumerate(request):
        data = by_position[position]
        assert hashlib.sha256(data).hexdigest() == sha[ref], ref  # what ingest checked
        assert data == direct_bytes(shard, ref), ref


def test_iter_image_bytes_rejects_an_unknown_scheme(demo_template):
    shard = shard_file(demo_template, "caption", "wds-00000.tar")
    with pytest.raises(ValueError, match=r"unknown image_ref scheme\(s\) \['http'\] in shard wds-00000.tar"):
        list(iter_image_bytes(shard, ["tar:000000000.jpg", "http://example.com/a.jpg"]))


# --- image_batches ------------------------------------------------------------------------------


def small_tensor(image: Image.Image) -> torch.Tensor:
    pixels = np.asarray(image.resize((8, 8)), dtype=np.float32) / 255.0
    return torch.from_numpy(pixels).permute(2, 0, 1)


def test_image_batches_yield_every_position_once_whatever_the_workers(demo_template):
    shard = shard_file(demo_template, "caption", "img2dataset-00000.parquet")
    refs = normalize_shard(shard).valid["image_ref"].to_list()
    refs = refs[::-1] + refs[:3]  # out of shard order, with repeats

    results = {}
    for workers in (0, 2):
        seen: list[int] = []
        tensors = {}
        for positions, batch in image_batches(shard, refs, small_tensor, batch_size=4, num_workers=workers):
            assert batch.shape[1:] == (3, 8, 8)
            assert len(positions) == batch.shape[0] <= 4
            for position, tensor in zip(positions.tolist(), batch):
                seen.append(position)
                tensors[position] = tensor
        assert sorted(seen) == list(range(len(refs))), f"num_workers={workers}"
        results[workers] = tensors

    for position in range(len(refs)):
        assert torch.equal(results[0][position], results[2][position]), position
    # the repeated references decode to the same pixels as their first occurrence
    n = len(refs) - 3
    for offset in range(3):
        assert torch.equal(results[0][n + offset], results[0][n - 1 - offset])


# --- clip_embeddings ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_clip():
    smoke = load_recipe(PACKAGED_RECIPES / "smoke.yaml")
    # float32: the tests compare table rows with encodings of other batches, exact only in float32
    return load_clip(smoke.models.clip, smoke.models.profile, device="cpu", half_precision=False)


def scene(shape: str, colour: str, background: str) -> images.Scene:
    return images.Scene(shape, colour, background, width=96, height=80, texture_seed=len(shape + colour))


def test_clip_embeddings_follow_the_rows(tmp_path, smoke_clip):
    a, b, c = scene("circle", "red", "blue"), scene("square", "yellow", "green"), scene("ring", "white", "black")
    jpeg = {name: images.scene_jpeg(s) for name, s in (("a", a), ("b", b), ("c", c))}
    caption = {"a": a.caption(), "b": b.caption(), "c": c.caption()}
    rows = [("a", "a"), ("b", "b"), ("a", "a"), ("c", "c"), ("a", "b")]  # (image, caption); row 4 is mismatched
    write_webdataset_tar(
        tmp_path / "raw" / "caption" / "pairs.tar", [CaptionSample(jpeg[i], caption[t]) for i, t in rows]
    )
    shard = shard_file(tmp_path, "caption", "pairs.tar")
    valid = normalize_shard(shard).valid
    assert valid.height == len(rows)
    table = valid.reverse()  # not in shard order: positions must still land on their rows

    embeddings = clip_embeddings(shard, table, smoke_clip, BatchSettings(batch_size=2, num_workers=0))

    assert embeddings.columns == ["sample_id", "image_embedding", "text_embedding"]
    assert embeddings["sample_id"].to_list() == table["sample_id"].to_list()
    assert embeddings.schema["image_embedding"] == pl.Array(pl.Float16, 64)
    image_vectors = embeddings["image_embedding"].to_numpy().astype(np.float32)
    text_vectors = embeddings["text_embedding"].to_numpy().astype(np.float32)
    np.testing.assert_allclose(np.linalg.norm(image_vectors, axis=1), 1.0, atol=2e-3)
    np.testing.assert_allclose(np.linalg.norm(text_vectors, axis=1), 1.0, atol=2e-3)

    # Each row's embeddings are those of its own image and caption, encoded one at a time.
    for row, key in enumerate(table["key"].to_list()):
        image_name, caption_name = rows[int(key)]
        pixels = smoke_clip.preprocess(open_rgb(jpeg[image_name], smoke_clip.image_size))[None]
        np.testing.assert_allclose(image_vectors[row], smoke_clip.encode_images(pixels)[0].numpy(), atol=2e-3)
        np.testing.assert_allclose(
            text_vectors[row], smoke_clip.encode_texts([caption[caption_name]])[0].numpy(), atol=2e-3
        )

    by_key = {int(key): row for row, key in enumerate(table["key"].to_list())}
    # same bytes, same image embedding; same caption, same text embedding (bit for bit)
    assert np.array_equal(image_vectors[by_key[0]], image_vectors[by_key[2]])
    assert np.array_equal(image_vectors[by_key[0]], image_vectors[by_key[4]])
    assert np.array_equal(text_vectors[by_key[0]], text_vectors[by_key[2]])
    assert np.array_equal(text_vectors[by_key[1]], text_vectors[by_key[4]])
    assert not np.allclose(image_vectors[by_key[0]], image_vectors[by_key[1]], atol=1e-2)
    assert not np.allclose(text_vectors[by_key[0]], text_vectors[by_key[1]], atol=1e-2)

    similarity = clip_similarity(embeddings)
    matched, mismatched = similarity[by_key[0]], similarity[by_key[4]]
    assert similarity[by_key[2]] == matched
    assert abs(matched - mismatched) > 1e-3, (matched, mismatched)


def test_clip_embeddings_of_the_demo_duplicates(demo_template, demo_manifest, smoke_clip):
    """Every exact duplicate the demo plants in a shard gets the embedding of its original."""
    name = "wds-00001.tar"
    shard = shard_file(demo_template, "caption", name)
    valid = normalize_shard(shard).valid
    embeddings = clip_embeddings(shard, valid, smoke_clip, BatchSettings(batch_size=8, num_workers=0))
    assert embeddings["sample_id"].to_list() == valid["sample_id"].to_list()

    image_vectors = embeddings["image_embedding"].to_numpy()
    first_row_of = {}
    checked = 0
    for row, digest in enumerate(valid["image_sha256"].to_list()):
        if digest in first_row_of:
            assert np.array_equal(image_vectors[row], image_vectors[first_row_of[digest]])
            checked += 1
        first_row_of.setdefault(digest, row)
    within_shard = [
        k for k in demo_manifest[f"caption/{name}"]["defects"]["exact_duplicate"] if k in valid["key"].to_list()
    ]
    assert checked >= 1 and within_shard, (checked, within_shard)


# --- open_rgb -----------------------------------------------------------------------------------


def sideways_jpeg(width: int, height: int) -> bytes:
    """Stored top half red, bottom half blue, with EXIF orientation 6 ("rotate 90 degrees clockwise to view")."""
    image = Image.new("RGB", (width, height), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, width, height // 2))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


@pytest.mark.parametrize("min_side", [None, 40], ids=["full-size", "draft-decode"])
def test_open_rgb_applies_exif_orientation(min_side):
    data = sideways_jpeg(400, 200)
    assert Image.open(io.BytesIO(data)).size == (400, 200)

    upright = open_rgb(data, min_side)

    width, height = upright.size
    assert height > width  # turned: the long side is now vertical
    if min_side is None:
        assert upright.size == (200, 400)
    else:
        assert min(upright.size) >= min_side and max(upright.size) < 400  # decoded at reduced scale
    assert upright.mode == "RGB"
    # the stored top (red) is the viewer's right-hand side
    right = upright.getpixel((width * 3 // 4, height // 2))
    left = upright.getpixel((width // 4, height // 2))
    assert right[0] > 200 and right[2] < 60, right
    assert left[2] > 200 and left[0] < 60, left
