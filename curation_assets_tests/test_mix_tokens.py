"""Token counts for the mix: a tokenizer by name or folder, the offline smoke one, counts per pool frame."""

import polars as pl
import pytest

from curation_assets.mix.tokens import (
    build_smoke_tokenizer,
    count_tokens,
    load_tokenizer,
    refresh_token_counts,
    text_token_counts,
)
from curation_assets.models.availability import CACHE_ENV, ModelUnavailable


@pytest.fixture
def smoke_tokenizer(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return load_tokenizer("lmsys/vicuna-7b-v1.5", profile="smoke")


def test_smoke_profile_builds_an_offline_tokenizer_once(smoke_tokenizer, tmp_path):
    folder = tmp_path / "cache" / "smoke" / "wordpiece-tokenizer-v1"
    assert (folder / "tokenizer.json").exists()
    before = (folder / "tokenizer.json").stat().st_mtime_ns
    load_tokenizer("anything", profile="smoke")
    assert (folder / "tokenizer.json").stat().st_mtime_ns == before
    # Known words are one token each; an unknown word splits into pieces, as in real WordPiece.
    assert text_token_counts(smoke_tokenizer, ["a red circle on the blue background", "zebra"]).tolist() == [7, 5]


def test_a_local_folder_loads_under_any_profile(tmp_path):
    folder = build_smoke_tokenizer(tmp_path / "my-tokenizer")
    tokenizer = load_tokenizer(str(folder), profile="pretrained")
    assert text_token_counts(tokenizer, ["the dog"]).tolist() == [2]


def test_an_uncached_hub_tokenizer_fails_fast_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelUnavailable, match="tokenizer no-such-org/no-such-tokenizer"):
        load_tokenizer("no-such-org/no-such-tokenizer", profile="pretrained")


def test_counts_per_kind_add_image_tokens(smoke_tokenizer):
    caption = pl.DataFrame({"sample_id": ["c1", "c2"], "caption": ["a red dog", "the cat"]})
    counted = count_tokens(caption, "caption", smoke_tokenizer, image_tokens=576)
    assert counted["text_tokens"].to_list() == [3, 2] and counted["tokens"].to_list() == [579, 578]

    image = {
        "ref": "file:x.jpg",
        "sha256": "0",
        "num_bytes": 1,
        "width": 1,
        "height": 1,
        "format": "jpeg",
        "mode": "RGB",
    }
    documents = pl.DataFrame(
        {
            "sample_id": ["d1", "d2"],
            "texts": [["a red dog", None, "the cat", None], ["a photo"]],
            "images": [[None, image, None, image], [None]],
        }
    )
    counted = count_tokens(documents, "interleaved", smoke_tokenizer, image_tokens=10)
    assert counted["text_tokens"].to_list() == [5, 2]
    assert counted["num_images"].to_list() == [2, 0]
    assert counted["tokens"].to_list() == [25, 2]

    text = pl.DataFrame({"sample_id": ["t1"], "text": ["the sky is blue"]})
    assert count_tokens(text, "text", smoke_tokenizer, image_tokens=576)["tokens"].to_list() == [4]


def test_refresh_counts_only_new_or_changed_samples_and_loads_no_tokenizer_when_nothing_changed(smoke_tokenizer):
    loads = []

    def tokenizer():
        loads.append(1)
        return smoke_tokenizer

    captions = pl.DataFrame({"sample_id": ["a", "b"], "caption": ["a red circle", "a blue square on a table"]})
    first = refresh_token_counts({"caption": captions}, None, "v1", tokenizer, image_tokens=10)
    assert (first.counted, first.reused, len(loads)) == (2, 0, 1)

    again = refresh_token_counts({"caption": captions}, first.frame, "v1", tokenizer, image_tokens=10)
    assert (again.counted, again.reused, len(loads)) == (0, 2, 1)  # nothing to count: no tokenizer loaded
    assert again.frame.equals(first.frame)

    edited = captions.with_columns(pl.Series("caption", ["a red circle", "a dog"]))
    grown = pl.concat([edited, pl.DataFrame({"sample_id": ["c"], "caption": ["a cat in the park"]})])
    third = refresh_token_counts({"caption": grown}, again.frame, "v1", tokenizer, image_tokens=10)
    assert (third.counted, third.reused) == (2, 1)  # b changed, c is new, a is kept
    fresh = refresh_token_counts({"caption": grown}, None, "v1", tokenizer, image_tokens=10)
    assert third.frame.equals(fresh.frame)  # the same counts as counting everything anew

    other = refresh_token_counts({"caption": grown}, third.frame, "v2", tokenizer, image_tokens=10)
    assert other.counted == 3  # another tokenizer or image cost: every sample again
