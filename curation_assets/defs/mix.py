"""The pretraining mix and its exports: token counts, the mix (with its report and checks), and every
export of it. Global assets over the three curated pools; the logic is in mix/ and exports/.

Why the image copies run inside the one exports asset rather than as a partition per source shard:
a per-shard asset downstream of the mix would be stale on every shard whenever the mix changes (one
new shard changes it), so automation would start a step per shard to find nothing to copy. Here the
exports step opens only the shards whose mixed images are not in the store yet; the store still
keeps one folder and one manifest per source shard, and copies each image once.
"""

import time

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from curation_assets import registry
from curation_assets.defs.keys import asset_key
from curation_assets.defs.metadata import markdown_table
from curation_assets.defs.resources import DataRootResource
from curation_assets.defs.shard_assets import asset_spec_kwargs
from curation_assets.exports.files import sweep_staging
from curation_assets.exports.steps import IMAGE_KINDS, export_mix, export_source_shard, prune_store
from curation_assets.mix.checks import every_sample_from_pool, ratio_within_tolerance, repeats_within_max
from curation_assets.mix.draw import mix_pools, mix_version
from curation_assets.mix.pools import read_pool
from curation_assets.mix.report import report_markdown
from curation_assets.mix.tokens import load_tokenizer, refresh_token_counts
from curation_assets.recipe import Recipe
from curation_assets.sources import SourceKind
from curation_assets.table_store import TableStore, payload_version

TOKEN_COUNTS, MIX, MIX_REPORT, EXPORTS = (
    registry.TOKEN_COUNTS,
    registry.MIX_TABLE,
    registry.MIX_REPORT,
    registry.EXPORTS,
)
CAPTION, INTERLEAVED, TEXT = SourceKind.caption, SourceKind.interleaved, SourceKind.text
# What each kind's token count reads from its pool, and what its exports read.
COUNTED_COLUMNS = {CAPTION: ["caption"], INTERLEAVED: ["texts", "num_images"], TEXT: ["text"]}
EXPORTED_COLUMNS = {
    CAPTION: ["caption", "image_ref", "image_sha256", "caption_source", "original_caption"],
    INTERLEAVED: ["texts", "images"],
    TEXT: ["text"],
}
PROGRESS_SECONDS = 10


