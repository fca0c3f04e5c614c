# Two commands on a fresh clone: `make demo` and `make test`. Both build the environment
# from nothing (Python and make are all they need): uv from the package registry into
# .uv/, then the locked dependencies into .venv/. `make test` also installs Debian's
# chromium (the HTML report is checked in a real browser) when it is missing.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export LITELLM_LOCAL_MODEL_COST_MAP := True
export LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS := True
# Most tests wait on servers and subprocesses, not on the CPU: four workers keep both
# cores busy (pytest-xdist; each worker starts its own session servers).
PYTEST_WORKERS ?= 4
export UV_PYTHON := $(shell command -v $(PYTHON))

.PHONY: env browser test check lint typecheck unit demo bench clean

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet
	touch $@

env: $(VENV)/.synced

browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the HTML report test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium could not be installed: the browser test will say so"; }

lint: env
	$(BIN)/ruff check src harness tests loadtests
	$(BIN)/ruff format --check src harness tests loadtests

typecheck: env
	$(BIN)/mypy

unit: env browser
	$(BIN)/pytest -q -n $(PYTEST_WORKERS)

test: lint typecheck unit

# The inner loop: lint, types and every test that starts no process stack.
check: lint typecheck
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) -m "not slow"

demo: env
	$(BIN)/harness demo

bench: env
	$(BIN)/harness bench

clean:
	rm -rf $(VENV) .uv .pytest_cache .mypy_cache .ruff_cache
