"""Asset checks: every row of every shard is accounted for, every score table covers its shard, every
valid row is decided. The rules are pure functions (invariants.py); these wire them."""

import polars as pl
from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetRecordsFilter,
    Output,
    asset_check,
)

from curation_assets import registry
from curation_assets.defs.dagster_compat import AssetCheckEvaluationTargetMaterializationData
from curation_assets.defs.keys import asset_key
from curation_assets.defs.partitions import SHARD_PARTITIONS
from curation_assets.defs.resources import DataRootResource
from curation_assets.invariants import account_for_rows, coverage_problems, decision_problems
from curation_assets.readers import count_source_rows
from curation_assets.recipe import Recipe
from curation_assets.sources import SourceKind
from curation_assets.table_spec import TableSpec


def per_shard_evaluations(
    context: AssetCheckExecutionContext, key, name: str, problems: dict[str, str | None], metadata: dict[str, dict]
):
    """One check result per shard, even from a run over a range of shards.

    A check returns one result per run, so a run over 32 shards recorded 32 SKIPPED results and one
    unpartitioned one. Each shard's result is recorded instead, against that shard's latest
    materialization (without that link the UI shows no result). The check op's own output follows.

    A failure blocks what follows only in a one-shard run: in a range run, Dagster would block every
    shard's downstream steps for one bad shard. There, the bad shard stays out of the global tables
    because the sample index applies the same rules before it takes a shard in."""
    blocking = len(problems) == 1
    for shard, problem in problems.items():
        record = context.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=[shard]), limit=1
        ).records
        target = (
            AssetCheckEvaluationTargetMaterializationData(
                storage_id=record[0].storage_id, run_id=record[0].run_id, timestamp=record[0].timestamp
            )
            if record
            else None
        )
        yield AssetCheckEvaluation(
            asset_key=key,
            check_name=name,
            partition=shard,
            passed=problem is None,
            severity=AssetCheckSeverity.ERROR,
            blocking=blocking,
            description=problem or "ok",
            metadata=metadata.get(shard, {}),
            target_materialization_data=target,
        )
    yield Output(None)


def build_rows_accounted_check(kind: SourceKind):
    normalized, quarantine = registry.NORMALIZED[kind], registry.QUARANTINE[kind]

    @asset_check(
        name="rows_accounted_for",
        asset=asset_key(normalized),
        additional_deps=[asset_key(quarantine)],
        partitions_def=SHARD_PARTITIONS[kind],
        description=(
            "Rows in the shard (counted by a route independent of its reader) equal valid rows plus "
            "quarantined rows, with no sample id twice."
        ),
        blocking=True,
    )
    def rows_accounted_for(context: AssetCheckExecutionContext, data_root: DataRootResource):
        store = data_root.store()
        accounts = {
            shard_id: account_for_rows(
                shard_id,
                count_source_rows(data_root.shard_file(kind, shard_id)),
                store.read(normalized, shard_id, ["sample_id"])["sample_id"],
                store.read(quarantine, shard_id, ["sample_id"])["sample_id"],
            )
            for shard_id in context.partition_keys
        }
        problems = {
            shard: None
            if account.balanced
            else f"{account.rows_in} rows in, {account.valid} valid + {account.quarantined} quarantined: "
            f"{account.describe()}"
            for shard, account in accounts.items()
        }
        metadata = {
            shard: {
                "rows_in": a.rows_in,
                "valid": a.valid,
                "quarantined": a.quarantined,
                "unaccounted": a.unaccounted,
                "duplicate_sample_ids": a.duplicate_sample_ids,
            }
            for shard, a in accounts.items()
        }
        yield from per_shard_evaluations(context, asset_key(normalized), "rows_accounted_for", problems, metadata)

    return rows_accounted_for


def expected_ids(spec: TableSpec, normalized: pl.DataFrame) -> pl.Series:
    """The ids a score table of a shard must hold: its valid samples, or their images or text elements."""
    if spec.id_column == "sample_id":
        return normalized["sample_id"]
    from curation_assets.scoring.interleaved_tables import unit_ids

    return unit_ids(spec.id_column, normalized)


