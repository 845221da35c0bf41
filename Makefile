# Two commands on a fresh machine: `make demo` and `make test`. See README.md.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_N ?= 5000
DEMO_SEED ?= 7

.PHONY: install demo test lint bench clean

install: $(STAMP)

# torch first, from the local CPU build, so nothing later pulls the CUDA wheels.
# The stamp makes a second run quick; editing pyproject.toml re-installs.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,transformers]' 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import copilot, torch"
	touch $(STAMP)

demo: install
	mkdir -p data
	$(BIN)/copilot generate -n $(DEMO_N) --seed $(DEMO_SEED) -o data/demo.jsonl
	$(BIN)/copilot stats data/demo.jsonl

lint: install
	$(BIN)/ruff check copilot models server eval tests
	$(BIN)/mypy copilot models server eval

test: lint
	$(BIN)/pytest -q

bench: install
	$(PY) -m eval.bench_io

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
