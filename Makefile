# Tsunagu — every developer and CI task starts here. Two commands matter: `make run`, `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed

CHROMIUM := /usr/bin/chromium

.PHONY: help deps console-assets chromium run test schema lint typecheck contracts proto proto-check unit integration e2e bench chaos constraints clean provision

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt 'setuptools' 'pip'
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@$(MAKE) --no-print-directory chromium
	@touch $@

# The browser tests drive Debian's Chromium (Playwright's own download is not used), with a
# Japanese font so the console's Japanese text renders in screenshots (not boxes).
BROWSER_PACKAGES := chromium fonts-ipafont-gothic
chromium:  ## install Debian's chromium (and a Japanese font) for tests/browser when missing (needs root or sudo)
	@{ test -x $(CHROMIUM) && dpkg -s fonts-ipafont-gothic >/dev/null 2>&1; } || { \
	  echo "installing Debian's $(BROWSER_PACKAGES) for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null ) \
	  || { echo "could not install $(BROWSER_PACKAGES) with apt-get: install them and run make deps again" >&2; exit 1; }; }

deps: $(STAMP)  ## create the virtualenv and install pinned dependencies

run: $(STAMP)  ## run the whole system locally (nats-server, store, services, demo data); options: ARGS="--help"
	$(PY) -m tsunagu.local run $(ARGS)

provision: $(STAMP)  ## create/update the JetStream streams (TSUNAGU_STREAMS_* settings); make run does it
	$(PY) -m tsunagu.bus.provision

# The suite runs in two pytest-xdist workers (CI's machine has two cores; the waits of one worker
# are the other's CPU time); tests/work_units.py shares it out by module, the browser tests as one.
PYTEST_WORKERS ?= 2
test: $(STAMP)  ## everything CI checks: lint, types, architecture contracts, stale code, tests
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(PY) scripts/gen_protos.py --check
	$(PY) scripts/console_assets.py --check
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff lint and format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: $(STAMP)  ## mypy strict on project code
	$(BIN)/mypy

contracts: $(STAMP)  ## import-linter architecture boundaries
	$(BIN)/lint-imports

proto: $(STAMP)  ## regenerate tsunagu/v1 from proto/ (never edit the output)
	$(PY) scripts/gen_protos.py

console-assets:  ## re-copy the console's and GraphiQL's browser assets from their pinned npm packages
	$(PYTHON) scripts/console_assets.py

proto-check: $(STAMP)  ## fail when the generated code is stale
	$(PY) scripts/gen_protos.py --check

unit: $(STAMP)  ## unit tests only
	$(BIN)/pytest tests/unit

integration: $(STAMP)  ## integration tests (real nats-server and store)
	$(BIN)/pytest tests/integration

e2e: $(STAMP)  ## end-to-end tests across real processes
	$(BIN)/pytest tests/e2e

bench: $(STAMP)  ## throughput targets against baselines measured in the same run, one table; ARGS="--quick" or "--full"
	$(PY) -m bench $(ARGS)

chaos: $(STAMP)  ## fault injection under load: kill/restart each process, check nothing is lost or doubled; ARGS="--short", "--help"
	$(PY) -m chaos $(ARGS)

schema: $(STAMP)  ## write the GraphQL schema the gateway serves to docs/schema.graphql
	$(PY) -c "from gateway.schema import build_schema; from gateway.settings import GatewaySettings; print(build_schema(GatewaySettings()))" > docs/schema.graphql

constraints: $(STAMP)  ## re-pin constraints.txt from the virtualenv
	( echo "# Exact versions of every package Tsunagu installs (make deps uses pip -c). Update with: make constraints"; \
	  $(PY) -m pip freeze --exclude-editable --all | grep -v '^pip==' | sort -f ) > constraints.txt

clean:  ## remove the virtualenv and local run data
	rm -rf $(VENV) .tsunagu .pytest_cache .mypy_cache .ruff_cache
