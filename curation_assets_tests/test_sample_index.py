"""The sample index (pure): shards re-read only when their inputs move; quarantine summaries ride along."""

import polars as pl

from curation_assets.report import quarantine_funnel
from curation_assets.sample_index import ShardNotReady, quarantine_rows, quarantine_summary, refresh_index

SCHEMA = {"sample_id": pl.String, "shard_id": pl.String, "score": pl.Float32}


def rows(shard, n):
    return pl.DataFrame({"sample_id": [f"{shard}-{i}" for i in range(n)], "shard_id": shard, "score": 0.5})


def test_only_shards_whose_inputs_moved_are_read_and_removed_shards_leave():
    read = []

    def gather(shard):
        read.append(shard)
        return rows(shard, 2)

    first = refresh_index(None, None, {"a": "1", "b": "1"}, gather, SCHEMA)
    assert read == ["a", "b"] and first.samples.height == 4
    read.clear()
    second = refresh_index(first.samples, first.shards, {"a": "1", "b": "2", "c": "1"}, gather, SCHEMA)
    assert read == ["b", "c"] and second.refreshed == ["b", "c"]
    assert (
        second.version
        == refresh_index(first.samples, first.shards, {"a": "1", "b": "2", "c": "1"}, gather, SCHEMA).version
    )
    third = refresh_index(second.samples, second.shards, {"a": "1"}, gather, SCHEMA)
    assert third.removed == ["b", "c"] and set(third.samples["shard_id"]) == {"a"}


def test_a_shard_not_ready_keeps_its_previous_rows_and_says_why():
    first = refresh_index(None, None, {"a": "1"}, lambda s: rows(s, 3), SCHEMA)

    def not_ready(shard):
        raise ShardNotReady("no nsfw table yet")

    second = refresh_index(first.samples, first.shards, {"a": "2"}, not_ready, SCHEMA)
    assert second.waiting == {"a": "no nsfw table yet"} and second.samples.height == 3
    assert second.version == first.version


def test_a_change_in_quarantine_alone_changes_the_version_and_is_reported():
    quarantine = pl.DataFrame({"reason": ["empty_text", "empty_text", "undecodable_image"], "detail": ["x", "w", "y"]})
    summary = quarantine_summary(quarantine)
    assert summary == '{"empty_text": [2, "w"], "undecodable_image": [1, "y"]}'
    before = refresh_index(None, None, {"a": "1"}, lambda s: rows(s, 2), SCHEMA, lambda s: summary)
    after = refresh_index(
        None, None, {"a": "1"}, lambda s: rows(s, 2), SCHEMA, lambda s: quarantine_summary(quarantine.head(1))
    )
    assert before.version != after.version  # same valid rows, another quarantine: the reports must follow

    counted = quarantine_rows(before.shards)
    assert counted.to_dicts() == [
        {"shard_id": "a", "reason": "empty_text", "rows": 2, "example": "w"},
        {"shard_id": "a", "reason": "undecodable_image", "rows": 1, "example": "y"},
    ]
    # The funnel reads the same from the counted rows as from the rows themselves.
    row_level = quarantine.with_columns(pl.lit("a").alias("shard_id"))
    assert quarantine_funnel(counted, {"a": 2})[0] == quarantine_funnel(row_level, {"a": 2})[0]


def test_an_index_of_an_older_layout_is_rebuilt_not_mixed():
    old_shards = pl.DataFrame({"shard_id": ["a"], "inputs": ["1"], "version": ["v"], "rows": [2]})
    refreshed = refresh_index(rows("a", 2).cast(SCHEMA), old_shards, {"a": "1"}, lambda s: rows(s, 2), SCHEMA)
    assert refreshed.refreshed == ["a"] and "quarantined" in refreshed.shards.columns
