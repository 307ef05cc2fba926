# Two commands for a newcomer: `make demo` (set up, run the main job) and `make test`.
# Both create the virtual environment in .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench lint setup clean docs docs-serve docs-outputs

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build (docs/getting-started.md says how to use CUDA); then nothing pulls a CUDA build.
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[dev,spark]"
	# PySpark needs a Java runtime; install Debian's when there is none (root, as in CI).
	command -v java >/dev/null || (apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/allystance data validate
	$(BIN)/allystance data stats
	$(BIN)/allystance train baseline --promote
	$(BIN)/allystance evaluate --model models:/allystance@champion --split test
	$(BIN)/allystance predict experiments/samples/articles -o predictions.jsonl --articles article_summaries.jsonl

test: $(STAMP)
	$(BIN)/ruff check .
	HF_HUB_OFFLINE=1 $(BIN)/pytest

# Not a test: imports 10,000 generated article files and prints paragraphs/s and peak RSS.
bench: $(STAMP)
	$(BIN)/python bench/ingest_bench.py
	$(BIN)/python bench/predict_bench.py
	$(BIN)/python -m bench.spark_bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache site

# The manual (docs/, mkdocs.yml): built strict, so a broken link or a missing page fails.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

# Reruns the commands the manual shows, in a fresh temporary MLflow store, and rewrites
# docs/outputs/ (console outputs and figures) and the README's example (a few minutes).
docs-outputs: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python docs/generate.py

# The inference runtimes (torch fp32, torch int8, ONNX Runtime fp32 and int8) on the test split:
# paragraphs/s of the scoring pass and of the whole `allystance predict` command, and agreement
# with torch fp32 (bench/quantized.py; a table, and every figure in bench-quantized.json):
#   make bench-quantized BENCH_MODEL=models:/allystance/4 BENCH_ARGS="--tracking-uri sqlite:////tmp/s/mlflow.db"
# It needs a model with an encoder: train one with `allystance train transformer` (or embed) first.
.PHONY: bench-quantized
BENCH_MODEL ?= models:/allystance@champion
bench-quantized: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python bench/quantized.py --model "$(BENCH_MODEL)" --json bench-quantized.json $(BENCH_ARGS)

# Real-news figures (bench/realnews.py): the champion and each family's newest version on
# ../shared/realnews (dev.jsonl, stream.jsonl), logged to their runs; skips without the folder.
#   make bench-realnews BENCH_ARGS="--tracking-uri sqlite:////tmp/s/mlflow.db"
.PHONY: bench-realnews
bench-realnews: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.realnews $(BENCH_ARGS)