def build_token_counts_asset(recipe: Recipe):
    spec = recipe.mix
    profile = recipe.models.profile
    counted_with = recipe.fingerprint("models.profile", "mix.tokenizer", "mix.image_tokens")

    @asset(**asset_spec_kwargs(TOKEN_COUNTS, recipe), kinds={"polars", "parquet"})
    def token_counts(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        pools = {kind.value: read_pool(store, kind, columns) for kind, columns in COUNTED_COLUMNS.items()}
        previous = store.read(TOKEN_COUNTS) if store.exists(TOKEN_COUNTS) else None
        refreshed = refresh_token_counts(
            pools, previous, counted_with, lambda: load_tokenizer(spec.tokenizer, profile), spec.image_tokens
        )
        store.write(TOKEN_COUNTS, refreshed.frame)
        per_kind = refreshed.frame.group_by("kind").agg(
            pl.len().alias("samples"), pl.col("tokens").sum(), pl.col("tokens").mean().round(1).alias("mean_tokens")
        )
        return MaterializeResult(
            data_version=DataVersion(payload_version(refreshed.frame.select("sample_id", "tokens").rows())),
            metadata={
                "dagster/row_count": refreshed.frame.height,
                "counted": refreshed.counted,
                "reused": refreshed.reused,
                "tokenizer": spec.tokenizer
                if profile != "smoke"
                else f"{spec.tokenizer} (smoke: offline tiny tokenizer)",
                "per_kind": MetadataValue.md(markdown_table(per_kind.sort("kind"))),
            },
        )

    return token_counts


def weight_scores(store: TableStore, recipe: Recipe) -> pl.DataFrame | None:
    """sample_id and each `mix.weight_by` column, from the sample indexes (one frame for all kinds)."""
    frames = []
    for kind, column in recipe.mix.weight_by.items():
        index = registry.CHAINS[kind].index
        frames.append(store.read(index, columns=["sample_id", column]))
    return pl.concat(frames, how="diagonal_relaxed") if frames else None


def build_mix_asset(recipe: Recipe):
    spec = recipe.mix

    @asset(**asset_spec_kwargs(MIX, recipe), kinds={"polars", "parquet"})
    def mix(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        pools = {kind.value: read_pool(store, kind, []) for kind in SourceKind}
        counts = store.read(TOKEN_COUNTS, columns=["sample_id", "kind", "tokens"])
        tokens = {kind: counts.filter(pl.col("kind") == kind).drop("kind") for kind in pools}
        result = mix_pools(pools, spec, tokens, weight_scores(store, recipe))
        store.write(MIX, result.frame)
        store.write_json(MIX_REPORT, result.report)
        for warning in result.report["warnings"]:
            context.log.warning(warning)
        kinds = result.report["kinds"]
        return MaterializeResult(
            data_version=DataVersion(mix_version(result.frame)),
            metadata={
                "dagster/row_count": result.frame.height,
                "report": MetadataValue.md(report_markdown(result.report)),
                "warnings": len(result.report["warnings"]),
                # Numbers, so the UI plots them over materializations.
                **{f"{kind}_share_samples": row["realized_share_samples"] for kind, row in kinds.items()},
                **{
                    f"{kind}_share_tokens": row["realized_share_tokens"]
                    for kind, row in kinds.items()
                    if row["realized_share_tokens"] is not None
                },
                **{f"{kind}_samples": row["samples"] for kind, row in kinds.items()},
                "tokens": result.report["totals"]["tokens"],
                "path": MetadataValue.path(str(store.path(MIX))),
            },
        )

    return mix


def build_mix_checks(recipe: Recipe) -> list:
    spec = recipe.mix
    limits = {kind: spec.repeat_limit(kind) for kind in spec.target_shares()}

    @asset_check(
        name="ratio_within_tolerance",
        asset=asset_key(MIX),
        description=f"every kind's realized share within mix.tolerance ({spec.tolerance:.0%}) of its target, "
        f"counted in {spec.unit}",
    )
    def ratio_within_tolerance_check(data_root: DataRootResource) -> AssetCheckResult:
        return _result(ratio_within_tolerance(data_root.store().read_json(MIX_REPORT)), AssetCheckSeverity.WARN)

    @asset_check(
        name="every_sample_from_a_curated_pool",
        asset=asset_key(MIX),
        description="every mixed row is a sample of its kind's curated pool, from the shard it names",
        blocking=True,
    )
    def every_sample_from_a_curated_pool(data_root: DataRootResource) -> AssetCheckResult:
        store = data_root.store()
        pools = {kind.value: read_pool(store, kind, []) for kind in SourceKind}
        return _result(every_sample_from_pool(store.read(MIX), pools), AssetCheckSeverity.ERROR)

    @asset_check(
        name="repeats_within_max_repeat",
        asset=asset_key(MIX),
        description=f"no sample appears more than its kind's mix.max_repeat ({limits})",
        blocking=True,
    )
    def repeats_within_max_repeat(data_root: DataRootResource) -> AssetCheckResult:
        return _result(repeats_within_max(data_root.store().read(MIX), limits), AssetCheckSeverity.ERROR)

    return [ratio_within_tolerance_check, every_sample_from_a_curated_pool, repeats_within_max_repeat]


def _result(outcome, severity: AssetCheckSeverity) -> AssetCheckResult:
    return AssetCheckResult(
        passed=outcome.passed, severity=severity, description=outcome.description, metadata=_plain(outcome.metadata)
    )


def _plain(metadata: dict) -> dict:
    """Check metadata the UI accepts: numbers and text as they are, anything nested as JSON."""
    return {k: v if isinstance(v, int | float | str) else MetadataValue.json(v) for k, v in metadata.items()}


def build_exports_asset(recipe: Recipe):
    spec = recipe.exports
    caption_scores = [column for column in registry.SAMPLES.column_names if column in _analysed(SourceKind.caption)]

    @asset(**asset_spec_kwargs(EXPORTS, recipe), kinds={"json", "parquet"})
    def exports(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        root = store.folder(EXPORTS)
        swept = sweep_staging(root)
        if swept:
            context.log.warning(f"removed {len(swept)} staging files of an interrupted export, e.g. {swept[0]}")
        mix = store.read(MIX)
        mixed_shards = {
            kind: mix.filter(pl.col("kind") == kind.value)["shard_id"].unique().sort().to_list() for kind in SourceKind
        }
        # Only the rows of mixed shards: at scale much of a pool may sit in shards the mix does not draw.
        pools = {kind.value: read_pool(store, kind, EXPORTED_COLUMNS[kind], mixed_shards[kind]) for kind in SourceKind}
        images = _copy_images(context, data_root, mix, pools, mixed_shards, root)
        scores = store.read(registry.SAMPLES, columns=["sample_id", *caption_scores]) if caption_scores else None
        started = time.perf_counter()
        results = export_mix(root, mix, pools, spec, scores)
        pruned = prune_store(root, mix)
        summary = {
            name: {
                "manifest": f"manifests/{name}.json",
                "counts": result.manifest["counts"],
                "files": [entry["path"] for entry in result.manifest["files"]],
                "sha256": [entry["sha256"] for entry in result.manifest["files"]],
            }
            for name, result in results.items()
        }
        path = store.write_json(EXPORTS, {"exports": summary})
        changes = pl.DataFrame(
            [
                {
                    "export": name,
                    "samples": result.manifest["counts"].get("samples", 0),
                    "files": len(result.manifest["files"]),
                    "written": len(result.written),
                    "unchanged": len(result.unchanged),
                    "removed": len(result.removed),
                }
                for name, result in results.items()
            ]
        )
        return MaterializeResult(
            data_version=DataVersion(payload_version(summary)),
            metadata={
                "exports": MetadataValue.md(markdown_table(changes, rows=10)),
                "root": MetadataValue.path(str(root)),
                "index": MetadataValue.path(str(path)),
                "images_copied": images["copied"],
                "images_reused": images["reused"],
                "image_mb_copied": round(images["bytes_copied"] / 1e6, 3),
                "images_pruned": sum(pruned.values()),
                "files_written": sum(len(result.written) for result in results.values()),
                "global_files_seconds": round(time.perf_counter() - started, 3),
            },
        )

    return exports


def _analysed(kind: SourceKind) -> set[str]:
    return {column for columns in registry.analysed_columns(kind).values() for column in columns}


def _copy_images(context, data_root: DataRootResource, mix, pools, mixed_shards, root) -> dict:
    """Step 1 of the export for every source shard with mixed images; a shard whose images are all in
    the store is not opened. Progress goes to the run log every few seconds."""
    totals = {"copied": 0, "reused": 0, "bytes_copied": 0, "shards_opened": 0}
    work = [(kind, shard) for kind in SourceKind if kind.value in IMAGE_KINDS for shard in mixed_shards[kind]]
    started = last = time.perf_counter()
    for done, (kind, shard_id) in enumerate(work, start=1):
        pool = pools[kind.value].filter(pl.col("shard_id") == shard_id)
        copied = export_source_shard(data_root.shard_file(kind, shard_id), pool, mix, root)
        totals["copied"] += copied.copied
        totals["reused"] += copied.reused
        totals["bytes_copied"] += copied.bytes_copied
        totals["shards_opened"] += int(copied.copied > 0)
        if time.perf_counter() - last > PROGRESS_SECONDS:
            last = time.perf_counter()
            context.log.info(
                f"images: {done}/{len(work)} source shards, {totals['copied']} copied "
                f"({totals['bytes_copied'] / 1e6 / (last - started):.1f} MB/s), {totals['reused']} already there"
            )
    return totals


def build_mix_assets(recipe: Recipe) -> list:
    return [build_token_counts_asset(recipe), build_mix_asset(recipe), build_exports_asset(recipe)]
