"""The proxy eval as an external script speaking Dagster Pipes: the eval asset runs it with
PipesSubprocessClient (PipesK8sClient on a cluster), exactly like any external trainer.

Reads its parameters from the Pipes extras:
    pools:            {name: [pair bundle paths]}   candidate pools (first = sensitivity pool)
    unfiltered:       [pair bundle paths] or null   for the random and all baselines
    eval_sets:        {name: [pair bundle paths]}
    evaluation:       the recipe's `evaluation` section as a dict
    fingerprint:      the recipe fingerprint recorded with the metrics
    report_path:      optional; the full JSON report is also written there
    sensitivity_check: optional check name (default proxy_sensitivity)

Reports one materialization (every metric's mean and std as numeric metadata, the fingerprint) and
the sensitivity check, only after everything has run: a failure reports nothing. Of Dagster it
imports dagster_pipes only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dagster_pipes import open_dagster_pipes

SENSITIVITY_CHECK = "proxy_sensitivity"


def _no_encoders():
    raise RuntimeError("the Pipes proxy reads pair bundles only; export features before calling it")


def main() -> int:
    with open_dagster_pipes() as pipes:
        # Heavy imports inside the session, so an import error is reported through Pipes too.
        from curation_assets.evaluation.history import materialization_metadata
        from curation_assets.evaluation.pools import load_pairs
        from curation_assets.evaluation.protocol import run_proxy_eval
        from curation_assets.evaluation.settings import Evaluation

        extras = pipes.extras
        settings = Evaluation.model_validate(extras.get("evaluation") or {})
        pools = {name: load_pairs(name, paths, _no_encoders) for name, paths in extras["pools"].items()}
        eval_sets = {name: load_pairs(name, paths, _no_encoders) for name, paths in extras["eval_sets"].items()}
        unfiltered = load_pairs("unfiltered", extras["unfiltered"], _no_encoders) if extras.get("unfiltered") else None
        pipes.log.info(
            f"proxy eval: pools {', '.join(f'{n} ({len(p)} pairs)' for n, p in pools.items())}; "
            f"eval sets {', '.join(f'{n} ({len(s)} pairs)' for n, s in eval_sets.items())}"
        )
        report = run_proxy_eval(pools, eval_sets, settings, unfiltered=unfiltered, log=pipes.log.info)
        if extras.get("report_path"):
            Path(extras["report_path"]).write_text(json.dumps(report, indent=2))
        fingerprint = str(extras.get("fingerprint", "unknown"))
        pipes.report_asset_materialization(metadata=materialization_metadata(report, fingerprint))
        sensitivity = report["sensitivity"]
        pipes.report_asset_check(
            check_name=extras.get("sensitivity_check", SENSITIVITY_CHECK),
            passed=bool(sensitivity["passed"]),
            severity="ERROR" if settings.sensitivity.severity == "error" else "WARN",
            metadata={
                "message": sensitivity["message"],
                **{k: float(sensitivity[k]) for k in ("clean_mean", "clean_std", "shuffled_mean", "shuffled_std")},
                "margin": float(sensitivity["margin"]),
                "spread": float(sensitivity["spread"]),
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
