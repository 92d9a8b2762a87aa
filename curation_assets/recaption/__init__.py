"""Recaptioning: which pairs enter, which new caption wins, and whether it replaces the original."""