def build_coverage_check(spec: TableSpec):
    """A score table must hold exactly one row per valid row (or image, or text element) of its shard,
    with every declared score set."""
    normalized = registry.NORMALIZED[spec.kind]

    @asset_check(
        name="covers_every_valid_row",
        asset=asset_key(spec),
        additional_deps=[asset_key(normalized)],
        partitions_def=SHARD_PARTITIONS[spec.kind],
        description=f"Same {spec.id_column}s as the shard's normalized table holds, no missing or NaN values.",
        blocking=True,
    )
    def covers_every_valid_row(context: AssetCheckExecutionContext, data_root: DataRootResource):
        store = data_root.store()
        problems = {
            shard_id: coverage_problems(
                shard_id,
                store.read(spec, shard_id),
                expected_ids(spec, store.read(normalized, shard_id)),
                [column.name for column in spec.all_columns if not column.nullable],
                spec.id_column,
            )
            if store.exists(spec, shard_id)
            else f"{shard_id}: no table; its computation failed (the asset's failed_shards metadata says why)"
            for shard_id in context.partition_keys
        }
        yield from per_shard_evaluations(context, asset_key(spec), "covers_every_valid_row", problems, {})

    return covers_every_valid_row


def build_selection_checks(recipe: Recipe) -> list:
    filtered = registry.FILTERED
    bounds = recipe.checks.kept_fraction

    @asset_check(
        name="kept_fraction_within_bounds",
        asset=asset_key(filtered),
        description=f"Each shard keeps a share of its pairs in [{bounds.min}, {bounds.max}] "
        "(recipe checks.kept_fraction).",
        blocking=bounds.severity == "error",
    )
    def kept_fraction_within_bounds(data_root: DataRootResource) -> AssetCheckResult:
        decisions = data_root.store().read(filtered, columns=["shard_id", "kept"])
        fractions = decisions.group_by("shard_id").agg(pl.col("kept").mean().alias("fraction")).sort("shard_id")
        outside = fractions.filter(~pl.col("fraction").is_between(bounds.min, bounds.max))
        listed = ", ".join(
            f"{row['shard_id']}: {row['fraction']:.3f}" for row in outside.head(20).iter_rows(named=True)
        )
        return AssetCheckResult(
            passed=outside.is_empty(),
            severity=AssetCheckSeverity.ERROR if bounds.severity == "error" else AssetCheckSeverity.WARN,
            description=f"{outside.height} shard(s) outside the recipe's bounds: {listed}"
            if listed
            else "within bounds",
            metadata={"shards_outside": outside.height, "shards": fractions.height},
        )

    return [kept_fraction_within_bounds]


def build_decision_check(kind: SourceKind):
    """Every row of the kind's index (a pair, a document) decided once, each drop explained; interleaved:
    every image too."""
    chain = registry.CHAINS[kind]
    filtered, index, images = chain.filtered, chain.index, chain.indexed_images

    @asset_check(
        name="every_row_decided",
        asset=asset_key(filtered),
        additional_deps=[asset_key(index)],
        description="kept + dropped = every indexed document (and image), each once, every drop with a rule and "
        "a value (checked per shard).",
        blocking=True,
    )
    def every_row_decided(data_root: DataRootResource) -> AssetCheckResult:
        store = data_root.store()
        levels = [(store.read(filtered), store.read(index, columns=["sample_id", "shard_id"]))]
        if images is not None:
            decided = store.read(chain.image_decisions).drop("sample_id")
            indexed = store.read(images, columns=["image_id", "shard_id"])
            levels.append((decided.rename({"image_id": "sample_id"}), indexed.rename({"image_id": "sample_id"})))
        problems = [
            problem
            for decisions, indexed in levels
            for (shard_id,), rows in indexed.group_by("shard_id", maintain_order=True)
            if (
                problem := decision_problems(
                    shard_id, decisions.filter(pl.col("shard_id") == shard_id), rows["sample_id"]
                )
            )
        ]
        problems += [
            f"{strays} decisions for rows the index does not hold"
            for decisions, indexed in levels
            if (strays := decisions.join(indexed, on="sample_id", how="anti").height)
        ]
        what = ["pairs" if kind is SourceKind.caption else "documents", "images"]
        rows = " and ".join(f"{decisions.height} {what[n]}" for n, (decisions, _) in enumerate(levels))
        return AssetCheckResult(
            passed=not problems,
            description="; ".join(problems[:20]) or f"{rows}, every one decided and explained",
            metadata={"problems": len(problems)},
        )

    return every_row_decided


def build_checks(recipe: Recipe) -> list:
    from curation_assets.defs.mix import build_mix_checks  # the mix's checks live beside its assets

    return [
        *(build_rows_accounted_check(kind) for kind in SourceKind),
        *(build_coverage_check(spec) for spec in registry.tables_in_use(recipe) if spec in registry.SCORE_TABLES),
        *build_selection_checks(recipe),
        *(build_decision_check(kind) for kind in SourceKind),
        *build_mix_checks(recipe),
    ]
