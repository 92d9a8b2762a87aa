"""`python -m curation_assets.evaluation --help`: the proxy eval outside Dagster (see cli.py)."""

import sys

from curation_assets.evaluation.cli import main

sys.exit(main())
