"""The pretraining mix: recipe section, budget, stable seeded draw, report, checks and token counts."""

import hashlib

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from curation_assets.mix.checks import every_sample_from_pool, ratio_within_tolerance, repeats_within_max
from curation_assets.mix.draw import MIX_SCHEMA, mix_pools
from curation_assets.mix.keys import id_hashes, priority_keys
from curation_assets.mix.report import report_markdown
from curation_assets.mix.spec import Mix

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ids(prefix: str, count: int) -> list[str]:
    return [hashlib.blake2b(f"{prefix}/{i}".encode(), digest_size=8).hexdigest() for i in range(count)]


def pool(prefix: str, count: int, shards: int = 1, tokens: list[int] | None = None) -> pl.DataFrame:
    frame = pl.DataFrame(
        {"sample_id": ids(prefix, count), "shard_id": [f"{prefix}-{i % shards:05d}" for i in range(count)]},
        schema={"sample_id": pl.String, "shard_id": pl.String},
    )
    if tokens is not None:
        frame = frame.with_columns(pl.Series("tokens", tokens, dtype=pl.Int64))
    return frame


def demo_like_pools() -> dict[str, pl.DataFrame]:
    return {"caption": pool("c", 116, 7), "interleaved": pool("i", 16, 2), "text": pool("t", 37, 2)}


def drawn(frame: pl.DataFrame, kind: str) -> set[tuple[str, int]]:
    rows = frame.filter(pl.col("kind") == kind).select("sample_id", "repeat_index")
    return set(rows.iter_rows())


# --- the recipe section -----------------------------------------------------------------------


def test_defaults_are_mm1_5_5_1_by_samples_and_each_sample_once():
    spec = Mix()
    assert spec.target_shares() == pytest.approx({"caption": 5 / 11, "interleaved": 5 / 11, "text": 1 / 11})
    assert spec.unit == "samples" and spec.budget is None
    assert [spec.repeat_limit(kind) for kind in ("caption", "interleaved", "text")] == [1, 1, 1]


@pytest.mark.parametrize(
    "section, message",
    [
        ({"ratio": {"caption": 0, "text": 0}}, "at least one kind"),
        ({"ratio": {"caption": -1}}, "finite number >= 0"),
        ({"ratio": {"audio": 1}}, "audio"),
        ({"max_repeat": {"caption": 0}}, "max_repeat of caption is 0"),
        ({"budget": 0}, "greater than or equal to 1"),
        ({"weight_by": {"caption": " "}}, "name a score column"),
        ({"tolerance": 0}, "greater than 0"),
        ({"unit": "bytes"}, "samples"),
        ({"ratios": {"caption": 1}}, "Extra inputs are not permitted"),
    ],
)
def test_impossible_sections_are_rejected_with_a_reason(section, message):
    with pytest.raises(ValidationError, match=message):
        Mix.model_validate(section)


# --- keys -------------------------------------------------------------------------------------


def test_hex_ids_parse_to_their_value_and_other_ids_still_hash():
    assert id_hashes(pl.Series(["00000000000000ff", "ffffffffffffffff"])).tolist() == [255, 2**64 - 1]
    other = id_hashes(pl.Series(["not-hex", "not-hex", "other"]))
    assert other[0] == other[1] != other[2]


def test_an_ids_hash_does_not_depend_on_the_other_ids_in_the_call():
    # A stray id of another shape (or length) must not change how everyone else hashes.
    ours = ids("h", 50)
    mixed = ours + ["0123456789ABCDEF", "short", "not-hex-but-16ch"]
    alone = id_hashes(pl.Series(ours))
    together = id_hashes(pl.Series(mixed))
    assert together[:50].tolist() == alone.tolist()
    assert id_hashes(pl.Series(mixed[50:])).tolist() == together[50:].tolist()


def test_keys_depend_on_the_seed_and_weighted_keys_favour_heavy_samples():
    hashes = id_hashes(pl.Series(ids("k", 20_000)))
    assert not np.array_equal(priority_keys(hashes, 0), priority_keys(hashes, 1))
    weights = np.where(np.arange(20_000) < 10_000, 4.0, 1.0)
    first = np.argsort(priority_keys(hashes, 0, weights))[:2_000]
    # Exponential race: the first draw is 4x as likely from a weight-4 sample: ~80% of early draws.
    assert 0.75 < (first < 10_000).mean() < 0.85
    missing = priority_keys(hashes[:3], 0, np.array([np.nan, 0.0, -1.0]))
    assert np.isinf(missing).all()


