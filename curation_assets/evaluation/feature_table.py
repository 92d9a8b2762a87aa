"""The per-shard proxy feature table (caption/proxy_features), computed like any score table: frozen
image and caption features of every normalized pair of the shard, once."""

from __future__ import annotations

from curation_assets import registry
from curation_assets.shard_work import ShardWork, computes
from curation_assets.table_spec import TableOutput

ENCODERS = next(iter(registry.PROXY_FEATURES.resources))


@computes(registry.PROXY_FEATURES)
def proxy_features_table(work: ShardWork) -> TableOutput:
    from curation_assets.evaluation.features import shard_features

    encoders = work.model(ENCODERS)
    table = work.normalized.select("sample_id", "caption", "image_ref", "image_sha256")
    features = shard_features(
        work.shard, table, encoders, work.batch_settings(ENCODERS).num_workers, progress=work.progress
    )
    # Both default encoders ship real pretrained weights, in the smoke profile too.
    return TableOutput(features.drop("produced_by"), encoders.identity, meaningful=True)
