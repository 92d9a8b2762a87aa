"""The proxy report as people read it: pools in reading order, the spread and chance beside them."""

from curation_assets.evaluation.report import comparison_lines, comparison_markdown


def metric(mean, std):
    return {"mean": mean, "std": std, "per_seed": [mean - std, mean + std]}


def report():
    pools = {
        name: {m: metric(mean, 0.01) for m in ("mean_r@1", "mean_r@5", "mean_r@10")}
        for name, mean in (("all", 0.6), ("curated_shuffled", 0.4), ("extra", 0.3), ("random", 0.5), ("curated", 0.7))
    }
    return {
        "results": {"coco": pools},
        "eval_sets": {"coco": {"images": 30, "chance": {"mean_r@1": 0.03, "mean_r@5": 0.16, "mean_r@10": 0.33}}},
        "pools": {"curated": {"pairs_trained": 36}, "random": {"pairs_trained": 36}, "all": {"pairs_trained": 116}},
        "sensitivity": {"passed": False, "message": "clean 0.7 vs shuffled 0.69"},
    }


def test_lines_read_curated_random_all_then_the_rest():
    [line] = comparison_lines(report())
    order = [line.index(f" {pool} ") for pool in ("curated", "random", "all", "curated_shuffled", "extra")]
    assert order == sorted(order)
    assert "curated 0.700 ± 0.010" in line and line.endswith("(chance 0.160)")


def test_markdown_has_a_row_per_pool_with_pairs_trained_and_the_verdict():
    text = comparison_markdown(report())
    rows = [row for row in text.splitlines() if row.startswith("| ") and row.split(" | ")[0] not in ("| pool", "| ---")]
    assert [row.split(" | ")[0][2:] for row in rows] == [
        "curated",
        "random",
        "all",
        "curated_shuffled",
        "extra",
        "chance",
    ]
    assert rows[2].split(" | ")[1] == "116"
    assert "Sensitivity FAILED: clean 0.7 vs shuffled 0.69" in text
