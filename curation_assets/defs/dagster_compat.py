"""The few Dagster internals this project needs, imported in one place.

Each is internal API in dagster 1.13 (the version DESIGN.md's facts were checked on);
test_dagster_compat pins the version so an upgrade shows up here first.
"""

from dagster._core.definitions.asset_checks.asset_check_evaluation import (  # noqa: F401 - re-exported
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.definitions.data_version import (  # noqa: F401 - re-exported
    CODE_VERSION_TAG,
    DATA_VERSION_TAG,
    CachingStaleStatusResolver,
    StaleStatus,
)
from dagster._core.definitions.data_version import get_input_data_version_tag as input_data_version_tag  # noqa: F401
from dagster._core.definitions.data_version import get_input_event_pointer_tag as input_event_pointer_tag  # noqa: F401
from dagster._core.events import DagsterEventType  # noqa: F401 - re-exported
from dagster._core.loader import LoadingContextForTest  # noqa: F401 - re-exported

CHECKED_DAGSTER = "1.13"
