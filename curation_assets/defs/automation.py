"""When Dagster's automation re-runs a derived table by itself."""

from dagster import AssetSelection, AutomationCondition, AutomationConditionSensorDefinition, DefaultSensorStatus


def on_new_data() -> AutomationCondition:
    """Like `AutomationCondition.eager()`, but an upstream counts as updated only when its *data
    version* changed, and a changed code version (a new model or threshold in the recipe) counts too.

    eager() fires on any new upstream materialization, so re-ingesting an unchanged shard would
    re-run every GPU table of it. With data versions (shard hash -> ingest -> scores), an edited
    shard re-runs only its own tables, an unchanged re-run re-runs nothing, a new shard is scored
    alone, and the global assets follow on a later tick once every shard is done.
    """
    return (
        AutomationCondition.in_latest_time_window()
        & (
            AutomationCondition.newly_missing()
            | AutomationCondition.any_deps_match(AutomationCondition.data_version_changed())
            | AutomationCondition.code_version_changed()
        ).since_last_handled()
        & ~AutomationCondition.any_deps_missing()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label("on_new_data")


# Dagster's default automation sensor starts stopped; ours runs as soon as `make ui` starts, so new
# shards ingested by the sensors are scored and the global assets follow without a click.
AUTOMATION_SENSOR = AutomationConditionSensorDefinition(
    "curation_automation",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Materializes what on_new_data asks for: new shards' tables, then the global assets.",
)
