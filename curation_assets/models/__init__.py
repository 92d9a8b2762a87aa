"""Model loading: real pretrained weights by name, URL or local path, and tiny smoke models.

Plain functions, no Dagster: the Dagster resources in `defs/models.py` call these once per process.
"""
