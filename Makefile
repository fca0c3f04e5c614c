# Two commands on a fresh clone: `make demo` and `make test`. Both build the environment
# from nothing (Python and make are all they need): uv from the package registry into
# .uv/, then the locked dependencies into .venv/.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export LITELLM_LOCAL_MODEL_COST_MAP := True
export UV_PYTHON := $(shell command -v $(PYTHON))

.PHONY: env test lint typecheck unit demo clean

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet
	touch $@

env: $(VENV)/.synced

lint: env
	$(BIN)/ruff check src harness tests
	$(BIN)/ruff format --check src harness tests

typecheck: env
	$(BIN)/mypy

unit: env
	$(BIN)/pytest -q

test: lint typecheck unit

demo: env
	$(BIN)/harness demo

clean:
	rm -rf $(VENV) .uv .pytest_cache .mypy_cache .ruff_cache
