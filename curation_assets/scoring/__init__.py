"""Per-shard scores: the model and model-free computations of every score table, and the analysis
users read before choosing thresholds."""
