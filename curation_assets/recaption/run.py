"""Recaptioning one shard: who enters, new captions, their CLIP scores, and the keep decision."""

from __future__ import annotations

import numpy as np
import polars as pl

from curation_assets import registry as tables
from curation_assets.recaption.decisions import entrants, recaption_table
from curation_assets.report.recaptions import recaption_counts, recaption_panel
from curation_assets.selection.filters import resolve, rules_of
from curation_assets.shard_work import ShardWork, computes
from curation_assets.table_spec import TableOutput


def copies_within_shard(normalized: pl.DataFrame) -> pl.DataFrame:
    """sample_id -> duplicate_of: the shard's first sample with the same image bytes (null for it).

    Only this shard: dedup across shards is a global decision, and a global input here would re-run
    recaptioning on every shard whenever any shard changed. Copies in other shards are recaptioned
    and then removed by dedup, like any pair."""
    first = pl.col("sample_id").first().over("image_sha256", order_by="sample_id")
    return normalized.select("sample_id", pl.when(first != pl.col("sample_id")).then(first).alias("duplicate_of"))


@computes(tables.RECAPTIONED)
def recaptioned_table(work: ShardWork) -> TableOutput:
    from curation_assets.recaption.generate import candidate_similarities, generate_candidates

    spec = work.recipe.recaption
    # Image conditions are plain numbers (the recipe refuses percentiles there).
    image_rules = resolve(rules_of(spec.image_conditions), quantile=None)
    columns = {spec.band.field_key, "clip_similarity", *(rule.column for rule in image_rules)}
    normalized = work.normalized.select("sample_id", "caption", "image_ref")
    scores = normalized.join(work.score_columns(columns), on="sample_id", how="left")
    if tables.DEDUP.name in work.reads:
        scores = scores.join(
            work.read(tables.DEDUP.name).select("sample_id", "duplicate_of"), on="sample_id", how="left"
        )
    entered = entrants(scores, spec, image_rules)
    work.log(f"{work.shard_id}: {entered.height} of {normalized.height} pairs enter recaptioning")

    captioner, clip = work.model("captioner"), work.model("clip")
    candidates = generate_candidates(
        work.shard, entered, captioner, work.recipe.models.captioner, work.batch_settings("captioner"), work.progress
    )
    stored = work.read(tables.CLIP_EMBEDDINGS.name).select("sample_id", "image_embedding")
    image_embeddings = entered.select("sample_id").join(stored, on="sample_id", how="left")["image_embedding"]
    similarities = candidate_similarities(
        clip, image_embeddings.to_numpy().astype(np.float32), candidates, work.batch_settings("clip").batch_size
    )
    frame = recaption_table(entered, candidates, similarities, spec.keep_min_score, captioner.identity)
    meaningful = not (captioner.random_init or clip.random_init)
    counts = recaption_counts(frame)[1]
    panel = recaption_panel(frame, shard_images(work.shard, normalized))
    return TableOutput(
        frame, f"{captioner.identity} + {clip.identity}", meaningful, notes=counts, panels={"before and after": panel}
    )


def shard_images(shard, rows: pl.DataFrame):
    """image_bytes(sample_ids) over one shard's rows (sample_id, image_ref), for report thumbnails."""
    from curation_assets.image_source import iter_image_bytes

    def image_bytes(sample_ids):
        wanted = rows.filter(pl.col("sample_id").is_in(list(sample_ids)))
        ids = wanted["sample_id"].to_list()
        return {ids[position]: data for position, data in iter_image_bytes(shard, wanted["image_ref"].to_list())}

    return image_bytes