# --- the draw ---------------------------------------------------------------------------------


def test_default_budget_is_the_largest_mix_within_max_repeat():
    result = mix_pools(demo_like_pools(), Mix())
    counts = dict(result.frame.group_by("kind").len().iter_rows())
    # interleaved is the bottleneck: 16 samples at 5/11 -> 35 in all.
    assert counts == {"caption": 16, "interleaved": 16, "text": 3}
    assert result.report["budget"]["bounded_by"] == "interleaved"
    assert result.frame.schema == MIX_SCHEMA
    assert result.report["warnings"] == []


def test_a_new_shard_of_one_kind_leaves_the_other_kinds_alone():
    pools = demo_like_pools()
    before = mix_pools(pools, Mix()).frame
    grown = dict(
        pools, caption=pl.concat([pools["caption"], pool("extra", 40).with_columns(pl.lit("new").alias("shard_id"))])
    )
    after = mix_pools(grown, Mix()).frame
    for kind in ("interleaved", "text"):  # the budget is set by interleaved, which did not change
        assert drawn(after, kind) == drawn(before, kind)
    entered = after.filter((pl.col("kind") == "caption") & (pl.col("shard_id") == "new")).height
    assert len(drawn(before, "caption") - drawn(after, "caption")) == entered  # one displaced per entrant


def test_repeats_fill_a_small_pool_up_to_max_repeat_and_no_further():
    spec = Mix(max_repeat={"interleaved": 3})
    result = mix_pools(demo_like_pools(), spec)
    inter = result.report["kinds"]["interleaved"]
    assert inter["samples"] == 48 and inter["unique_samples"] == 16 and inter["repeats_used"] == 3
    assert inter["samples_by_repeat"] == {"0": 16, "1": 16, "2": 16}
    assert result.report["kinds"]["caption"]["samples"] == 48  # caption follows at the same ratio
    assert repeats_within_max(result.frame, {"interleaved": 3, "caption": 1, "text": 1}).passed


def test_a_budget_the_pools_cannot_fill_warns_with_numbers_and_keeps_the_ratio():
    result = mix_pools(demo_like_pools(), Mix(budget=200, max_repeat={"interleaved": 2}))
    warning = result.report["warnings"][0]
    # 200 x 5/11 = 91 interleaved samples needed, 16 x 2 = 32 available: short by 59 (65%).
    assert "interleaved" in warning and "needs 91 samples" in warning and "= 32 samples" in warning
    assert "short by 59 samples (65%)" in warning
    assert result.report["shortfalls"]["interleaved"]["short"] == pytest.approx(200 * 5 / 11 - 32)
    assert result.frame.height == 70 and "shrank" in result.report["warnings"][1]
    assert ratio_within_tolerance(result.report).passed


def test_keep_budget_fills_from_the_other_kinds_and_the_ratio_check_says_so():
    result = mix_pools(demo_like_pools(), Mix(budget=100, when_short="keep_budget"))
    counts = dict(result.frame.group_by("kind").len().iter_rows())
    assert sum(counts.values()) == 100 and counts["interleaved"] == 16
    assert counts["caption"] / counts["text"] == pytest.approx(5, abs=0.3)
    check = ratio_within_tolerance(result.report)
    assert not check.passed and "interleaved" in check.description and "outside the tolerance" in check.description


def test_an_empty_pool_is_named_and_the_other_kinds_keep_their_ratio():
    pools = demo_like_pools()
    pools["interleaved"] = pools["interleaved"].clear()
    result = mix_pools(pools, Mix())
    assert "interleaved: the pool is empty" in result.report["warnings"][0]
    counts = dict(result.frame.group_by("kind").len().iter_rows())
    assert counts == {"caption": 116, "text": 23}  # text (37) bounds caption:text = 5:1
    assert not ratio_within_tolerance(result.report).passed


