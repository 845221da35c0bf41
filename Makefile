# Two commands on a fresh machine: `make demo` and `make test`. See README.md.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_N ?= 5000
DEMO_SEED ?= 7
# Where `make demo` serves (http://127.0.0.1:$(PORT)/ui).
PORT ?= 8000
# PyTorch's package index. Empty: the configured pip index (on this project's machines it
# serves the CPU build). On an ordinary Linux machine the public PyPI torch pulls the CUDA
# build (GBs): use `make TORCH_INDEX=https://download.pytorch.org/whl/cpu test`.
TORCH_INDEX ?=

.PHONY: install demo eval eval-heldout test lint browser bench clean

install: $(STAMP)

# torch first, from the local CPU build, so nothing later pulls the CUDA wheels.
# The stamp makes a second run quick; editing pyproject.toml re-installs.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0 \
		$(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,transformers,ray]' 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import copilot, torch"
	touch $(STAMP)

DEMO_DATA := data/demo-$(DEMO_N)-$(DEMO_SEED).jsonl
TEST_SEED := $(shell echo $$(( $(DEMO_SEED) + 1 )))
TEST_DATA := data/demo-test-1000-$(TEST_SEED).jsonl

# The whole product, offline: generate the demo corpus, train the bundle, score and store the
# conversations, create a supervisor key, and serve the API and dashboard on 127.0.0.1:$(PORT)
# (each step is skipped when its output is current). It prints the URL and the key.
demo: install
	$(BIN)/copilot demo -n $(DEMO_N) --seed $(DEMO_SEED) --port $(PORT)

$(DEMO_DATA): | $(STAMP)
	mkdir -p data
	$(BIN)/copilot generate -n $(DEMO_N) --seed $(DEMO_SEED) -o $@

$(TEST_DATA): | $(STAMP)
	mkdir -p data
	$(BIN)/copilot generate -n 1000 --seed $(TEST_SEED) -o $@

bundles/default/manifest.json: $(DEMO_DATA)
	$(BIN)/copilot generate -n 1 -o data/.shop.jsonl --shop data/demo
	$(BIN)/copilot train $< -o bundles/default --seed $(DEMO_SEED) \
		--catalog data/demo-catalog.jsonl --promotions data/demo-promotions.jsonl

# Evaluate the demo bundle on conversations of another seed and on hand-written messages and
# conversations the generator never produced; batch-score them and print the scorecards. The
# real-data evaluations read ../shared/realdata (never shipped) and skip with a message without it.
eval: install bundles/default/manifest.json $(TEST_DATA)
	$(BIN)/copilot stats $(DEMO_DATA)
	$(BIN)/copilot eval $(TEST_DATA) --bundle bundles/default -o reports/demo \
		--intent-csv eval/data/independent_intents.csv
	$(BIN)/copilot classify --bundle bundles/default "在吗？这件有M码吗" "太贵了，别家便宜50" "等了三天还没发货"
	$(BIN)/copilot suggest --bundle bundles/default eval/data/sample_conversation.json --k 3
	$(BIN)/copilot score $(TEST_DATA) -o reports/demo/scores.jsonl --bundle bundles/default --workers 2
	$(BIN)/copilot scorecard reports/demo/scores.jsonl
	$(PY) -m eval.score_quality --bundle bundles/default -o reports/quality
	$(PY) -m eval.real_quality --bundle bundles/default -o reports/real_quality
	$(PY) -m eval.real_dev -o reports/real_dev
	$(PY) -m eval.profile_extraction
	$(PY) -m eval.task_execution --bundle bundles/default
	$(PY) -m eval.followups --bundle bundles/default
	$(PY) -m eval.real_suggest --demo-bundle bundles/default --json reports/real_suggest.json \
		--sheet reports/real_suggest/judge-sheet.md

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

# The dashboard tests (tests/ui) drive Debian's headless chromium with Playwright, so
# `playwright install` (a download) is never needed; without CJK and emoji fonts Chinese and 😊
# render as boxes in the screenshots, and without chromium-l10n the browser has no zh-CN locale
# (date inputs read 12/04/2026). apt runs only when something is missing (root, or sudo).
BROWSER_PACKAGES := chromium chromium-l10n fonts-noto-cjk fonts-noto-color-emoji
browser:
	@if [ -x /usr/bin/chromium ] && dpkg -s chromium-l10n fonts-noto-cjk fonts-noto-color-emoji >/dev/null 2>&1; then \
		echo "chromium (with its zh-CN locale) and the CJK and emoji fonts are installed"; \
	else \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update -q && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(BROWSER_PACKAGES); \
	fi

# The storage tests also run on a real PostgreSQL: `postgres.sh run` starts a private server on
# 127.0.0.1:54329 (installing the Debian package once if missing), sets COPILOT_TEST_POSTGRES_URL
# and stops the server afterwards, even when tests fail, if it was not already running.
# Under `make test` the browser is there (`browser` installed it), so its tests must run, not skip.
test: export COPILOT_REQUIRE_BROWSER = 1
test: export COPILOT_REQUIRE_POSTGRES = 1
test: lint browser
	scripts/postgres.sh run $(BIN)/pytest -q

bench: install
	$(PY) -m eval.bench_io
	$(PY) -m eval.bench_models
	$(PY) -m eval.bench_suggest
	$(PY) -m eval.bench_score
	$(PY) -m eval.bench_server

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
