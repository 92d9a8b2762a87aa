"""The Dagster layer: partitions, resources, assets, checks, jobs and sensors that wire the pure logic."""
