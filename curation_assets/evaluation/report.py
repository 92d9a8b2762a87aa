"""The proxy eval's report as people read it: curated vs random vs all, per eval set, with the spread."""

from __future__ import annotations

from collections.abc import Mapping

SHOWN_METRICS = ("mean_r@1", "mean_r@5", "mean_r@10")
# The comparison reads left to right: the data, its equal-size baseline, everything, the shuffled control.
READING_ORDER = ("curated", "random", "all", "curated_shuffled")


def in_reading_order(pools: Mapping) -> list:
    """(pool, results) pairs, the compared pools first in READING_ORDER, any others after by name."""
    rank = {pool: index for index, pool in enumerate(READING_ORDER)}
    return sorted(pools.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


def comparison_markdown(report: Mapping) -> str:
    """One table per eval set: a row per pool (pairs trained, mean ± std of each shown metric), the
    chance level, then the sensitivity verdict."""
    blocks = []
    for eval_name, pools in report["results"].items():
        chance = report["eval_sets"][eval_name]["chance"]
        header = ["pool", "pairs trained", *SHOWN_METRICS]
        lines = [f"**{eval_name}** ({report['eval_sets'][eval_name]['images']} images)", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        for pool, metrics in in_reading_order(pools):
            trained = report["pools"].get(pool, {}).get("pairs_trained", "")
            cells = [f"{metrics[m]['mean']:.3f} ± {metrics[m]['std']:.3f}" for m in SHOWN_METRICS]
            lines.append("| " + " | ".join([pool, str(trained), *cells]) + " |")
        lines.append("| " + " | ".join(["chance", "", *(f"{chance[m]:.3f}" for m in SHOWN_METRICS)]) + " |")
        blocks.append("\n".join(lines))
    sensitivity = report.get("sensitivity")
    if sensitivity:
        verdict = "passed" if sensitivity["passed"] else "FAILED"
        blocks.append(f"Sensitivity {verdict}: {sensitivity['message']}")
    return "\n\n".join(blocks)


def comparison_lines(report: Mapping, metric: str = "mean_r@5") -> list[str]:
    """One line per eval set: `pool mean ± std` for every pool, and chance (the demo summary)."""
    lines = []
    for eval_name, pools in report["results"].items():
        cells = ", ".join(
            f"{pool} {m[metric]['mean']:.3f} ± {m[metric]['std']:.3f}" for pool, m in in_reading_order(pools)
        )
        chance = report["eval_sets"][eval_name]["chance"][metric]
        lines.append(f"{eval_name} {metric}: {cells} (chance {chance:.3f})")
    return lines
