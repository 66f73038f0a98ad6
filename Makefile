# The two commands of the README: `make run` and `make test`.
# Everything goes into .venv, created on first use; Debian packages come from apt-get.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint bench clean

# The venv; on Debian `python3 -m venv` needs the python3-venv package.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
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

## test: install the test extras and run every test
test: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## bench: the throughput benchmarks (wrk from Debian's packages; FastAPI and uvicorn for the comparison)
bench: $(VENV)/.test-installed
	$(BIN)/pip install -q -e '.[test,bench]'
	command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }
	$(BIN)/python bench/hello.py
	$(BIN)/python bench/validated_post.py

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