def test_empty_pools_are_reported_in_recipe_order_every_run():
    """The report is part of the mix's output: the same pools must give the same bytes (a set's
    iteration order once made it differ between processes, found by the kill drill)."""
    pools = demo_like_pools()
    pools = {"caption": pools["caption"], "interleaved": pools["interleaved"].clear(), "text": pools["text"].clear()}
    for ratio in ({"caption": 5, "interleaved": 5, "text": 1}, {"text": 1, "interleaved": 5, "caption": 5}):
        warnings = mix_pools(pools, Mix(ratio=ratio)).report["warnings"]
        order = [kind for kind in ratio if kind != "caption"]
        assert [warning.split(":")[0] for warning in warnings] == order


def test_weighted_sampling_prefers_high_scores():
    caption = pool("w", 2_000)
    scores = caption.select("sample_id", pl.Series("clip_similarity", np.linspace(0.01, 1.0, 2_000)))
    spec = Mix(ratio={"caption": 1}, budget=200, weight_by={"caption": "clip_similarity"})
    chosen = mix_pools({"caption": caption}, spec, scores=scores).frame.join(scores, on="sample_id")
    uniform = mix_pools({"caption": caption}, Mix(ratio={"caption": 1}, budget=200)).frame.join(scores, on="sample_id")
    assert chosen["clip_similarity"].mean() > uniform["clip_similarity"].mean() + 0.1
    with pytest.raises(ValueError, match="no score frame carries it"):
        mix_pools({"caption": caption}, spec)


def test_token_unit_meets_token_targets_and_reports_both_ratios():
    rng = np.random.default_rng(0)
    pools = {
        "caption": pool("c", 400, tokens=(rng.integers(10, 40, 400) + 576).tolist()),
        "interleaved": pool("i", 60, tokens=rng.integers(1_000, 3_000, 60).tolist()),
        "text": pool("t", 200, tokens=rng.integers(200, 800, 200).tolist()),
    }
    result = mix_pools(pools, Mix(unit="tokens", budget=150_000))
    for kind, share in Mix().target_shares().items():
        row = result.report["kinds"][kind]
        assert row["realized_share_tokens"] == pytest.approx(share, abs=0.02)
        assert row["tokens"] == result.frame.filter(pl.col("kind") == kind)["tokens"].sum()
    assert result.report["totals"]["tokens"] == pytest.approx(150_000, rel=0.02)
    assert result.report["kinds"]["caption"]["realized_share_samples"] > 0.6  # short samples: many of them
    with pytest.raises(ValueError, match="no token count"):
        mix_pools({"caption": pool("c", 5)}, Mix(ratio={"caption": 1}, unit="tokens"))


def test_report_markdown_shows_targets_realized_shares_and_warnings():
    result = mix_pools(demo_like_pools(), Mix(budget=200))
    text = report_markdown(result.report)
    assert "| interleaved | 45.5% | 45.7% |" in text
    assert "**Warnings**" in text and "short by" in text
    assert "set by the interleaved pool" in report_markdown(mix_pools(demo_like_pools(), Mix()).report)
    empty = {kind: frame.clear() for kind, frame in demo_like_pools().items()}
    assert "no mixed kind has a sample" in report_markdown(mix_pools(empty, Mix()).report)


def test_checks_catch_strays_and_excess_repeats():
    pools = demo_like_pools()
    result = mix_pools(pools, Mix())
    assert every_sample_from_pool(result.frame, pools).passed
    stray = pl.DataFrame(
        {
            "sample_id": ["ffffffffffffffff"],
            "kind": ["text"],
            "shard_id": ["t-00000"],
            "repeat_index": [0],
            "tokens": [None],
        },
        schema=MIX_SCHEMA,
    )
    wrong_shard = result.frame.head(1).with_columns(pl.lit("elsewhere").alias("shard_id"))
    check = every_sample_from_pool(pl.concat([result.frame, stray, wrong_shard]), pools)
    assert not check.passed and check.metadata["strays"] == 2
    doubled = pl.concat(
        [result.frame, result.frame.head(1).with_columns(pl.lit(1, dtype=pl.Int32).alias("repeat_index"))]
    )
    check = repeats_within_max(doubled, {"caption": 1, "interleaved": 1, "text": 1})
    assert not check.passed and "beyond its kind's max_repeat" in check.description
    assert not repeats_within_max(pl.concat([result.frame, result.frame.head(1)]), {"caption": 2}).passed


