# Churn early-warning warehouse: the two commands are `make build` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := build

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DBT := $(BIN)/dbt
SAMPLE_CUSTOMERS ?= 20000
SAMPLE_SEED ?= 42
RAW_PATH ?= data/raw
export CHURN_DUCKDB_PATH ?= warehouse.duckdb
export DBT_PROFILES_DIR := $(CURDIR)
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export PYTHONPATH := $(CURDIR)/python

.PHONY: build venv sample dbt-build test pytest dbt-test lint clean backtest bench

$(BIN)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	# put python/ on the venv's path (the dbt Python models also get it through module_paths)
	$(BIN)/python -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'churnwarehouse.pth').write_text('$(CURDIR)/python\n')"
	touch $@

venv: $(BIN)/.installed

## sample: generate the bundled sample (seeded) unless it is already there
$(RAW_PATH)/orders.parquet: | venv
	$(BIN)/python -m churnwarehouse.generate --customers $(SAMPLE_CUSTOMERS) --seed $(SAMPLE_SEED) --out $(RAW_PATH)

sample: $(RAW_PATH)/orders.parquet

## build: venv + sample + dbt build (models and their tests)
build: venv sample
	$(DBT) build --vars '{raw_path: $(RAW_PATH)}'

## test: pytest (unit + end-to-end), dbt build with its tests, sqlfluff lint
test: venv sample pytest dbt-test lint

# two workers, a test file each (DECISIONS.md: the builds of one file share their fixtures)
pytest: venv
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

dbt-test: venv sample
	$(DBT) build --vars '{raw_path: $(RAW_PATH)}'

# sqlfluff compiles through dbt against an empty warehouse, so every model is linted as a full
# build renders it (against a built one, the incremental models would render their daily branch)
lint: venv
	lint_db=$$(mktemp -d)/lint.duckdb; CHURN_DUCKDB_PATH=$$lint_db $(BIN)/sqlfluff lint models tests macros --processes 2

clean:
	rm -rf target logs warehouse.duckdb

## backtest: build on the data up to CUTOFF, score, judge on the next HORIZON days
##   make backtest RAW=path/to/raw CUTOFF=2011-09-09 [HORIZON=90]
##   several dates side by side, with their mean: CUTOFF="2011-03-09 2011-06-09 2011-09-09"
HORIZON ?= 90
backtest: venv
	@test -n "$(RAW)" -a -n "$(CUTOFF)" || (echo "usage: make backtest RAW=<raw dir> CUTOFF=\"<YYYY-MM-DD> [...]\" [HORIZON=90]"; exit 2)
	$(BIN)/python -m churnwarehouse.backtest --raw $(RAW) --cutoff $(CUTOFF) --horizon $(HORIZON)

## bench: full dbt build at each size beside a pandas baseline, DuckDB's floor and a daily
##   incremental run; prints a table and writes bench/results.csv (data cached in bench/cache)
##   make bench [SIZES="10000 100000 1000000"]
SIZES ?= 10000 100000 1000000
bench: venv
	$(BIN)/python -m churnwarehouse.bench --sizes $(SIZES)
