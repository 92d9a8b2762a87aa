"""Interleaved documents: per-image rows through the per-image scorers, image-to-sentence similarity
and MMC4's re-assignment, two-level rules on every planted demo defect, image and document dedup,
and curated documents that stay aligned."""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import polars as pl
import pytest

from curation_assets.image_source import iter_image_bytes
from curation_assets.invariants import coverage_problems, decision_problems
from curation_assets.models.clip import load_clip
from curation_assets.models.nsfw import load_nsfw
from curation_assets.normalize import normalize_shard
from curation_assets.recipe import ClipModel, Interleaved, NsfwModel, steps
from curation_assets.scoring.hashes import text_minhash
from curation_assets.scoring.image_models import BatchSettings, nsfw_probabilities, perceptual_hashes
from curation_assets.scoring.interleaved import (
    document_counts,
    document_images,
    document_sentences,
    document_texts,
    image_embeddings,
    image_sentence_matches,
    image_stats,
    sentence_embeddings,
    shipped_similarity_matrices,
    similarity_matrices,
)
from curation_assets.scoring.text_quality import text_quality
from curation_assets.scoring.text_stats import text_stats
from curation_assets.selection.filters import resolve, rules_of
from curation_assets.selection.interleaved_dedup import document_duplicate_groups, image_duplicate_groups
from curation_assets.selection.interleaved_rules import (
    curated_documents,
    decide_documents,
    decide_images,
    images_left,
    rule_similarity,
)
from curation_assets_tests.helpers import shard_file

SHARDS = ("mmc4-00000.jsonl", "obelics-00000.parquet")
FAST = BatchSettings(batch_size=16, num_workers=0)


@pytest.fixture(scope="module")
def smoke_clip():
    return load_clip(ClipModel(model="smoke-ViT-tiny", pretrained=None), "smoke", device="cpu")


@pytest.fixture(scope="module")
def demo(demo_template, demo_manifest):
    """Per shard: (ShardFile, normalized docs with their planted defect, image rows)."""
    shards = {}
    for name in SHARDS:
        shard = shard_file(demo_template, "interleaved", name)
        planted = {k: d for d, keys in demo_manifest[f"interleaved/{name}"]["defects"].items() for k in keys}
        docs = normalize_shard(shard).valid.with_columns(
            pl.col("key").replace_strict(planted, default="").alias("defect")
        )
        shards[name] = (shard, docs, document_images(docs))
    return shards


def defect_of(docs: pl.DataFrame, defect: str) -> dict:
    [row] = docs.filter(pl.col("defect") == defect).to_dicts()
    return row


# --- taking documents apart -------------------------------------------------------------------------


def test_image_rows_point_at_their_images_and_read_back_from_the_shard(demo):
    for shard, docs, images in demo.values():
        assert images.height == docs["num_images"].sum()
        by_doc = {row["sample_id"]: row for row in docs.iter_rows(named=True)}
        for row in images.iter_rows(named=True):
            struct = by_doc[row["sample_id"]]["images"][row["image_index"]]
            assert struct is not None and struct["sha256"] == row["image_sha256"]
            assert row["image_id"] == f"{row['sample_id']}/{row['image_index']}"
        # Inline OBELICS images and MMC4 files alike come back by their ref, byte for byte.
        read = {pos: hashlib.sha256(data).hexdigest() for pos, data in iter_image_bytes(shard, images["image_ref"])}
        assert [read[pos] for pos in range(images.height)] == images["image_sha256"].to_list()
    assert demo["obelics-00000.parquet"][2]["image_ref"].str.starts_with("parquet:").all()
    ordinals = demo["mmc4-00000.jsonl"][2].group_by("sample_id").agg("image_ordinal")["image_ordinal"]
    assert all(sorted(o) == list(range(len(o))) for o in ordinals)


def test_sentences_and_document_text_keep_reading_order(demo):
    _, docs, _ = demo["mmc4-00000.jsonl"]
    sentences = document_sentences(docs)
    assert sentences.height == docs["num_texts"].sum()
    first = docs.row(0, named=True)
    mine = sentences.filter(pl.col("sample_id") == first["sample_id"])
    assert mine["text"].to_list() == [t for t in first["texts"] if t is not None]
    assert all(first["texts"][i] is not None for i in mine["text_index"])
    assert document_texts(docs)[0] == "\n".join(mine["text"])
    counts = document_counts(docs)
    assert counts["num_sentences"].to_list() == docs["num_texts"].to_list()


