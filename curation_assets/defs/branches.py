"""The global chains of the text and interleaved branches: thresholds, dedup, decisions, selection,
the curated pool (one file per shard) and the analysis page. Like the caption
branch's, they read the kind's sample index, never a model, so a threshold edit or a new shard
re-runs only these. The logic is selection/branch_decisions.py; these bodies read, call, write and
report."""

import polars as pl
from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset

from curation_assets import registry
from curation_assets.defs.metadata import markdown_table
from curation_assets.defs.partitions import shard_ids
from curation_assets.defs.resources import DataRootResource
from curation_assets.defs.selection import embeddings_of
from curation_assets.defs.shard_assets import asset_spec_kwargs
from curation_assets.recipe import Recipe
from curation_assets.report import filter_funnel, quarantine_funnel, score_panels
from curation_assets.sample_index import quarantine_rows
from curation_assets.scoring.analysis import score_summary, summary_markdown
from curation_assets.selection import branch_decisions as decisions
from curation_assets.selection.decisions import DECISION_SCHEMA
from curation_assets.selection.filters import ResolvedRule
from curation_assets.selection.interleaved_rules import curated_documents, images_left
from curation_assets.selection.thresholds import from_payload, percentile_columns, resolve_thresholds, to_payload
from curation_assets.sources import SourceKind
from curation_assets.table_store import TableStore, content_version, payload_version

TEXT, INTERLEAVED = SourceKind.text, SourceKind.interleaved


def _rule_levels(recipe: Recipe, kind: SourceKind) -> dict[str, list]:
    """Each decision level's recipe steps: text documents; interleaved images, then documents."""
    if kind is TEXT:
        return {"documents": recipe.text.filters}
    return {"images": recipe.interleaved.image_filters, "documents": recipe.interleaved.document_filters}


def _level_scores(store: TableStore, kind: SourceKind, level: str, columns, reassign: bool = False) -> pl.DataFrame:
    """The index rows a decision level reads (interleaved images with the similarity their rules judge)."""
    if level == "images":
        images = store.read(registry.CHAINS[INTERLEAVED].indexed_images)
        return decisions.judged_images(images, reassign)
    index = registry.CHAINS[kind].index
    return store.read(index, columns=[c for c in columns if c in index.column_names or c == "sample_id"])


def read_rules(store: TableStore, kind: SourceKind) -> dict[str, list[ResolvedRule]]:
    payload = store.read_json(registry.CHAINS[kind].thresholds)["rules"]
    return {level: from_payload(rules) for level, rules in payload.items()}


