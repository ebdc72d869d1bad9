# Two commands do all set-up on a fresh machine (Python >= 3.11):
#   make run    install what is missing, run the bundled cohort -> results/wdbc/report.html
#   make test   install what is missing, run the test suite
# Both are idempotent: a second call reinstalls nothing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all
# torch is installed on its own, before everything else, and only when no torch is importable:
# a CUDA build already present (e.g. a cluster's site packages) is kept, and here the pinned
# version resolves to the CPU wheel rather than a multi-GB CUDA download.
TORCH_SPEC ?= torch==2.13.0

.PHONY: run test lint clean-results

$(BIN)/python:
	$(PYTHON) -m venv --system-site-packages $(VENV)

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install "$(TORCH_SPEC)"
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(BIN)/python -m pip install -e ".[dev,slurm]"
	touch $@

run: $(VENV)/.installed
	$(BIN)/snakemake --workflow-profile profiles/default --cores $(CORES)

test: $(VENV)/.installed
	$(BIN)/python -m pytest -n auto --maxprocesses 4 --dist loadgroup --durations=25

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/snakefmt --check Snakefile workflow

clean-results:
	rm -rf results logs .snakemake
