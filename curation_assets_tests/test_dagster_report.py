"""The curator's view on the real graph: the entries a curator reads first, and a what-if answer that
agrees with what materializing the same edit decides."""

import polars as pl
from dagster import AssetRecordsFilter

from curation_assets import registry
from curation_assets.definitions import build_definitions
from curation_assets.defs.local_runner import run_automation
from curation_assets.report import funnel_steps
from curation_assets.selection.thresholds import from_payload
from curation_assets.table_store import TableStore
from curation_assets.whatif import what_if
from curation_assets_tests.helpers import FAST_MODELS, key, read_table, smoke_recipe


def latest_metadata(instance, name, partition=None):
    partitions = [partition] if partition else None
    [record] = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key(name), asset_partitions=partitions), limit=1
    ).records
    return record.asset_materialization.metadata


def test_the_analysis_page_shows_every_score_with_its_bounds_and_the_funnels(settled):
    root, instance = settled
    metadata = latest_metadata(instance, "score_analysis")
    scores = [column for columns in registry.analysed_columns(registry.CAPTION).values() for column in columns]
    for column in scores:
        assert "svg" in metadata[column].value, column
    rules = from_payload(TableStore(root).read_json(registry.SELECTION_THRESHOLDS)["rules"])
    for rule in rules:
        if rule.lower is not None or rule.upper is not None:
            assert f"`{rule.op}` drops" in metadata[rule.column].value
    # The funnel on the first page is the one caption/filtered decided.
    decisions = read_table(root, "filtered")
    kept = int(decisions["kept"].sum())
    assert f"**{kept:,}**" in metadata["funnel"].value
    assert "rows read" in metadata["quarantined"].value
    for per_shard in ("quarantined_per_shard", "funnel_per_shard"):
        assert "| shard_id" in metadata[per_shard].value

    filtered = latest_metadata(instance, "filtered")
    assert filtered["dagster/row_count"].value == decisions.height  # every row is decided there
    assert "data:image/png;base64," in filtered["near the bounds"].value
    assert "data:image/png;base64," in filtered["duplicate groups"].value
    assert "| group" in latest_metadata(instance, "dedup")["groups"].value


def test_recaptions_show_before_and_after_on_their_shard(settled):
    root, instance = settled
    recaptioned = read_table(root, "recaptioned", shard := sorted(read_table(root, "filtered")["shard_id"])[0])
    metadata = latest_metadata(instance, "recaptioned", shard)
    assert metadata["entered"].value == recaptioned.height
    # The partition's row count is its own shard's, not the run's total over every shard it covered.
    assert metadata["dagster/row_count"].value == recaptioned.height
    assert metadata["shards_in_run"].value > 1 and metadata["run_rows"].value > recaptioned.height
    assert metadata["kept"].value == int(recaptioned["kept"].sum())
    assert "before and after" in metadata


def test_what_if_agrees_with_materializing_the_same_edit(settled):
    root, instance = settled
    edited = smoke_recipe()
    edited = edited.model_copy(
        update={
            "filters": type(edited)
            .model_validate(
                {
                    "filters": [
                        {"image_text_similarity_filter": {"min_score": "p40"}},
                        {"words_num_filter": {"min_num": 6}},
                    ]
                }
            )
            .filters
        }
    )
    answer = what_if(TableStore(root), edited)
    run_automation(instance, build_definitions(str(root), edited, **FAST_MODELS), log=lambda _: None)
    decisions = read_table(root, "filtered")
    assert answer.kept == int(decisions["kept"].sum())
    rules = from_payload(TableStore(root).read_json(registry.SELECTION_THRESHOLDS)["rules"])
    assert answer.steps.equals(funnel_steps(decisions, rules))
    assert (
        answer.decisions.sort("sample_id")
        .select("sample_id", "kept", "drop_rule")
        .equals(decisions.sort("sample_id").select("sample_id", "kept", "drop_rule"))
    )
    assert pl.Series(answer.rules).len() == len(rules)
