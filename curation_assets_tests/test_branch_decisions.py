"""Dedup and decisions of the text and interleaved branches on small frames: which member of a group
survives, the caption pool's precedence, and the index refreshing its companion table per shard."""

import polars as pl

from curation_assets.recipe import DocumentDeduplicator, InterleavedDedup, TextDedup
from curation_assets.sample_index import refresh_index
from curation_assets.selection.branch_decisions import (
    MEMBER_SCHEMA,
    decide_interleaved,
    decide_texts,
    interleaved_duplicates,
    judged_images,
    text_duplicates,
)
from curation_assets.selection.filters import ResolvedRule
from curation_assets.selection.text_dedup import all_text_hashes

NSFW = ResolvedRule("image_nsfw_filter", "nsfw_probability", None, 0.5, False)
SIMILAR = ResolvedRule("image_text_similarity_filter", "clip_similarity", 0.2, None, True)
IMAGES_LEFT = ResolvedRule("images_left_filter", "num_images_kept", 1, None, True)
LANGUAGE = ResolvedRule("language_id_score_filter", "language_score", 0.8, None, True)


def images(rows: list[tuple]) -> pl.DataFrame:
    """(image_id, sample_id, sha256, phash, similarity, nsfw) -> an image index with judged columns."""
    frame = pl.DataFrame(
        rows,
        schema=["image_id", "sample_id", "image_sha256", "phash", "best_similarity", "nsfw_probability"],
        orient="row",
    ).with_columns(
        pl.lit("s1").alias("shard_id"),
        pl.col("image_id").str.split("/").list.last().cast(pl.Int32).alias("image_index"),
        pl.lit(0, pl.Int32).alias("best_text_index"),
        pl.col("best_similarity").cast(pl.Float32),
        pl.col("best_similarity").cast(pl.Float32).alias("assigned_similarity"),
        pl.lit(0, pl.Int32).alias("assigned_text_index"),
    )
    return judged_images(frame, reassign_images=False)


def documents(ids: list[str], texts: dict[str, str] | None = None) -> pl.DataFrame:
    from curation_assets.scoring.hashes import text_minhash

    texts = texts or {sample: f"document {sample} about something else entirely" for sample in ids}
    counts = {sample: 0 for sample in ids}
    return pl.DataFrame({"sample_id": ids, "shard_id": ["s1"] * len(ids)}).with_columns(
        pl.Series("num_images", [counts[s] + 2 for s in ids], dtype=pl.Int32),
        pl.Series("minhash", text_minhash([texts[s] for s in ids])),
    )


def test_an_interleaved_copy_of_a_caption_pool_image_is_dropped_even_when_it_passes_every_rule():
    index = images(
        [("d1/0", "d1", "same", "ffff0000ffff0000", 0.9, 0.0), ("d1/1", "d1", "x", "0f0f0f0f0f0f0f0f", 0.9, 0.0)]
    )
    caption = pl.DataFrame({"sample_id": ["c7"], "image_sha256": ["same"], "phash": ["ffff0000ffff0000"]})
    groups = interleaved_duplicates(documents(["d1"]), index, InterleavedDedup(), caption)
    _, decided = decide_interleaved(documents(["d1"]), index, [SIMILAR, NSFW], [IMAGES_LEFT], groups)
    copy = decided.filter(pl.col("image_id") == "d1/0").row(0, named=True)
    assert (copy["kept"], copy["drop_rule"], copy["duplicate_of"]) == (False, "dedup", "caption:c7")
    assert copy["drop_value"].startswith("exact")
    assert decided.filter(pl.col("image_id") == "d1/1")["kept"].item()


def test_an_image_group_keeps_its_most_similar_member_that_passes_every_rule():
    index = images(
        [
            ("d1/0", "d1", "same", "ffff0000ffff0000", 0.9, 0.9),  # most similar, but NSFW
            ("d2/0", "d2", "same", "ffff0000ffff0000", 0.5, 0.1),
            ("d3/0", "d3", "same", "ffff0000ffff0000", 0.4, 0.1),
        ]
    )
    docs = documents(["d1", "d2", "d3"])
    groups = interleaved_duplicates(docs, index, InterleavedDedup(), None)
    assert set(groups["level"]) == {"image"} and groups.height == 3
    document_decisions, decided = decide_interleaved(docs, index, [SIMILAR, NSFW], [IMAGES_LEFT], groups)
    verdict = {row["image_id"]: (row["kept"], row["drop_rule"]) for row in decided.iter_rows(named=True)}
    assert verdict == {"d1/0": (False, "image_nsfw_filter"), "d2/0": (True, None), "d3/0": (False, "dedup")}
    # A document whose only image went is dropped for want of images, with the count as its value.
    dropped = document_decisions.filter(~pl.col("kept")).sort("sample_id")
    assert dropped["drop_rule"].to_list() == ["images_left_filter"] * 2
    assert dropped["drop_value"].to_list() == ["num_images_kept=0"] * 2


