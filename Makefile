# Two commands on a fresh clone: `make demo` and `make test`. Both build the environment
# from nothing (Python and make are all they need): uv from the package registry into
# .uv/, then the locked dependencies into .venv/. `make test` also installs Debian's
# chromium and postgresql (real browser, real team store) when they are missing.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export LITELLM_LOCAL_MODEL_COST_MAP := True
export LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS := True
# Most tests wait on servers and subprocesses, not on the CPU: four workers keep both
# cores busy (pytest-xdist; each worker starts its own session servers, except the
# LiteLLM server: the tests that use it share one xdist group, so one worker starts it).
PYTEST_WORKERS ?= 4
PYTEST_XDIST := -n $(PYTEST_WORKERS) --dist loadgroup
export UV_PYTHON := $(shell command -v $(PYTHON))

.PHONY: env browser system-packages test check lint typecheck unit demo bench clean

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet
	touch $@

env: $(VENV)/.synced

# Debian packages the tests use for real: chromium (the HTML report is checked in a real
# browser) and postgresql (the team's shared capture store; the tests start their own
# server from its binaries). One apt-get update for whatever is missing, none otherwise.
system-packages:
	@missing=""; \
	  command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian's$$missing for the tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	    || echo "could not install$$missing: the tests that need it skip and say why"; \
	  fi

browser: system-packages

lint: env
	$(BIN)/ruff check src harness tests loadtests
	$(BIN)/ruff format --check src harness tests loadtests

typecheck: env
	$(BIN)/mypy

unit: env system-packages
	$(BIN)/pytest -q $(PYTEST_XDIST)

test: lint typecheck unit

# The inner loop: lint, types and every test that starts no process stack.
check: lint typecheck
	$(BIN)/pytest -q $(PYTEST_XDIST) -m "not slow"

demo: env
	$(BIN)/harness demo

bench: env
	$(BIN)/harness bench

clean:
	rm -rf $(VENV) .uv .pytest_cache .mypy_cache .ruff_cache
