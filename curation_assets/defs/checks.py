"""Asset checks: every row of every shard is accounted for, every score table covers its shard, every
valid row is decided. The rules are pure functions (invariants.py); these wire them."""

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, asset_check

from curation_assets import registry
from curation_assets.defs.keys import asset_key
from curation_assets.defs.partitions import SHARD_PARTITIONS
from curation_assets.defs.resources import DataRootResource
from curation_assets.invariants import account_for_rows, coverage_problems, decision_problems, kept_fraction
from curation_assets.readers import count_source_rows
from curation_assets.recipe import Recipe
from curation_assets.sources import SourceKind
from curation_assets.table_spec import TableSpec


def build_rows_accounted_check(kind: SourceKind):
    normalized, quarantine = registry.NORMALIZED[kind], registry.QUARANTINE[kind]

    @asset_check(
        name="rows_accounted_for",
        asset=asset_key(normalized),
        additional_deps=[asset_key(quarantine)],
        partitions_def=SHARD_PARTITIONS[kind],
        description=(
            "Rows in the shard (counted from file metadata, lines or tar headers, not by the reader) "
            "equal valid rows plus quarantined rows, with no sample id twice."
        ),
        blocking=True,
    )
    def rows_accounted_for(context: AssetCheckExecutionContext, data_root: DataRootResource) -> AssetCheckResult:
        store = data_root.store()
        per_shard = [
            account_for_rows(
                shard_id,
                count_source_rows(data_root.shard_file(kind, shard_id)),
                store.read(normalized, shard_id, ["sample_id"])["sample_id"],
                store.read(quarantine, shard_id, ["sample_id"])["sample_id"],
            )
            for shard_id in context.partition_keys
        ]
        failures = [row for row in per_shard if not row.balanced]
        totals = {
            name: sum(getattr(row, name) for row in per_shard)
            for name in ("rows_in", "valid", "quarantined", "unaccounted", "duplicate_sample_ids")
        }
        description = (
            f"{totals['rows_in']} rows in, {totals['valid']} valid + {totals['quarantined']} quarantined = "
            f"{totals['valid'] + totals['quarantined']}"
        )
        if failures:
            description += "; mismatched shards: " + ", ".join(row.describe() for row in failures)
        return AssetCheckResult(
            passed=not failures,
            severity=AssetCheckSeverity.ERROR,
            description=description,
            metadata={**totals, "shards": len(per_shard)},
        )

    return rows_accounted_for


def build_coverage_check(spec: TableSpec):
    """A score table must hold exactly one row per valid row of its shard, with every declared score set."""
    normalized = registry.NORMALIZED[spec.kind]

    @asset_check(
        name="covers_every_valid_row",
        asset=asset_key(spec),
        additional_deps=[asset_key(normalized)],
        partitions_def=SHARD_PARTITIONS[spec.kind],
        description="Same sample ids as the shard's normalized table, no missing or NaN values.",
        blocking=True,
    )
    def covers_every_valid_row(context: AssetCheckExecutionContext, data_root: DataRootResource) -> AssetCheckResult:
        store = data_root.store()
        problems = [
            problem
            for shard_id in context.partition_keys
            if (
                problem := coverage_problems(
                    shard_id,
                    store.read(spec, shard_id),
                    store.read(normalized, shard_id, ["sample_id"])["sample_id"],
                    [column.name for column in spec.all_columns],
                )
            )
        ]
        return AssetCheckResult(
            passed=not problems,
            severity=AssetCheckSeverity.ERROR,
            description="; ".join(problems) or f"{len(context.partition_keys)} shard(s) fully covered",
        )

    return covers_every_valid_row


def build_selection_checks(recipe: Recipe) -> list:
    filtered, normalized = registry.FILTERED, registry.NORMALIZED[registry.CAPTION]
    bounds = recipe.checks.kept_fraction

    @asset_check(
        name="every_row_decided",
        asset=asset_key(filtered),
        additional_deps=[asset_key(normalized)],
        partitions_def=SHARD_PARTITIONS[filtered.kind],
        description="kept + dropped = valid input rows, each once, and every drop has a rule and a value.",
        blocking=True,
    )
    def every_row_decided(context: AssetCheckExecutionContext, data_root: DataRootResource) -> AssetCheckResult:
        store = data_root.store()
        problems = [
            problem
            for shard_id in context.partition_keys
            if (
                problem := decision_problems(
                    shard_id, store.read(filtered, shard_id), store.read(normalized, shard_id)["sample_id"]
                )
            )
        ]
        return AssetCheckResult(
            passed=not problems, description="; ".join(problems) or "every row decided and explained"
        )

    @asset_check(
        name="kept_fraction_within_bounds",
        asset=asset_key(filtered),
        partitions_def=SHARD_PARTITIONS[filtered.kind],
        description=f"The share of rows kept lies in [{bounds.min}, {bounds.max}] (recipe checks.kept_fraction).",
        blocking=bounds.severity == "error",
    )
    def kept_fraction_within_bounds(
        context: AssetCheckExecutionContext, data_root: DataRootResource
    ) -> AssetCheckResult:
        store = data_root.store()
        fractions = {shard: kept_fraction(store.read(filtered, shard, ["kept"])) for shard in context.partition_keys}
        outside = [
            f"{shard}: {value:.3f}" for shard, value in fractions.items() if not bounds.min <= value <= bounds.max
        ]
        return AssetCheckResult(
            passed=not outside,
            severity=AssetCheckSeverity.ERROR if bounds.severity == "error" else AssetCheckSeverity.WARN,
            description=("kept fraction outside the recipe's bounds: " + ", ".join(outside))
            if outside
            else "within bounds",
        )

    return [every_row_decided, kept_fraction_within_bounds]


def build_checks(recipe: Recipe) -> list:
    return [
        *(build_rows_accounted_check(kind) for kind in SourceKind),
        *(build_coverage_check(spec) for spec in registry.SCORE_TABLES),
        *build_selection_checks(recipe),
    ]
