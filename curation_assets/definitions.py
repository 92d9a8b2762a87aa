"""The code location: `dagster dev` and `dg` load `defs` from here."""

import warnings

from dagster import Definitions, PreviewWarning

# Partitioned asset checks (one accounting check per shard) are a preview feature in dagster 1.13;
# we rely on them knowingly, so the warning would only be noise in every run's log.
warnings.filterwarnings("ignore", category=PreviewWarning)

from curation_assets.defs.checks import INGEST_CHECKS  # noqa: E402
from curation_assets.defs.ingest import INGEST_ASSETS  # noqa: E402
from curation_assets.defs.jobs import INGEST_JOBS  # noqa: E402
from curation_assets.defs.raw import RAW_SHARDS  # noqa: E402
from curation_assets.defs.resources import DataRootResource  # noqa: E402
from curation_assets.defs.sensors import NEW_SHARD_SENSORS  # noqa: E402



def build_definitions(data_root: str | None = None) -> Definitions:
    """All definitions over one data root (default: $CURATION_DATA_ROOT or ./data)."""
    resource = DataRootResource(url=data_root) if data_root else DataRootResource()
    return Definitions(
        assets=[*RAW_SHARDS, *INGEST_ASSETS],
        asset_checks=INGEST_CHECKS,
        jobs=list(INGEST_JOBS.values()),
        sensors=NEW_SHARD_SENSORS,
        resources={"data_root": resource},
    )


defs = build_definitions()
