"""The pretraining mix: which curated samples, from which kind, how many times.

`spec` holds the recipe section, `keys` the seeded hashes that make the draw stable, `budget` how
much of each kind the budget asks for, `draw` the mix itself, `tokens` token counting, `report` the
markdown the UI shows and `checks` the asset checks. Pure logic: no Dagster here.
"""