def build_thresholds_asset(recipe: Recipe, kind: SourceKind):
    spec = registry.CHAINS[kind].thresholds
    levels = _rule_levels(recipe, kind)
    reassign = recipe.interleaved.reassign_images

    @asset(**asset_spec_kwargs(spec, recipe), kinds={"polars"})
    def selection_thresholds(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        rules = {}
        for level, steps in levels.items():
            columns = sorted(percentile_columns(steps))
            scores = _level_scores(store, kind, level, ["sample_id", *columns], reassign) if columns else None
            rules[level] = to_payload(resolve_thresholds(steps, scores))
        path = store.write_json(spec, {"rules": rules, "recipe": recipe.source})
        shown = pl.DataFrame([{"level": level, **rule} for level, found in rules.items() for rule in found])
        return MaterializeResult(
            data_version=DataVersion(payload_version(rules)),
            metadata={"rules": MetadataValue.md(markdown_table(shown, rows=50)), "path": MetadataValue.path(str(path))},
        )

    return selection_thresholds


def build_dedup_asset(recipe: Recipe, kind: SourceKind):
    spec = registry.CHAINS[kind].dedup
    reads = spec.reads_under(recipe)

    @asset(**asset_spec_kwargs(spec, recipe), kinds={"polars", "parquet"})
    def dedup(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        if kind is TEXT:
            samples = store.read(
                registry.TEXT_SAMPLES,
                columns=["sample_id", "shard_id", *registry.TEXT_HASH.column_names, "minhash", decisions.TEXT_RANK_BY],
            )
            embeddings = None
            if recipe.text.dedup.semantic_deduplicator:
                shards = shard_ids(context, TEXT)
                embeddings = embeddings_of(
                    store, shards, samples["sample_id"], registry.TEXT_EMBEDDING, "text_embedding"
                )
            members = decisions.text_duplicates(samples, recipe.text.dedup, embeddings)
        else:
            caption_images = None
            if registry.CURATED.qualified_name in reads:
                pool = store.read(registry.CURATED, columns=["sample_id"])
                caption_images = pool.join(
                    store.read(registry.SAMPLES, columns=["sample_id", "image_sha256", "phash"]), on="sample_id"
                )
            images = decisions.judged_images(store.read(registry.CHAINS[INTERLEAVED].indexed_images), False)
            documents = store.read(registry.INTERLEAVED_SAMPLES, columns=["sample_id", "shard_id", "minhash"])
            members = decisions.interleaved_duplicates(documents, images, recipe.interleaved.dedup, caption_images)
        members = members.select(spec.column_names)
        store.write(spec, members)
        by_level = members.group_by("level", "method").len().sort("level", "len", descending=[False, True])
        return MaterializeResult(
            data_version=DataVersion(content_version(members, ["member_id", "group_id", "duplicate_of"])),
            metadata={
                "members_in_groups": members.height,
                "groups": members["group_id"].n_unique() if members.height else 0,
                "by_method": MetadataValue.md(markdown_table(by_level)),
            },
        )

    return dedup


def _decide(store: TableStore, kind: SourceKind, recipe: Recipe, rules: dict[str, list[ResolvedRule]]):
    """(document decisions, image decisions or None), exactly as kind/filtered stores them."""
    duplicates = store.read(registry.CHAINS[kind].dedup)
    documents = store.read(registry.CHAINS[kind].index)
    if kind is TEXT:
        return decisions.decide_texts(documents, rules["documents"], duplicates), None
    images = decisions.judged_images(
        store.read(registry.CHAINS[INTERLEAVED].indexed_images), recipe.interleaved.reassign_images
    )
    return decisions.decide_interleaved(documents, images, rules["images"], rules["documents"], duplicates)


def build_filtered_asset(recipe: Recipe, kind: SourceKind):
    spec = registry.CHAINS[kind].filtered

    @asset(**asset_spec_kwargs(spec, recipe), kinds={"polars", "parquet"})
    def filtered(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        rules = read_rules(store, kind)
        documents, images = _decide(store, kind, recipe, rules)
        store.write(spec, documents)
        kept = int(documents["kept"].sum())
        funnel, per_shard = filter_funnel(documents, rules["documents"])
        metadata = {
            "dagster/row_count": documents.height,  # every document is decided here, kept or not
            "kept": kept,
            "kept_fraction": round(kept / documents.height, 4) if documents.height else 0.0,
            "funnel": MetadataValue.md(funnel),
            "per_shard": MetadataValue.md(markdown_table(per_shard, rows=50)),
        }
        version = content_version(documents, ["sample_id", "kept", "drop_rule", "duplicate_of"])
        if images is not None:
            store.write(registry.CHAINS[INTERLEAVED].image_decisions, images)
            as_rows = images.drop("sample_id").rename({"image_id": "sample_id"})
            image_funnel, _ = filter_funnel(as_rows, rules["images"])
            metadata["images_kept"] = int(images["kept"].sum())
            metadata["image_funnel"] = MetadataValue.md(image_funnel)
            version += content_version(images, ["image_id", "kept", "matched_text_index"])
        return MaterializeResult(data_version=DataVersion(version[:48]), metadata=metadata)

    return filtered


def build_text_selected_asset(recipe: Recipe):
    from curation_assets.selection.selectors import load_target_texts
    from curation_assets.selection.text_selection import select_texts

    spec, dsir = registry.TEXT_SELECTED, recipe.text.selectors.dsir_selector

    @asset(**asset_spec_kwargs(spec, recipe), kinds={"polars", "parquet"})
    def selected(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        kept = store.read(registry.TEXT_FILTERED, columns=["sample_id", "shard_id", "kept"]).filter("kept")
        if dsir:
            texts = pl.concat(
                [
                    store.read(registry.NORMALIZED[TEXT], shard, ["sample_id", "text"])
                    for shard in kept["shard_id"].unique().sort()
                ]
            )
            kept = kept.join(texts, on="sample_id", how="left")
        else:
            kept = kept.with_columns(pl.lit("").alias("text"))
        report = select_texts(kept, dsir, lambda: load_target_texts(dsir, recipe.directory))
        store.write(spec, report.frame)
        return MaterializeResult(
            data_version=DataVersion(content_version(report.frame, ["sample_id", "selected"])),
            metadata={
                "dagster/row_count": int(report.frame["selected"].sum()),
                "kept_by_filters": report.frame.height,
                **{name: round(value, 6) for name, value in report.notes.items()},
            },
        )

    return selected


def build_curated_asset(recipe: Recipe, kind: SourceKind):
    spec = registry.CHAINS[kind].curated
    reassign = recipe.interleaved.reassign_images

    @asset(**asset_spec_kwargs(spec, recipe), kinds={"polars", "parquet"})
    def curated(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        if kind is TEXT:
            chosen = store.read(registry.TEXT_SELECTED, columns=["sample_id", "shard_id", "selected"])
            by_shard = chosen.filter("selected").partition_by("shard_id", as_dict=True)
        else:
            documents = store.read(registry.INTERLEAVED_FILTERED).partition_by("shard_id", as_dict=True)
            all_images = store.read(registry.CHAINS[INTERLEAVED].image_decisions)
            images, no_images = all_images.partition_by("shard_id", as_dict=True), all_images.clear()
        counts, versions = [], []
        # Every indexed shard gets its file (empty when nothing of it was kept); a shard that left the
        # index (removed, or failing until it is fixed) loses it.
        indexed = store.read(registry.CHAINS[kind].index_shards, columns=["shard_id"])["shard_id"].to_list()
        for shard in indexed:
            rows = store.read(registry.NORMALIZED[kind], shard)
            if kind is TEXT:
                ids = by_shard[(shard,)]["sample_id"] if (shard,) in by_shard else pl.Series([], dtype=pl.String)
                pool = rows.filter(pl.col("sample_id").is_in(ids.implode()))
            elif (shard,) not in documents:  # every row of the shard was quarantined
                pool = rows.clear().with_columns(pl.lit(None, pl.Int32).alias("num_images_dropped"))
            else:
                judged = images.get((shard,), no_images)
                matched = judged.select("image_id", "matched_text_index") if reassign else None
                pool = curated_documents(rows, judged, documents[(shard,)], matched)
            store.write(spec, pool.select("sample_id", *spec.column_names), shard)
            counts.append({"shard": shard, "documents": pool.height})
            versions.append(content_version(pool, ["sample_id", "texts"] if kind is INTERLEAVED else ["sample_id"]))
        _remove_others(store, spec, indexed)
        total = sum(row["documents"] for row in counts)
        return MaterializeResult(
            data_version=DataVersion(payload_version(sorted(versions))),
            metadata={
                "dagster/row_count": total,
                "by_shard": MetadataValue.md(markdown_table(pl.DataFrame(counts), rows=50)),
                "path": MetadataValue.path(str(store.folder(spec))),
            },
        )

    return curated


def _remove_others(store: TableStore, spec, shards: list[str]) -> None:
    folder = store.folder(spec)
    if not folder.exists():
        return
    for path in folder.iterdir():
        if path.name.endswith(".parquet") and path.name.removesuffix(".parquet") not in shards:
            path.unlink()


def build_analysis_asset(recipe: Recipe, kind: SourceKind):
    spec = registry.CHAINS[kind].analysis
    reassign = recipe.interleaved.reassign_images
    chain = registry.CHAINS[kind]
    analysed = [column for columns in registry.analysed_columns(kind).values() for column in columns]
    documents_columns = [column for column in analysed if column in chain.index.column_names]
    if kind is TEXT:
        levels = {"documents": documents_columns}
    else:  # images first, with the similarity their rules read; documents with what the images left
        images_columns = [column for column in analysed if column in chain.indexed_images.column_names]
        levels = {
            "images": [*images_columns, "clip_similarity"],
            "documents": [*documents_columns, "num_images_kept", "image_drop_ratio"],
        }

    @asset(**asset_spec_kwargs(spec, recipe), kinds={"polars", "svg"})
    def score_analysis(context: AssetExecutionContext, data_root: DataRootResource) -> MaterializeResult:
        store = data_root.store()
        rules = read_rules(store, kind)
        documents, images = _stored_decisions(store, kind)
        metadata, summaries = {}, []
        for level, columns in levels.items():
            counted = ["num_images"] if images is not None else []
            read = dict.fromkeys(["sample_id", "shard_id", *counted, *columns, *(rule.column for rule in rules[level])])
            scores = _level_scores(store, kind, level, list(read), reassign)
            if level == "documents" and images is not None:
                # What the image rules left, which the document rules read (known once images are decided).
                left = images_left(scores.select("sample_id", "num_images"), images)
                scores = scores.join(left, on="sample_id", how="left")
            summary = score_summary(scores, columns).with_columns(pl.lit(level).alias("level"))
            summaries.append(summary)
            prefix = "image " if level == "images" else ""
            for column, panel in score_panels(scores, columns, rules[level]).items():
                metadata[f"{prefix}{column}"] = MetadataValue.md(panel)
            metadata[f"{level}_quantiles"] = MetadataValue.md(summary_markdown(summary.drop("level")))
        summary = pl.concat(summaries, how="diagonal_relaxed")
        store.write(spec, summary)
        funnel, per_shard = filter_funnel(documents, rules["documents"])
        indexed = store.read(registry.CHAINS[kind].index_shards)
        quarantined, quarantined_per_shard = quarantine_funnel(
            quarantine_rows(indexed), dict(indexed.select("shard_id", "rows").iter_rows())
        )
        metadata |= {
            "documents": documents.height,
            "funnel": MetadataValue.md(funnel),
            "funnel_per_shard": MetadataValue.md(markdown_table(per_shard, rows=50)),
            "quarantined": MetadataValue.md(quarantined),
            "quarantined_per_shard": MetadataValue.md(markdown_table(quarantined_per_shard, rows=50)),
        }
        if images is not None:
            metadata["images"] = images.height
        return MaterializeResult(metadata=metadata)

    return score_analysis


def _stored_decisions(store: TableStore, kind: SourceKind) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    documents = store.read(registry.CHAINS[kind].filtered, columns=list(DECISION_SCHEMA))
    images = store.read(registry.CHAINS[INTERLEAVED].image_decisions) if kind is INTERLEAVED else None
    return documents, images


def build_branch_assets(recipe: Recipe) -> list:
    assets = [build_text_selected_asset(recipe)]
    for kind in (TEXT, INTERLEAVED):
        assets += [
            build_thresholds_asset(recipe, kind),
            build_dedup_asset(recipe, kind),
            build_filtered_asset(recipe, kind),
            build_curated_asset(recipe, kind),
            build_analysis_asset(recipe, kind),
        ]
    return assets