def test_duplicate_ids_in_a_pool_are_an_error():
    caption = pool("c", 5)
    with pytest.raises(ValueError, match="more than once"):
        mix_pools({"caption": pl.concat([caption, caption.head(1)])}, Mix(ratio={"caption": 1}))


# --- properties -------------------------------------------------------------------------------


@PROPERTY
@given(
    old=st.integers(1, 300),
    added=st.integers(1, 100),
    budget=st.integers(1, 250),
    seed=st.integers(0, 2**32),
    weighted=st.booleans(),
)
def test_adding_a_shard_only_displaces_what_its_rows_outrank(old, added, budget, seed, weighted):
    before = pool("s", old, shards=3)
    new_rows = pool(f"new{seed}", added).with_columns(pl.lit("new-shard").alias("shard_id"))
    after = pl.concat([before, new_rows])
    scores = after.select("sample_id", pl.Series("score", np.random.default_rng(seed).random(after.height)))
    spec = Mix(
        ratio={"caption": 1},
        budget=budget,
        seed=seed,
        when_short="keep_budget",
        weight_by={"caption": "score"} if weighted else {},
    )
    first = {sid for sid, _ in drawn(mix_pools({"caption": before}, spec, scores=scores).frame, "caption")}
    second = {sid for sid, _ in drawn(mix_pools({"caption": after}, spec, scores=scores).frame, "caption")}
    weights = scores["score"].to_numpy() if weighted else None
    key = dict(zip(after["sample_id"], priority_keys(id_hashes(after["sample_id"]), seed, weights)))
    old_ids = set(before["sample_id"])
    entered = second - old_ids
    displaced = first - second
    assert second & old_ids <= first  # no old sample enters because a shard was added
    assert len(displaced) == max(0, len(entered) - (len(second) - len(first)))  # one out per one in
    if displaced and entered:  # ... and only the old samples that the new ones outrank
        assert max(key[sid] for sid in entered) < min(key[sid] for sid in displaced)
    assert all(key[sid] < min(key[d] for d in displaced) for sid in first - displaced) if displaced else True


@PROPERTY
@given(
    sizes=st.tuples(st.integers(0, 400), st.integers(0, 400), st.integers(0, 400)),
    ratio=st.tuples(st.integers(0, 10), st.integers(0, 10), st.integers(1, 10)),
    repeats=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
    budget=st.one_of(st.none(), st.integers(1, 3_000)),
    when_short=st.sampled_from(["keep_ratio", "keep_budget"]),
)
def test_ratio_repeats_and_provenance_hold_for_any_pools(sizes, ratio, repeats, budget, when_short):
    kinds = ("caption", "interleaved", "text")
    pools = {kind: pool(kind[0], size, shards=4) for kind, size in zip(kinds, sizes)}
    spec = Mix(
        ratio=dict(zip(kinds, ratio)), max_repeat=dict(zip(kinds, repeats)), budget=budget, when_short=when_short
    )
    result = mix_pools(pools, spec)
    limits = dict(zip(kinds, repeats))
    assert repeats_within_max(result.frame, limits).passed
    assert every_sample_from_pool(result.frame, pools).passed
    total = result.frame.height
    shares = spec.target_shares()
    all_present = all(sizes[kinds.index(kind)] > 0 for kind in shares)
    if when_short == "keep_ratio" and all_present and total:
        for kind, share in shares.items():
            realized = result.report["kinds"][kind]["realized_share_samples"]
            assert abs(realized - share) <= 1 / total + 1e-6  # whole samples: off by at most one
        if total >= 1 / spec.tolerance:
            assert ratio_within_tolerance(result.report).passed
    if budget is not None and not result.report["warnings"]:
        assert total == budget


@PROPERTY
@given(small=st.integers(1, 500), extra=st.integers(0, 500), seed=st.integers(0, 1_000))
def test_a_larger_budget_draws_a_superset(small, extra, seed):
    caption = pool("n", 300)
    spec = Mix(ratio={"caption": 1}, max_repeat={"caption": 3}, seed=seed, when_short="keep_budget")
    low = drawn(mix_pools({"caption": caption}, spec.model_copy(update={"budget": small})).frame, "caption")
    high = drawn(mix_pools({"caption": caption}, spec.model_copy(update={"budget": small + extra})).frame, "caption")
    assert low <= high
