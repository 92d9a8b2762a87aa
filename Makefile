# Everything a new user needs, from a machine with only python3 on it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

# One local Dagster instance for the demo, the UI and the benchmarks.
export DAGSTER_HOME := $(CURDIR)/.dagster
export CURATION_DATA_ROOT ?= $(CURDIR)/data
# The demo and the local UI use tiny offline models; point this at your recipe for real runs.
export CURATION_RECIPE ?= $(CURDIR)/curation_assets/recipes/smoke.yaml
# Nothing here may reach a model hub at run time (see README: model profiles).
export HF_HUB_OFFLINE ?= 1
export DAGSTER_DISABLE_TELEMETRY := yes

.PHONY: env demo lint format test snapshot ui bench drill kill-drill screenshots whatif clean-demo

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

env: $(INSTALLED)

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.local.yaml
	mkdir -p $(DAGSTER_HOME)
	cp deploy/dagster.local.yaml $@

demo: env $(DAGSTER_HOME)/dagster.yaml
	@if [ -z "$$(ls -A $(CURATION_DATA_ROOT)/raw 2>/dev/null)" ]; then \
		$(BIN)/python -m curation_assets.demo --root $(CURATION_DATA_ROOT); \
	else echo "data/raw already holds shards: using them (make clean-demo to start over)"; fi
	$(BIN)/python -m curation_assets.local_run

# No cache: ruff's cache once passed a README whose python block a fresh clone's check refused.
lint: env
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --check --no-cache .

format: env
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Lint first: CI runs exactly this, so style is enforced where tests are.
test: lint
	$(BIN)/python -m pytest -n 2 --dist loadgroup -p no:logging

# Rewrite the reviewed snapshot of every asset spec after an intended change to the graph.
snapshot: env
	$(BIN)/python -m curation_assets_tests.spec_snapshot --update

ui: env $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

bench: env
	$(BIN)/python -m benchmarks.run $(BENCH)

# The daemon path, end to end: dagster dev over a settled copy of the demo, one new shard dropped in,
# automation polled until quiet, convergence asserted (minutes; not in CI).
drill: env
	$(BIN)/python -m drills.new_shard

# kill -9 at the worst moments (ingest, between events, a gpu step, selection); each re-run must finish
# with the same tables as an uninterrupted run (minutes; not in CI).
kill-drill: env
	$(BIN)/python -m drills.kill

# Photograph the curator's pages into docs/screenshots/ (needs Debian's chromium; not in CI).
screenshots: env
	$(BIN)/python -m docs.screenshots

# Kept counts per rule for an edited recipe, from stored scores, before any run: make whatif RECIPE=edited.yaml
whatif: env
	$(BIN)/python -m curation_assets.whatif --recipe $(RECIPE)

clean-demo:
	rm -rf $(CURATION_DATA_ROOT)/raw $(CURATION_DATA_ROOT)/caption $(CURATION_DATA_ROOT)/interleaved \
		$(CURATION_DATA_ROOT)/text $(CURATION_DATA_ROOT)/mix $(CURATION_DATA_ROOT)/eval \
		$(CURATION_DATA_ROOT)/evals $(CURATION_DATA_ROOT)/demo_manifest.json $(DAGSTER_HOME)

# Fuzz the shard readers: FUZZ_CASES generated and damaged shards per format (8 formats), a new
# seed each run (FUZZ_SEED=n repeats one). Prints cases, crashes and rows lost; fails unless all 0.
FUZZ_CASES ?= 500
.PHONY: fuzz
fuzz: env
	$(BIN)/python -m curation_assets_tests.fuzz --cases $(FUZZ_CASES) $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))
