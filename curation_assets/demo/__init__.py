"""Deterministic demo data: synthetic shards in every supported layout, with planted defects."""

from .generate import MANIFEST_NAME, QUARANTINE_REASONS, generate_demo_data

__all__ = ["MANIFEST_NAME", "QUARANTINE_REASONS", "generate_demo_data"]
