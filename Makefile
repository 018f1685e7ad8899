# Lakeplane — the two commands a new machine needs are `make run` and `make test`.
# Everything else here is what those two are made of.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test check lint format typecheck importlint venv tools frontend frontend-test e2e-deps \
        migrate lock clean help

help:
	@echo "make run    - start Lakeplane (sandbox: SQLite, filesystem broker, local AWS emulator)"
	@echo "make test   - install everything and run linters and the whole test suite"
	@echo "make check  - ruff, mypy and import-linter only"
	@echo "make lock   - re-resolve requirements.lock (runtime) and requirements-dev.lock (tests, sandbox)"

# --- environment ---------------------------------------------------------------------------
# requirements.lock is what production installs (no moto, no pytest); requirements-dev.lock adds
# the sandbox emulator and the test/lint tools. Both are hash-pinned; `make run` and `make test`
# install the development lock, which includes every runtime pin.
$(VENV)/.installed: pyproject.toml requirements.lock requirements-dev.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "uv>=0.6,<1"
	$(UV) pip install --quiet --python $(PY) --require-hashes -r requirements-dev.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	touch $@

venv: $(VENV)/.installed

# checkov and hadolint (tests/infra) live in their own venv: their dependency trees are not the
# application's. Hash-pinned in requirements-tools.lock (from requirements-tools.in).
TOOLS := .venv-tools
$(TOOLS)/.installed: requirements-tools.lock
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check "uv>=0.6,<1"
	$(TOOLS)/bin/uv pip install --quiet --python $(TOOLS)/bin/python --require-hashes -r requirements-tools.lock
	touch $@

tools: $(TOOLS)/.installed

LOCK_FLAGS := --quiet --python-version 3.11 --no-header --generate-hashes

lock:
	$(UV) pip compile pyproject.toml $(LOCK_FLAGS) -o requirements.lock && \
	  $(UV) pip compile pyproject.toml --extra dev $(LOCK_FLAGS) -o requirements-dev.lock && \
	  $(UV) pip compile requirements-tools.in $(LOCK_FLAGS) -o requirements-tools.lock

frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund

frontend/dist/index.html: frontend/node_modules/.package-lock.json $(shell find frontend/src -type f 2>/dev/null) frontend/index.html
	cd frontend && npm run build

frontend: frontend/dist/index.html

frontend-test: frontend/node_modules/.package-lock.json
	cd frontend && npm test

tests/e2e/oidc_provider/node_modules/.package-lock.json: tests/e2e/oidc_provider/package-lock.json
	cd tests/e2e/oidc_provider && npm ci --no-audit --no-fund

e2e-deps: tests/e2e/oidc_provider/node_modules/.package-lock.json frontend

# --- the two commands ----------------------------------------------------------------------
run: venv frontend
	PORT=$(PORT) $(PY) manage.py runlakeplane

test: venv tools e2e-deps check frontend-test
	bash scripts/run-tests.sh $(PYTEST_ARGS)

# --- checks --------------------------------------------------------------------------------
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: venv
	$(VENV)/bin/mypy controlplane computeplane_agent

importlint: venv
	$(VENV)/bin/lint-imports

check: lint typecheck importlint

migrate: venv
	$(PY) manage.py migrate

clean:
	rm -rf $(VENV) frontend/node_modules frontend/dist tests/e2e/oidc_provider/node_modules
