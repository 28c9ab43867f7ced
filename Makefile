# make demo  - run the campaign against the embedded HubSpot sandbox (no account needed)
# make test  - lint and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv demo test lint bench constraints clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/python -m include.demo

lint: venv
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest

bench: venv
	$(BIN)/python -m tests.benchmarks.sandbox_bench

constraints: venv
	$(BIN)/python -m pip freeze --exclude-editable > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
