"""A whole proxy run on synthetic pools: baselines of equal size and compute, contamination, the
sensitivity check, the report layout and the history built from it."""

import json

import numpy as np
import pytest

from curation_assets.evaluation.history import history_markdown, history_table, materialization_metadata
from curation_assets.evaluation.pools import concat
from curation_assets.evaluation.protocol import run_proxy_eval
from curation_assets.evaluation.sensitivity import sensitivity_check, shuffled_view
from curation_assets.evaluation.settings import Evaluation
from curation_assets.evaluation.synthetic import synthetic_pairs

SETTINGS = Evaluation.model_validate(
    {"proxy": {"steps": 120, "batch_size": 64, "seeds": [0, 1, 2], "embed_dim": 32, "learning_rate": 3e-3}}
)


def test_shuffled_view_moves_the_asked_share_of_captions_to_other_images():
    groups = np.repeat(np.arange(40), 5)  # COCO-like: five captions per image
    view = shuffled_view(groups, 0.5, seed=3)
    assert np.array_equal(view.image_rows, np.arange(200))
    moved = view.text_rows != np.arange(200)
    assert moved.sum() == 100
    assert (groups[view.text_rows[moved]] != groups[moved]).all()  # never another caption of the same photo
    assert sorted(view.text_rows.tolist()) == list(range(200))  # captions are moved, not duplicated
    assert np.array_equal(view.text_rows, shuffled_view(groups, 0.5, seed=3).text_rows)
    assert not np.array_equal(view.text_rows, shuffled_view(groups, 0.5, seed=4).text_rows)


def test_sensitivity_passes_only_beyond_the_seed_spread():
    passed = sensitivity_check(np.array([0.60, 0.62, 0.58]), np.array([0.40, 0.45, 0.35]), "mean_r@5", 0.5)
    assert passed.passed and passed.margin == pytest.approx(0.2) and passed.spread == pytest.approx(0.07)
    overlapping = sensitivity_check(np.array([0.60, 0.70, 0.50]), np.array([0.55, 0.65, 0.45]), "mean_r@5", 0.5)
    assert not overlapping.passed
    assert "cannot tell" in overlapping.message
    with pytest.raises(ValueError, match="two seeds"):
        sensitivity_check(np.array([0.6]), np.array([0.4, 0.5]), "mean_r@5", 0.5)


@pytest.fixture(scope="module")
def run():
    # The unfiltered pool: 150 good pairs plus 150 whose captions belong to other images. The
    # curated pool is the good half; two training pairs are copies of eval samples.
    # Noise 4 keeps recall well below 1, so differences between pools show.
    good = synthetic_pairs("good", 150, seed=1, noise=4.0)
    bad = synthetic_pairs("bad", 150, seed=2, noise=4.0)
    bad = type(bad)(
        "bad",
        bad.sample_ids,
        bad.captions,
        bad.image_sha256,
        bad.image_phash,
        bad.images,
        np.roll(bad.texts, 7, axis=0),
    )
    eval_set = synthetic_pairs("eval", 60, captions_per_image=2, seed=3, noise=4.0)
    leaked = eval_set.take(np.array([0, 2]), name="curated")
    curated = concat("curated", [good, leaked])
    unfiltered = concat("unfiltered", [good, bad])
    report = run_proxy_eval({"curated": curated}, {"synthetic": eval_set}, SETTINGS, unfiltered=unfiltered)
    return report, curated, unfiltered


def test_report_reads_curated_vs_random_vs_all_with_the_spread(run):
    report, curated, unfiltered = run
    results = report["results"]["synthetic"]
    assert set(results) == {"curated", "random", "all", "curated_shuffled"}
    for pool in results.values():
        assert set(pool["mean_r@5"]) == {"mean", "std", "per_seed"} and len(pool["mean_r@5"]["per_seed"]) == 3
        assert set(pool) >= {"i2t_r@1", "i2t_r@5", "i2t_r@10", "t2i_r@1", "t2i_r@5", "t2i_r@10"}
    score = {name: results[name]["mean_r@5"]["mean"] for name in results}
    # Clean data beats the unfiltered pool (half its captions wrong) whole or sampled to equal size.
    spread = results["curated"]["mean_r@5"]["std"]
    assert score["curated"] > score["all"] + spread + results["all"]["mean_r@5"]["std"]
    assert score["curated"] > score["random"] + spread + results["random"]["mean_r@5"]["std"]
    assert score["curated"] > score["curated_shuffled"]
    json.dumps(report)  # JSON-ready as is


