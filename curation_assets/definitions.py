"""The code location: `dagster dev` and `dg` load `defs` from here."""

import warnings
from typing import Any

from dagster import BetaWarning, Definitions, PipesSubprocessClient, PreviewWarning, in_process_executor

# Partitioned asset checks (one check per shard) are a preview feature and backfill policies (several
# shards per run, so a model loads once per run) a beta one in dagster 1.13. We rely on both
# knowingly; the warnings would only be noise in every run's log.
warnings.filterwarnings("ignore", category=PreviewWarning)
warnings.filterwarnings("ignore", category=BetaWarning)

from curation_assets import registry  # noqa: E402 - after the warning filters
from curation_assets.defs.analysis import build_analysis_asset  # noqa: E402
from curation_assets.defs.automation import AUTOMATION_SENSOR  # noqa: E402
from curation_assets.defs.branches import build_branch_assets  # noqa: E402
from curation_assets.defs.checks import build_checks  # noqa: E402
from curation_assets.defs.curated import build_curated_assets  # noqa: E402
from curation_assets.defs.eval import build_eval_assets  # noqa: E402
from curation_assets.defs.ingest import build_ingest_assets  # noqa: E402
from curation_assets.defs.jobs import GLOBAL_JOB, INGEST_JOBS, SCORE_JOBS  # noqa: E402
from curation_assets.defs.mix import build_mix_assets  # noqa: E402
from curation_assets.defs.models import model_resources, proxy_encoder_resources, runtime_from_environment  # noqa: E402
from curation_assets.defs.raw import RAW_SHARDS, SHARD_SETS  # noqa: E402
from curation_assets.defs.reaper import reap_dead_runs_sensor  # noqa: E402
from curation_assets.defs.resources import DataRootResource  # noqa: E402
from curation_assets.defs.sample_index import build_samples_asset  # noqa: E402
from curation_assets.defs.selection import build_selection_assets  # noqa: E402
from curation_assets.defs.sensors import NEW_SHARD_SENSORS  # noqa: E402
from curation_assets.defs.shard_assets import build_shard_tables_asset  # noqa: E402
from curation_assets.recipe import Recipe, load_recipe  # noqa: E402


def build_definitions(data_root: str | None = None, recipe: Recipe | None = None, **model_runtime: Any) -> Definitions:
    """All definitions over one data root (default: $CURATION_DATA_ROOT or ./data) and one recipe
    (default: $CURATION_RECIPE or the packaged default). `model_runtime` (device, batch_size,
    num_workers, half_precision) applies to every model resource, over what the environment sets
    (CURATION_DEVICE, CURATION_HALF_PRECISION)."""
    recipe = recipe or load_recipe()
    model_runtime = {**runtime_from_environment(), **model_runtime}
    ingest = recipe.ingest.model_dump()
    resource = DataRootResource(url=data_root, ingest=ingest) if data_root else DataRootResource(ingest=ingest)
    return Definitions(
        assets=[
            *RAW_SHARDS,
            *SHARD_SETS,
            *build_ingest_assets(recipe),
            *(build_shard_tables_asset(step, recipe) for step in registry.per_shard_steps(recipe)),
            *(build_samples_asset(recipe, kind) for kind in registry.CHAINS),
            *build_branch_assets(recipe),
            build_analysis_asset(recipe),
            *build_selection_assets(recipe),
            *build_curated_assets(recipe),
            *build_mix_assets(recipe),
            *build_eval_assets(recipe),
        ],
        asset_checks=build_checks(recipe),
        # One process per run, not per step: under the daemon each step process imported torch and
        # loaded its model again (a 28-row shard: 67 s in steps out of 330 s of runs). Steps of a run
        # share the process's loaded models; parallelism comes from concurrent runs (shards, pools).
        # A cluster swaps in k8s_job_executor (one pod per step, GPU requests from op tags).
        executor=in_process_executor,
        jobs=[*INGEST_JOBS.values(), *SCORE_JOBS.values(), GLOBAL_JOB],
        sensors=[*NEW_SHARD_SENSORS, AUTOMATION_SENSOR, reap_dead_runs_sensor],
        resources={
            "data_root": resource,
            **model_resources(recipe, **model_runtime),
            **proxy_encoder_resources(recipe, **model_runtime),
            # Runs the proxy eval script and the recipe's external train/eval command (PipesK8sClient on a
            # cluster: see README, "Eval results").
            "pipes": PipesSubprocessClient(),
        },
    )


defs = build_definitions()
