"""Global selection over stored scores and embeddings: dedup, coreset, importance resampling."""
