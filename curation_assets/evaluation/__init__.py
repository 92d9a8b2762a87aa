"""Eval results: a proxy eval that tells good training data from bad (DataComp's protocol, made small).

Frozen pretrained encoders turn each sample into features once (stored per shard); comparing
candidate pools then costs only training two linear heads per pool and seed with a fixed step and
batch budget, and scoring retrieval on named eval sets. Nothing here imports Dagster: the Dagster
layer wires these functions into assets, and `pipes_proxy.py` is the same proxy as an external
script talking Dagster Pipes.

Kept import-free on purpose: `recipe.py` imports `evaluation.settings`, which must not pull in torch.
"""
