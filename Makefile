# Every target that needs the virtual environment depends on it: on a fresh clone `make test` sets
# everything up. Re-running `make install` is a no-op until pyproject.toml changes.
VENV    := .venv
PY      := $(VENV)/bin/python
MPRTUNE := $(VENV)/bin/mprtune
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install render test test-fast lint train-all compare demo bench slurm-install slurm-up slurm-down clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,dev]'
	touch $(STAMP)

install: $(STAMP)

render: install
	$(MPRTUNE) render

test: install
	$(MPRTUNE) render --check
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -q -m "not slow and not slurm and not realmodel" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check mprtune tests bench
	$(VENV)/bin/ruff format --check mprtune tests bench
	$(VENV)/bin/mypy

train-all: install
	$(MPRTUNE) render --check
	$(MPRTUNE) train --all

compare: install
	$(MPRTUNE) compare --all

demo: install
	$(MPRTUNE) demo

bench: install
	$(PY) bench/run_all.py

# Slurm for the Slurm tests: Debian packages (root). Tests never install anything themselves.
slurm-install:
	scripts/slurm-cluster.sh install

slurm-up:
	scripts/slurm-cluster.sh up

slurm-down:
	scripts/slurm-cluster.sh down

# Everything mprtune made in this checkout: models, caches, profile renders, demo runs and reports.
# The reference runs/ folder holds real training runs and is left alone: delete it yourself.
clean:
	rm -rf .mprtune runs-demo runs-tiny reports
