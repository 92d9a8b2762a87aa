"""Selectors chained over the kept pool: which rows survive, and which selector dropped the rest."""

import numpy as np
import polars as pl
import pytest

from curation_assets.recipe import Selectors
from curation_assets.selection.selectors import load_target_texts, select, topk_indices

POOL = pl.DataFrame(
    {
        "sample_id": [f"s{i}" for i in range(8)],
        "shard_id": ["a"] * 4 + ["b"] * 4,
        "caption": ["a red car on a road", "a dog in a park", "a red bus on a road", "a cat on a sofa",
                    "a blue car on a road", "a bird in a tree", "a red truck on a road", "a fish in a bowl"],
    }
)  # fmt: skip
SCORES = np.array([0.1, 0.9, np.nan, 0.5, 0.7, 0.3, 0.8, 0.2])


def no_embeddings():
    raise AssertionError("embeddings were not needed")


def test_topk_by_score_keeps_the_highest_and_treats_missing_as_worst():
    spec = Selectors.model_validate({"topk_specified_field_selector": {"field_key": "clip_similarity", "topk": 3}})
    report = select(POOL, spec, lambda name: SCORES, no_embeddings, lambda: [])
    assert report.frame.filter(pl.col("selected"))["sample_id"].to_list() == ["s1", "s4", "s6"]
    assert set(report.frame.filter(~pl.col("selected"))["dropped_by"]) == {"topk_specified_field_selector"}


def test_topk_ascending_and_by_ratio():
    spec = Selectors.model_validate(
        {"topk_specified_field_selector": {"field_key": "aesthetics", "top_ratio": 0.25, "reverse": False}}
    )
    assert topk_indices(np.array([5.0, 1.0, 3.0, 0.5]), spec.topk_specified_field_selector).tolist() == [3]


def test_selectors_chain_in_order_and_dsir_reports_kl(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("a red car on a road\na red van on a road\na red bike on a road\n")
    spec = Selectors.model_validate(
        {
            "topk_specified_field_selector": {"field_key": "clip_similarity", "top_ratio": 0.75},
            "dsir_selector": {"target": str(target), "fraction": 0.5, "num_buckets": 256},
        }
    )
    report = select(
        POOL, spec, lambda name: SCORES, no_embeddings, lambda: load_target_texts(spec.dsir_selector, tmp_path)
    )
    chosen = report.frame.filter(pl.col("selected"))
    assert chosen.height == 3  # 8 -> top 6 -> half of them
    assert report.notes["dsir_kl_after"] < report.notes["dsir_kl_before"]
    assert sum("road" in c for c in POOL.join(chosen, on="sample_id")["caption"]) >= 2  # pulled toward the target
    assert set(report.frame["dropped_by"].drop_nulls()) == {"topk_specified_field_selector", "dsir_selector"}


def test_coreset_selector_uses_embeddings():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(8, 16)).astype("float32")
    spec = Selectors.model_validate({"coreset_selector": {"fraction": 0.5, "num_clusters": 2}})
    report = select(POOL, spec, lambda name: SCORES, lambda: vectors, lambda: [])
    assert report.frame["selected"].sum() == 4


def test_missing_dsir_target_says_where_it_looked(tmp_path):
    spec = Selectors.model_validate({"dsir_selector": {"target": "nope.jsonl", "fraction": 0.5}})
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        load_target_texts(spec.dsir_selector, tmp_path)
