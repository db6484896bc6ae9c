# Every target that needs the virtual environment depends on it: on a fresh clone `make test` sets
# everything up. Re-running `make install` is a no-op until pyproject.toml changes.
VENV    := .venv
PY      := $(VENV)/bin/python
MPRTUNE := $(VENV)/bin/mprtune
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install render test test-fast train-all compare demo bench slurm-up slurm-down clean

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
	$(PY) -m pytest -q -m "not slow and not slurm" $(PYTEST_ARGS)

train-all: install
	$(MPRTUNE) render --check
	$(MPRTUNE) train --all

compare: install
	$(MPRTUNE) compare --all

demo: install
	$(MPRTUNE) demo

bench: install
	$(PY) bench/run_all.py

slurm-up:
	scripts/slurm-cluster.sh up

slurm-down:
	scripts/slurm-cluster.sh down

clean:
	rm -rf .mprtune runs-demo reports
