# make demo  - run the campaign against the embedded HubSpot sandbox (no account needed)
# make test  - lint and run the test suite
# make up    - the deployment (CeleryExecutor on PostgreSQL and Redis) with its UI on 127.0.0.1:8080; make down
# make doctor - a read-only check of the real portal in HUBSPOT_CONNECTION (environment or .env)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
UV     := uv==0.13.8

.PHONY: venv demo test lint bench reliability up down doctor constraints clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# uv installs (and byte-compiles) the same pinned set as pip in seconds instead of most of a minute.
	$(BIN)/python -m pip install --quiet $(UV)
	@# The campaign itself is installed as the Airflow provider it is (editable: plugins/ is its source).
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.txt -r requirements-dev.txt -e . -c constraints.txt
	@# setuptools leaves build metadata beside the source; on the path it would make Airflow see the provider twice.
	rm -rf plugins/*.egg-info
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/python -m include.demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -n 6 --dist loadfile --no-loadscope-reorder --durations=10

up: venv
	$(BIN)/python -m include.airflow_stack up

down: venv
	$(BIN)/python -m include.airflow_stack down

doctor: venv
	$(BIN)/python -m include.doctor

bench: venv
	$(BIN)/python -m tests.benchmarks.sandbox_bench
	$(BIN)/python -m tests.benchmarks.campaign_bench
	$(BIN)/python -m tests.benchmarks.campaigns_parse
	$(BIN)/python -m tests.benchmarks.campaigns_shared_limit

reliability: venv
	$(BIN)/python -m tests.reliability.fault_suite

constraints: venv
	$(BIN)/python -m pip freeze --exclude-editable --exclude uv > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