# --- CLIP: embeddings once, similarity from them ---------------------------------------------------


def test_clip_similarity_matrix_best_and_assigned_sentences(demo, smoke_clip):
    shard, docs, images = demo["obelics-00000.parquet"]
    vectors = image_embeddings(shard, images, smoke_clip, FAST)
    sentences = sentence_embeddings(document_sentences(docs), smoke_clip)
    assert vectors["image_embedding"].dtype.inner == pl.Float16 and vectors.height == images.height
    matrices = similarity_matrices(docs["sample_id"], vectors, sentences)
    assert matrices["sample_id"].to_list() == docs["sample_id"].to_list()

    doc = docs.row(0, named=True)
    [matrix] = matrices.filter(pl.col("sample_id") == doc["sample_id"]).to_dicts()
    assert matrix["image_indices"] == [i for i, image in enumerate(doc["images"]) if image is not None]
    assert matrix["text_indices"] == [i for i, text in enumerate(doc["texts"]) if text is not None]
    # Against the cosine computed here from the stored vectors (renormalised float16).
    image_rows = vectors.filter(pl.col("sample_id") == doc["sample_id"])["image_embedding"].to_numpy()
    text_rows = sentences.filter(pl.col("sample_id") == doc["sample_id"])["text_embedding"].to_numpy()
    unit = lambda m: m.astype(np.float32) / np.linalg.norm(m.astype(np.float32), axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(np.array(matrix["similarity_matrix"]), unit(image_rows) @ unit(text_rows).T, atol=1e-5)

    matches = image_sentence_matches(matrices)
    assert set(matches["image_id"]) == set(images["image_id"])
    for sample, rows in matches.group_by("sample_id"):
        [m] = matrices.filter(pl.col("sample_id") == sample[0]).to_dicts()
        sim = np.array(m["similarity_matrix"])
        assert rows["best_similarity"].to_list() == pytest.approx(sim.max(axis=1).tolist(), abs=1e-6)
        if len(m["image_indices"]) <= len(m["text_indices"]):  # each text element takes at most one image
            assert rows["assigned_text_index"].n_unique() == rows.height
            # ... and no other one-to-one matching has a higher total similarity.
            total = rows["assigned_similarity"].sum()
            best = max(
                sum(sim[i, j] for i, j in enumerate(perm))
                for perm in itertools.permutations(range(sim.shape[1]), sim.shape[0])
            )
            assert total == pytest.approx(best, abs=1e-5)


def test_assignment_resolves_two_images_wanting_one_sentence():
    matrices = pl.DataFrame(
        {
            "sample_id": ["d", "lone"],
            "image_indices": [[0, 2], [0]],
            "text_indices": [[1, 3], []],
            "similarity_matrix": [[[0.30, 0.20], [0.29, 0.10]], [[]]],
        },
        schema_overrides={"similarity_matrix": pl.List(pl.List(pl.Float32))},
    )
    matches = image_sentence_matches(matrices).sort("image_id")
    d = matches.filter(pl.col("sample_id") == "d")
    assert d["best_text_index"].to_list() == [1, 1]  # both images like sentence 1 best
    assert d["assigned_text_index"].to_list() == [3, 1]  # 0.20 + 0.29 beats 0.30 + 0.10
    assert matches.filter(pl.col("sample_id") == "lone")["best_similarity"].to_list() == [None]


def test_shipped_mmc4_matrix_is_put_in_reading_order(demo):
    _, docs, _ = demo["mmc4-00000.jsonl"]
    clean = docs.filter(pl.col("defect") == "")
    matches = image_sentence_matches(shipped_similarity_matrices(clean))
    # The demo writer ships its highest similarity at the matched sentence, which the reader puts
    # each image right before: the best text element is the next text position.
    for row in matches.join(clean.select("sample_id", "texts"), on="sample_id").iter_rows(named=True):
        following = next(i for i in range(row["image_index"] + 1, len(row["texts"])) if row["texts"][i] is not None)
        assert row["best_text_index"] == following
    obelics = shipped_similarity_matrices(demo["obelics-00000.parquet"][1])
    assert image_sentence_matches(obelics)["best_similarity"].is_null().all()  # OBELICS ships none


# --- two levels of rules, dedup, curated documents, on every planted defect -------------------------


@pytest.fixture(scope="module")
def decided(demo, demo_template):
    """Both demo shards decided by the default interleaved recipe with these scores: image size from
    ingest, similarity from the matrix MMC4 ships (smoke CLIP similarities mean nothing, and OBELICS
    ships none, so its images are judged without the similarity rule), the real Open-NSFW model and
    pHash through the caption branch's per-image loops, dedup across every document and against the
    caption shard wds-00000.tar, document text scores and MinHash."""
    recipe = Interleaved()
    nsfw = load_nsfw(NsfwModel(), device="cpu")
    caption_shard = shard_file(demo_template, "caption", "wds-00000.tar")
    captions = normalize_shard(caption_shard).valid
    captions = captions.with_columns(pl.Series("phash", perceptual_hashes(caption_shard, captions, FAST)))

    all_images, all_docs = [], []
    for name, (shard, docs, images) in demo.items():
        matches = image_sentence_matches(shipped_similarity_matrices(docs))
        scores = image_stats(images).join(rule_similarity(matches, reassign_images=False), on="image_id", how="left")
        scores = scores.with_columns(pl.Series("nsfw_probability", nsfw_probabilities(shard, images, nsfw, FAST)))
        phash = pl.Series("phash", perceptual_hashes(shard, images, FAST))
        all_images.append(images.with_columns(phash).join(scores.select("image_id", "clip_similarity"), on="image_id"))
        all_docs.append((name, docs, images, scores))
    image_groups = image_duplicate_groups(pl.concat(all_images), recipe.dedup.image_deduplicator.max_distance, captions)
    image_rules = resolve(rules_of(recipe.image_filters), None)
    without_similarity = [rule for rule in image_rules if rule.column != "clip_similarity"]

    per_shard, documents = {}, []
    for name, docs, images, scores in all_docs:
        rules = image_rules if name.startswith("mmc4") else without_similarity
        image_decisions = decide_images(images, scores, rules, image_groups)
        texts = document_texts(docs)
        doc_scores = pl.concat([document_counts(docs), text_stats(texts), text_quality(texts)], how="horizontal").join(
            images_left(document_counts(docs), image_decisions), on="sample_id"
        )
        per_shard[name] = (docs, image_decisions, doc_scores)
        documents.append(
            doc_scores.select("sample_id", "num_images_kept").with_columns(
                pl.lit(name).alias("shard_id"), pl.Series("minhash", text_minhash(texts))
            )
        )
    document_groups = document_duplicate_groups(
        pl.concat(documents), recipe.dedup.document_minhash_deduplicator.jaccard_threshold
    )
    document_rules = resolve(rules_of(recipe.document_filters), None)
    results = {}
    for name, (docs, image_decisions, doc_scores) in per_shard.items():
        doc_decisions = decide_documents(doc_scores, document_rules, document_groups)
        curated = curated_documents(docs, image_decisions, doc_decisions)
        results[name] = (docs, image_decisions, doc_decisions, curated)
    return results, image_groups, document_groups


def outcome(results, shard: str, defect: str):
    docs, images, documents, curated = results[shard]
    doc = defect_of(docs, defect)
    return (
        doc,
        images.filter(pl.col("sample_id") == doc["sample_id"]).sort("image_index"),
        documents.filter(pl.col("sample_id") == doc["sample_id"]).row(0, named=True),
        curated.filter(pl.col("sample_id") == doc["sample_id"]),
    )


def test_every_image_and_document_is_decided_and_every_drop_explained(decided):
    results, _, _ = decided
    for name, (docs, images, documents, curated) in results.items():
        expected = document_images(docs)["image_id"]
        assert decision_problems(name, images.drop("sample_id").rename({"image_id": "sample_id"}), expected) is None
        assert decision_problems(name, documents, docs["sample_id"]) is None
        assert set(curated["sample_id"]) == set(documents.filter("kept")["sample_id"])


def test_clean_documents_are_kept_with_all_their_text(decided):
    results, _, _ = decided
    for docs, images, documents, curated in results.values():
        clean = docs.filter(pl.col("defect") == "")
        assert set(clean["sample_id"]) <= set(documents.filter("kept")["sample_id"])
        # Demo pictures are 64-256 px a side, so an aspect ratio beyond 1:3 happens; sources of the
        # planted copies may lose a picture to the copy. Nothing else costs a clean document a picture.
        lost = images.filter(pl.col("sample_id").is_in(clean["sample_id"].implode()) & ~pl.col("kept"))
        assert set(lost["drop_rule"]) <= {"image_aspect_ratio_filter", "dedup"}
        assert lost.height <= 3
        for row in curated.filter(pl.col("sample_id").is_in(clean["sample_id"].implode())).iter_rows(named=True):
            source = clean.filter(pl.col("sample_id") == row["sample_id"]).row(0, named=True)
            assert [t for t in row["texts"] if t] == [t for t in source["texts"] if t]
            assert row["num_images"] + row["num_images_dropped"] == source["num_images"]


def test_unrelated_images_are_dropped_by_similarity_then_the_document_for_want_of_images(decided):
    doc, images, document, _ = outcome(decided[0], "mmc4-00000.jsonl", "unrelated_images")
    assert set(images["drop_rule"]) == {"image_text_similarity_filter"}
    assert (document["drop_rule"], document["drop_value"]) == ("images_left_filter", "num_images_kept=0")


def test_a_document_with_all_images_broken_loses_them_and_is_dropped(decided):
    doc, images, document, _ = outcome(decided[0], "mmc4-00000.jsonl", "all_images_broken")
    assert images["drop_value"].to_list() == ["width=1"] * doc["num_images"]
    assert images["drop_rule"].unique().to_list() == ["image_shape_filter"]
    assert document["drop_rule"] == "images_left_filter"


def test_one_tiny_image_goes_and_its_document_stays_aligned(decided):
    doc, images, document, curated = outcome(decided[0], "mmc4-00000.jsonl", "tiny_image")
    assert images["kept"].to_list() == [True, True, False] and images["drop_value"][2] == "width=8"
    assert document["kept"] and curated["num_images"].item() == 2 and curated["num_images_dropped"].item() == 1
    texts, pictures = curated["texts"].to_list()[0], curated["images"].to_list()[0]
    assert len(texts) == len(pictures) == len(doc["texts"]) - 1
    assert all((t is None) != (p is None) for t, p in zip(texts, pictures))
    assert [t for t in texts if t is not None] == [t for t in doc["texts"] if t is not None]
    dropped_ref = doc["images"][images["image_index"][2]]["ref"]
    assert dropped_ref not in [p["ref"] for p in pictures if p is not None]


@pytest.mark.parametrize(
    ("shard", "defect", "method"),
    [
        ("mmc4-00000.jsonl", "cross_document_duplicate_image", "exact"),
        ("mmc4-00000.jsonl", "near_duplicate_image", "phash"),
        ("obelics-00000.parquet", "caption_duplicate_image", "exact"),
    ],
)
def test_duplicate_images_across_documents_and_kinds_keep_one_copy(decided, shard, defect, method):
    results, groups, _ = decided
    doc, images, document, _ = outcome(results, shard, defect)
    first = images.filter(pl.col("image_index") == images["image_index"].min()).row(0, named=True)
    [group] = groups.filter(pl.col("image_id") == first["image_id"]).to_dicts()
    members = groups.filter(pl.col("group_id") == group["group_id"])
    assert method in group["method"]
    if defect == "caption_duplicate_image":  # the caption pool keeps its copy; this one goes
        assert group["duplicate_of"].startswith("caption:") and not first["kept"]
        assert first["drop_rule"] == "dedup" and first["drop_value"].endswith(group["duplicate_of"])
    else:  # documents share the picture (the demo's re-hosted document copies one too): one copy survives
        assert members.height >= 2 and members["sample_id"].n_unique() == members.height
        assert members["representative"].sum() == 1
    assert document["kept"]  # losing one picture of several does not lose the document


def test_near_duplicate_document_is_grouped_with_its_source_and_only_one_survives(decided):
    results, _, document_groups = decided
    doc, _, document, _ = outcome(results, "obelics-00000.parquet", "near_duplicate_document")
    [group] = document_groups.filter(pl.col("sample_id") == doc["sample_id"]).to_dicts()
    members = document_groups.filter(pl.col("group_id") == group["group_id"])
    assert members.height == 2 and set(members["method"]) == {"minhash"}
    kept = [
        row["kept"]
        for _, _, documents, _ in results.values()
        for row in documents.filter(pl.col("sample_id").is_in(members["sample_id"].implode())).iter_rows(named=True)
    ]
    assert sorted(kept) == [False, True]


@pytest.mark.parametrize(
    ("defect", "rule"), [("non_english", "language_id_score_filter"), ("repetitive_spam", "word_repetition_filter")]
)
def test_document_text_rules_drop_foreign_and_spam_documents(decided, defect, rule):
    _, images, document, curated = outcome(decided[0], "obelics-00000.parquet", defect)
    assert images["kept"].all()  # the pictures were fine
    assert document["drop_rule"] == rule and curated.height == 0


# --- MMC4's re-assignment as an option ----------------------------------------------------------------


def test_reassignment_moves_each_kept_image_before_its_assigned_sentence():
    image = {"ref": "file:x", "sha256": "s", "num_bytes": 1, "width": 9, "height": 9, "format": "jpeg", "mode": "RGB"}
    docs = pl.DataFrame(
        {
            "sample_id": ["d"],
            "texts": [[None, "a cat", None, "a dog", "the end"]],
            "images": [[{**image, "ref": "file:dog"}, None, {**image, "ref": "file:cat"}, None, None]],
        },
        schema_overrides={"images": pl.List(pl.Struct({k: pl.String for k in ("ref", "sha256")}))},
    )
    decisions = pl.DataFrame(
        {"image_id": ["d/0", "d/2"], "sample_id": ["d", "d"], "image_index": [0, 2], "kept": [True, True]},
        schema_overrides={"image_index": pl.Int32},
    )
    kept = pl.DataFrame({"sample_id": ["d"], "kept": [True]})
    matches = pl.DataFrame(
        {"image_id": ["d/0", "d/2"], "assigned_similarity": [0.3, 0.3], "assigned_text_index": [3, 1]},
        schema_overrides={"assigned_text_index": pl.Int32, "assigned_similarity": pl.Float32},
    )
    as_is = curated_documents(docs, decisions, kept)
    assert as_is["texts"].to_list()[0] == [None, "a cat", None, "a dog", "the end"]
    moved = curated_documents(docs, decisions, kept, rule_similarity(matches, reassign_images=True))
    assert moved["texts"].to_list()[0] == [None, "a cat", None, "a dog", "the end"]
    assert [p["ref"] if p else None for p in moved["images"].to_list()[0]] == ["file:cat", None, "file:dog", None, None]
    one_dropped = curated_documents(docs, decisions.with_columns(pl.Series("kept", [False, True])), kept)
    assert one_dropped["texts"].to_list()[0] == ["a cat", None, "a dog", "the end"]
    assert one_dropped["num_images"].item() == 1 and one_dropped["num_images_dropped"].item() == 1


def test_interleaved_recipe_checks_each_level_reads_its_own_columns():
    with pytest.raises(ValueError, match="num_words"):
        Interleaved(image_filters=steps({"words_num_filter": {"min_num": 3}}))
    with pytest.raises(ValueError, match="aspect_ratio"):
        Interleaved(document_filters=steps({"image_aspect_ratio_filter": {"max_ratio": 2}}))
    with pytest.raises(ValueError, match="known only while deciding"):
        Interleaved(document_filters=steps({"images_left_filter": {"min_num": "p10"}}))
    assert Interleaved(document_filters=steps({"words_num_filter": {"min_num": "p10"}}))


def test_per_image_score_tables_cover_every_image(demo, smoke_clip):
    shard, docs, images = demo["mmc4-00000.jsonl"]
    vectors = image_embeddings(shard, images, smoke_clip, FAST)
    expected = images["image_id"]
    table = vectors.select(pl.col("image_id").alias("sample_id"), "image_embedding")
    assert coverage_problems("mmc4", table, expected, ["image_embedding"]) is None
    assert coverage_problems("mmc4", table.head(3), expected, []) is not None
