"""The code location: `dagster dev` and `dg` load `defs` from here."""

import warnings
from typing import Any

from dagster import BetaWarning, Definitions, PreviewWarning

# Partitioned asset checks (one check per shard) are a preview feature and backfill policies (several
# shards per run, so a model loads once per run) a beta one in dagster 1.13. We rely on both
# knowingly; the warnings would only be noise in every run's log.
warnings.filterwarnings("ignore", category=PreviewWarning)
warnings.filterwarnings("ignore", category=BetaWarning)

from curation_assets.defs.analysis import caption_score_analysis  # noqa: E402
from curation_assets.defs.automation import AUTOMATION_SENSOR  # noqa: E402
from curation_assets.defs.caption_scores import CAPTION_TABLES  # noqa: E402
from curation_assets.defs.checks import INGEST_CHECKS, build_coverage_check  # noqa: E402
from curation_assets.defs.ingest import INGEST_ASSETS  # noqa: E402
from curation_assets.defs.jobs import GLOBAL_JOB, INGEST_JOBS, SCORE_JOBS  # noqa: E402
from curation_assets.defs.models import model_resources  # noqa: E402
from curation_assets.defs.raw import RAW_SHARDS  # noqa: E402
from curation_assets.defs.recaption import build_curated_assets, recaption_table_spec  # noqa: E402
from curation_assets.defs.resources import DataRootResource  # noqa: E402
from curation_assets.defs.selection import (  # noqa: E402
    build_dedup_asset,
    build_selected_asset,
    build_selection_assets,
    build_selection_checks,
)
from curation_assets.defs.sensors import NEW_SHARD_SENSORS  # noqa: E402
from curation_assets.defs.shard_assets import build_shard_table_asset  # noqa: E402
from curation_assets.defs.text_scores import TEXT_TABLES  # noqa: E402
from curation_assets.recipe import Recipe, load_recipe  # noqa: E402


def build_definitions(data_root: str | None = None, recipe: Recipe | None = None, **model_runtime: Any) -> Definitions:
    """All definitions over one data root (default: $CURATION_DATA_ROOT or ./data) and one recipe
    (default: $CURATION_RECIPE or the packaged default). `model_runtime` (device, batch_size,
    num_workers, half_precision) applies to every model resource."""
    recipe = recipe or load_recipe()
    resource = DataRootResource(url=data_root) if data_root else DataRootResource()
    score_tables = [*CAPTION_TABLES, *TEXT_TABLES]
    score_assets = [build_shard_table_asset(table, recipe) for table in score_tables]
    recaption_assets = (
        [build_shard_table_asset(recaption_table_spec(recipe), recipe)] if recipe.recaption.enabled else []
    )
    selection_assets = [
        *build_selection_assets(recipe),
        build_selected_asset(recipe),
        *([build_dedup_asset(recipe)] if recipe.dedup.enabled else []),
    ]
    return Definitions(
        assets=[
            *RAW_SHARDS,
            *INGEST_ASSETS,
            *score_assets,
            caption_score_analysis,
            *selection_assets,
            *recaption_assets,
            *build_curated_assets(recipe),
        ],
        asset_checks=[
            *INGEST_CHECKS,
            *(build_coverage_check(table) for table in score_tables),
            *build_selection_checks(recipe),
        ],
        jobs=[*INGEST_JOBS.values(), *SCORE_JOBS.values(), GLOBAL_JOB],
        sensors=[*NEW_SHARD_SENSORS, AUTOMATION_SENSOR],
        resources={"data_root": resource, **model_resources(recipe, **model_runtime)},
    )


defs = build_definitions()