def test_baselines_get_equal_size_and_the_same_compute(run):
    report, curated, unfiltered = run
    pools = report["pools"]
    assert pools["curated"]["pairs_trained"] == len(curated) - 2  # the two leaked eval pairs removed
    assert pools["random"]["pairs_trained"] == pools["curated"]["pairs_trained"]
    assert pools["all"]["pairs_trained"] == len(unfiltered)
    assert pools["curated_shuffled"]["pairs_trained"] == pools["curated"]["pairs_trained"]
    protocol = report["protocol"]
    assert protocol["batch_size"] == 64 and protocol["steps"] == 120
    # Same steps x batch for everyone: epochs differ only by pool size.
    assert pools["all"]["epochs"] == pytest.approx(120 * 64 / len(unfiltered), abs=1e-3)


def test_contamination_is_counted_per_pool(run):
    report, _, _ = run
    curated = report["pools"]["curated"]["contamination"]
    assert curated["removed"] == 2 and curated["by_image_sha256"] == 2 and curated["by_caption"] == 2
    assert report["pools"]["unfiltered"]["contamination"]["removed"] == 0


def test_sensitivity_check_is_in_the_report(run):
    report, _, _ = run
    check = report["sensitivity"]
    assert check["pool"] == "curated" and check["metric"] == "mean_r@5"
    assert check["passed"] is True and check["margin"] > check["spread"]


def test_batch_size_is_capped_by_the_smallest_pool_for_everyone():
    small = synthetic_pairs("curated", 40, seed=5)
    report = run_proxy_eval(
        {"curated": small},
        {"e": synthetic_pairs("e", 20, seed=6)},
        SETTINGS.model_copy(update={"proxy": SETTINGS.proxy.model_copy(update={"steps": 10})}),
        unfiltered=synthetic_pairs("u", 300, seed=7),
    )
    assert report["protocol"]["batch_size"] == 40 and report["protocol"]["configured_batch_size"] == 64


def test_reserved_pool_names_and_missing_inputs_are_refused():
    pairs = synthetic_pairs("x", 10)
    with pytest.raises(ValueError, match="reserved"):
        run_proxy_eval({"random": pairs}, {"e": pairs}, SETTINGS)
    with pytest.raises(ValueError, match="no eval set"):
        run_proxy_eval({"curated": pairs}, {}, SETTINGS)


def test_history_lists_recipe_versions_and_what_each_scored(run):
    report, _, _ = run
    first = materialization_metadata(report, "aaa111")
    assert first["recipe_fingerprint"] == "aaa111"
    assert isinstance(first["synthetic/curated/mean_r@5"], float)
    assert first["synthetic/curated/mean_r@5_std"] >= 0
    assert first["contamination/curated/removed"] == 2 and first["sensitivity/passed"] is True
    better = json.loads(json.dumps(report))
    better["results"]["synthetic"]["curated"]["mean_r@5"]["mean"] = 0.99
    second = materialization_metadata(better, "bbb222")
    table = history_table([(200.0, second), (100.0, first)])
    curated = table.filter((table["pool"] == "curated") & (table["metric"] == "mean_r@5"))
    assert curated["fingerprint"].to_list() == ["aaa111", "bbb222"]  # oldest first
    assert curated["mean"].to_list()[1] == 0.99
    view = history_markdown(table)
    lines = view.splitlines()
    assert "synthetic/curated" in lines[2] and "synthetic/random" in lines[2]
    assert lines[4].startswith("| aaa111") and lines[5].startswith("| bbb222") and "0.990 ±" in lines[5]


def test_cli_reads_eval_sets_and_training_settings_from_a_recipe(tmp_path, capsys):
    from curation_assets.evaluation.cli import main

    (tmp_path / "evals").mkdir()
    synthetic_pairs("eval", 40, captions_per_image=2, seed=3, noise=4.0).to_frame().write_parquet(
        tmp_path / "evals" / "e.parquet"
    )
    synthetic_pairs("curated", 120, seed=1, noise=4.0).to_frame().write_parquet(tmp_path / "curated.parquet")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "evaluation:\n"
        "  eval_sets: {held_out: {path: evals/e.parquet}}\n"
        "  proxy: {steps: 40, batch_size: 32, seeds: [5, 6], embed_dim: 16}\n"
        "  sensitivity: {severity: error, shuffle_fraction: 0.5}\n"
    )
    code = main(["--pool", f"curated={tmp_path / 'curated.parquet'}", "--recipe", str(recipe), "--seeds", "5,6,7"])
    report = json.loads(capsys.readouterr().out)
    assert list(report["results"]) == ["held_out"]
    assert report["protocol"]["steps"] == 40 and report["protocol"]["seeds"] == [5, 6, 7]  # flag beats recipe
    assert set(report["results"]["held_out"]) == {"curated", "curated_shuffled"}  # no unfiltered pool given
    assert code == (0 if report["sensitivity"]["passed"] else 1)  # severity error: a failed check fails the CLI
