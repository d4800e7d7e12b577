# k8py: `make run` installs and starts the server, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
ARGS ?=

.PHONY: run test unit e2e bench clean

$(BIN)/python:
	@scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[fast]'
	@touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[fast,test]'
	@touch $@

run: $(VENV)/.installed
	@scripts/system-deps.sh
	$(BIN)/k8py server $(ARGS)

test: $(VENV)/.test-installed
	@scripts/system-deps.sh --test
	$(BIN)/pytest -q tests

unit: $(VENV)/.test-installed
	$(BIN)/pytest -q tests/unit

e2e: $(VENV)/.test-installed
	$(BIN)/pytest -q tests/e2e

bench: $(VENV)/.installed
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) build *.egg-info
