# deepsearch-stream: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: help setup install develop run demo server-bin test test-rust test-python js-clients wheel-test lint core-deps eval bench bench-quick bench-deps fuzz fuzz-cmin fuzz-tools clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.ready: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q -U pip
	$(VPY) -m pip install -q "maturin>=1.9.4,<2"
	touch $@

setup: $(VENV)/.ready ## Create .venv with maturin

install: setup ## Build the extension (release) into .venv with its runtime dependencies only
	$(VENV)/bin/maturin develop --release -q

develop: setup ## Build the extension (release) into .venv with the test extras
	$(VENV)/bin/maturin develop --release -q -E test,testing

run: install ## The main job: the FastAPI service, offline, on http://127.0.0.1:8000/
	$(VPY) -m deepsearch_stream serve --host 127.0.0.1 --port 8000

demo: install ## One streamed DeepSearch printed in the terminal
	$(VPY) examples/deepsearch_demo.py "How do I run a subprocess and capture its output?"

server-bin: ## The axum server binary (target/release/deepsearch-server)
	cargo build --release --bin deepsearch-server

test: develop lint test-rust test-python ## Every check and test (CI runs this)

test-rust: ## cargo test (core, no Python)
	cargo test --all-targets
	cargo test --doc

test-python: develop server-bin js-clients ## pytest against the built extension and both servers
	$(VPY) -m pytest

js-clients: tests/node_modules/.package-lock.json ## The npm clients tests/js/ drives (ai, @ag-ui/client), as locked

tests/node_modules/.package-lock.json: tests/package.json tests/package-lock.json
	npm ci --prefix tests --no-audit --no-fund

# The built wheel in a fresh venv outside the tree: abi3 tag, the seed's endpoint, the
# README's testing example, `search` on the default corpus, `serve` answering /healthz.
wheel-test: setup ## Build the wheel and try it installed outside the checkout (CI runs this)
	.ci/wheel-test

lint: develop core-deps ## rustfmt, clippy, rustdoc, ruff, mypy --strict
	cargo fmt --all -- --check
	cargo clippy --all-targets --all-features -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

core-deps: ## The core must not depend on pyo3 or axum, and builds without any feature; the wheel must not link axum
	cargo check --no-default-features --lib
	@if cargo tree --no-default-features -e normal --prefix none | grep -E '^(pyo3|axum)'; then \
		echo "core depends on pyo3/axum without features" >&2; exit 1; fi
	@if cargo tree --no-default-features --features python -e normal --prefix none | grep -E '^axum'; then \
		echo "the Python extension (features = python) depends on axum" >&2; exit 1; fi
	@echo "core-deps: ok (no pyo3/axum without features, no axum in the extension)"

# The QA file `make eval` measures (JSON lines: q, source_any, answer_any, answer_all).
QA ?= bench/qa/dev.jsonl

eval: develop ## Answer quality: the offline default on a QA set (QA=FILE) and the citation check; writes docs/QUALITY.md
	$(VPY) bench/eval.py --qa $(QA) --write docs/QUALITY.md
	$(VPY) bench/citations.py --write docs/QUALITY.md

bench-deps: setup ## The extension (release) with the test and bench extras (matplotlib, ...)
	$(VENV)/bin/maturin develop --release -q -E test,bench

bench: bench-deps ## Benchmarks, full (<15 min): the four stacks side by side; writes docs/BENCHMARKS.md
	$(VPY) bench/stream_bench.py --write docs/BENCHMARKS.md
	bench/run

bench-quick: bench-deps ## Benchmarks, quick (<2 min): same sections, smaller sizes
	bench/run --quick

# Fuzzing (cargo-fuzz, nightly). Inputs found go to fuzz/target/new-corpus/ first: the
# committed corpus fuzz/corpus/ only grows through `make fuzz-cmin`, minimized to one
# input per covered edge (-use_counters=0: hit counts would keep ten times the files).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := sse_decoder sse_roundtrip request_parser
FUZZ_NEW := fuzz/target/new-corpus
# No sanitizer: the crate has no unsafe code, and panics (overflow included, with
# debug assertions) are what the targets look for.
FUZZ_BUILD_FLAGS := --debug-assertions --sanitizer none

fuzz-tools:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@cargo fuzz --version >/dev/null 2>&1 || cargo +stable install cargo-fuzz --locked

fuzz: fuzz-tools ## Fuzz each target for FUZZ_SECONDS (default 60) s; new inputs in fuzz/target/new-corpus/
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_NEW)/$$t; \
		echo "== $$t: $(FUZZ_SECONDS) s"; \
		nice cargo +nightly fuzz run $(FUZZ_BUILD_FLAGS) $$t $(FUZZ_NEW)/$$t fuzz/corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 || exit 1; \
	done

fuzz-cmin: fuzz-tools ## Add what `make fuzz` found to fuzz/corpus/, then minimize it (cargo fuzz cmin)
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_NEW)/$$t; \
		cp -n $(FUZZ_NEW)/$$t/* fuzz/corpus/$$t/ 2>/dev/null || true; \
		cargo +nightly fuzz cmin $(FUZZ_BUILD_FLAGS) $$t -- -use_counters=0 || exit 1; \
		rm -rf $(FUZZ_NEW)/$$t; \
	done

clean: ## Remove build outputs and the venv
	cargo clean
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
