# Two commands on a fresh machine: `make demo` and `make test`. See README.md.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_N ?= 5000
DEMO_SEED ?= 7

.PHONY: install demo eval-heldout test lint bench clean

install: $(STAMP)

# torch first, from the local CPU build, so nothing later pulls the CUDA wheels.
# The stamp makes a second run quick; editing pyproject.toml re-installs.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,transformers,ray]' 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import copilot, torch"
	touch $(STAMP)

# Generate the demo corpus, train the default bundle on it, and evaluate that bundle on
# conversations of another seed and on hand-written messages the generator never produced.
demo: install
	mkdir -p data
	$(BIN)/copilot generate -n $(DEMO_N) --seed $(DEMO_SEED) -o data/demo.jsonl
	$(BIN)/copilot stats data/demo.jsonl
	$(BIN)/copilot train data/demo.jsonl -o models/default --seed $(DEMO_SEED)
	$(BIN)/copilot generate -n 1000 --seed $$(( $(DEMO_SEED) + 1 )) -o data/demo-test.jsonl
	$(BIN)/copilot eval data/demo-test.jsonl --bundle models/default -o reports/demo \
		--intent-csv eval/data/independent_intents.csv
	$(BIN)/copilot classify --bundle models/default "在吗？这件有M码吗" "太贵了，别家便宜50" "等了三天还没发货"
	$(BIN)/copilot suggest --bundle models/default eval/data/sample_conversation.json --k 3

# The honest generalisation check: train on one part of the phrase banks, evaluate on phrasings
# held out of training (and on the independent hand-written set).
eval-heldout: install
	mkdir -p data
	$(BIN)/copilot generate -n $(DEMO_N) --seed $(DEMO_SEED) --phrases train -o data/train-phrases.jsonl
	$(BIN)/copilot generate -n 1000 --seed $$(( $(DEMO_SEED) + 1 )) --phrases heldout -o data/heldout-phrases.jsonl
	$(BIN)/copilot train data/train-phrases.jsonl -o models/train-phrases --seed $(DEMO_SEED)
	$(BIN)/copilot eval data/heldout-phrases.jsonl --bundle models/train-phrases -o reports/heldout \
		--intent-csv eval/data/independent_intents.csv

lint: install
	$(BIN)/ruff check copilot models server eval tests
	$(BIN)/mypy copilot models server eval

test: lint
	$(BIN)/pytest -q

bench: install
	$(PY) -m eval.bench_io
	$(PY) -m eval.bench_models
	$(PY) -m eval.bench_suggest
	$(PY) -m eval.bench_score

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
