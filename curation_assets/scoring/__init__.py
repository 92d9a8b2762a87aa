"""Cheap, model-free scores (text statistics, perceptual and caption hashes) and the analysis users read before choosing thresholds."""
