# The two commands of the README: `make run` and `make test` (and `make test-fast` while you work).
# Everything goes into .venv, created on first use; Debian packages come from apt-get.

PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
# sudo only when not root and sudo is there (a bare Debian image has root and no sudo).
SUDO     := $(shell [ "$$(id -u)" = 0 ] || { command -v sudo >/dev/null && echo sudo; })
APT      := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get
# The browser tests drive Debian's Chromium through Playwright; Playwright never downloads a browser here.
CHROMIUM := /usr/bin/chromium

.PHONY: run test test-fast lint bench clean

# The venv; on Debian `python3 -m venv` needs the python3-venv package.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  $(APT) update -qq && $(APT) install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[lab]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

## run: install into .venv and open JupyterLab on the first notebook
run: $(VENV)/.run-installed
	$(BIN)/jupyter lab notebooks/quickstart.ipynb

# Chromium and its driver from Debian, for tests/browser (they skip without it, and fail under CI=true).
$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "no apt-get: install Chromium as $(CHROMIUM) for the browser tests"; exit 0; }
	$(APT) update && $(APT) install -y chromium chromium-driver

## test: install the test extras (and Chromium), lint and type-check, and run every test
test: $(VENV)/.test-installed | $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The tests that start nothing (no kernel, process or browser); NBROUTES_FAST_GUARD fails one that does.
FAST := not kernel and not subprocess and not browser and not reliability

## test-fast: install the test extras and run ruff, lint-imports and the in-process tests (seconds)
test-fast: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	NBROUTES_FAST_GUARD=1 $(BIN)/python -m pytest -q -m "$(FAST)" $(PYTEST_ARGS)

## bench: the throughput and start-up benchmarks, then their chart (wrk from Debian's packages; fastapi[standard]
## for the comparison, as FastAPI's users install it; matplotlib for docs/benchmarks.png)
bench: $(VENV)/.test-installed
	$(BIN)/pip install -q -e '.[test,bench]'
	command -v wrk >/dev/null || { $(APT) update -qq && $(APT) install -y -qq wrk; }
	$(BIN)/python bench/hello.py
	$(BIN)/python bench/validated_post.py
	$(BIN)/python bench/kernel_gateway.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/soak.py
	$(BIN)/python bench/chart.py

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