def test_a_document_group_keeps_the_copy_with_most_images_left():
    text = "the same long paragraph about gardening in spring with tomatoes basil and many other plants"
    docs = documents(["d1", "d2"], {"d1": text, "d2": text})
    index = images(
        [
            ("d1/0", "d1", "a", "0000000000000001", 0.9, 0.0),
            ("d2/0", "d2", "b", "00ff00ff00ff00ff", 0.9, 0.0),
            ("d2/1", "d2", "c", "ff00ff00ff00ff00", 0.9, 0.0),
        ]
    )
    groups = interleaved_duplicates(docs, index, InterleavedDedup(image_deduplicator=None), None)
    assert groups.filter(pl.col("level") == "document").height == 2
    decided, _ = decide_interleaved(docs, index, [], [IMAGES_LEFT], groups)
    verdict = dict(decided.select("sample_id", "kept").iter_rows())
    assert verdict == {"d1": False, "d2": True}  # d2 kept two images, d1 one
    assert decided.filter(pl.col("sample_id") == "d1")["duplicate_of"].item() == "d2"


def text_samples(texts: dict[str, str], scores: dict[str, float]) -> pl.DataFrame:
    from curation_assets.scoring.hashes import text_minhash

    ids = list(texts)
    return pl.concat(
        [
            pl.DataFrame({"sample_id": ids, "shard_id": ["s1"] * len(ids)}),
            all_text_hashes([texts[s] for s in ids]),
        ],
        how="horizontal",
    ).with_columns(
        pl.Series("minhash", text_minhash([texts[s] for s in ids])),
        pl.Series("language_score", [scores[s] for s in ids], dtype=pl.Float32),
    )


def test_a_text_group_keeps_its_highest_language_score_that_passes_and_case_counts_only_if_asked():
    texts = {"t1": "Hello World, this is one text.", "t2": "hello   world, this is one TEXT.", "t3": "Other."}
    samples = text_samples(texts, {"t1": 0.95, "t2": 0.7, "t3": 0.9})
    groups = text_duplicates(samples, TextDedup(document_minhash_deduplicator=None))
    assert set(groups["member_id"]) == {"t1", "t2"} and groups.schema == pl.Schema(MEMBER_SCHEMA)
    decided = decide_texts(samples, [LANGUAGE], groups)
    verdict = {row["sample_id"]: (row["kept"], row["drop_rule"]) for row in decided.iter_rows(named=True)}
    assert verdict == {"t1": (True, None), "t2": (False, "language_id_score_filter"), "t3": (True, None)}
    cased = TextDedup(document_deduplicator=DocumentDeduplicator(lowercase=False), document_minhash_deduplicator=None)
    assert text_duplicates(samples, cased).is_empty()


def test_the_index_refreshes_its_companion_rows_only_for_shards_that_changed():
    schema = {"sample_id": pl.String, "shard_id": pl.String}
    companion_schema = {"image_id": pl.String, "sample_id": pl.String, "shard_id": pl.String}
    read = []

    def gather(shard: str):
        read.append(shard)
        docs = pl.DataFrame({"sample_id": [f"{shard}-d"], "shard_id": [shard]})
        pictures = pl.DataFrame({"image_id": [f"{shard}-d/0", f"{shard}-d/1"], "sample_id": [f"{shard}-d"] * 2})
        return docs, pictures.with_columns(pl.lit(shard).alias("shard_id"))

    first = refresh_index(None, None, {"a": "1", "b": "1"}, gather, schema, companion=(None, companion_schema))
    assert first.companion.height == 4 and read == ["a", "b"]
    second = refresh_index(
        first.samples, first.shards, {"a": "1", "c": "1"}, gather, schema, companion=(first.companion, companion_schema)
    )
    assert read == ["a", "b", "c"]  # only the new shard was read
    assert sorted(set(second.companion["shard_id"])) == ["a", "c"] and second.companion.height == 4
    assert second.version != first.version
