"""The few Dagster internals this project needs, imported in one place.

Each is internal API in dagster 1.13 (the version DESIGN.md's facts were checked on);
test_dagster_compat pins the version so an upgrade shows up here first.
"""

from dagster._core.definitions.data_version import (  # noqa: F401 - re-exported
    DATA_VERSION_TAG,
    CachingStaleStatusResolver,
    StaleStatus,
)
from dagster._core.loader import LoadingContextForTest  # noqa: F401 - re-exported

CHECKED_DAGSTER = "1.13"
