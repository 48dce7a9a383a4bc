# i2i: `make train` and `make test` are all a newcomer needs (both install first).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The install stamp is keyed on pyproject.toml: the install step reruns only when it changes.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)
# The one torch/torchvision pair available on this machine's disk (see README).
TORCH_PAIR := torch==2.14.1 torchvision==0.29.1
MODEL ?= cyclegan
ALSO ?=
# `make bench` measures every model; `make bench MODEL=munit` one; COMPILE="funit tunit" or
# COMPILE=all also times torch.compile for those (default: bench/speed.py's COMPILED)
MODEL_LIST := $(if $(filter command line,$(origin MODEL)),$(MODEL),)
COMPILE ?=
# BF16=1 times bf16-mixed even on a CPU that only emulates it
BF16 ?=
PYTEST_ARGS ?=

.PHONY: help install train test test-fast lint bench bench-quality bench-official bench-official-quality clean

help:
	@echo "make train          install, then train the default model on synthetic data (CPU, minutes)"
	@echo "make test           install, then run the test suite"
	@echo "make test-fast      the test suite without the tests marked slow"
	@echo "make lint           install, then check formatting and lint rules (ruff, pyproject.toml)"
	@echo "make bench [MODEL=x] [COMPILE=all] [BF16=1]  training-iteration speed, memory and FLOPs (bench/results/speed.md)"
	@echo "make bench-quality MODEL=cyclegan [ALSO=baseline]   train to the quality bar, write bench/results/quality_<model>.json"
	@echo "make bench-official MODEL=munit OFFICIAL=path   our training iteration against an official checkout's (bench/results/official_<model>.json)"
	@echo "make bench-official-quality OFFICIAL=path   NVlabs/FUNIT trained on FUNIT's quality recipe, scored by our metrics"

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PAIR)
	$(BIN)/python -m pip install --quiet -e ".[dev,sweep]"
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

train: install
	$(BIN)/i2i-train

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

bench-quality: install
	$(BIN)/python -m bench.quality --model $(MODEL) $(foreach m,$(ALSO),--also $(m))

bench-official: install
	@test -n "$(OFFICIAL)" || { echo "OFFICIAL=<path of a checkout of the official repo> is required"; exit 2; }
	$(BIN)/python -m bench.official --model $(MODEL) --official $(OFFICIAL)

bench-official-quality: install
	@test -n "$(OFFICIAL)" || { echo "OFFICIAL=<path of a checkout of NVlabs/FUNIT> is required"; exit 2; }
	$(BIN)/python -m bench.official_quality --official $(OFFICIAL)

clean:
	rm -rf outputs logs build dist bench/results .pytest_cache

bench: install
	$(BIN)/python -m bench.speed $(foreach m,$(MODEL_LIST),--model $(m)) $(foreach m,$(COMPILE),--compile $(m)) $(if $(BF16),--bf16)
