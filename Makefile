# Two commands for a newcomer: `make run` (dashboard on the demo data) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
DB ?= var/warehouse.duckdb

.PHONY: venv run test lint demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

$(DB): | $(STAMP)
	$(PY) -m data demo --db $(DB)

demo: $(STAMP)
	$(PY) -m data demo --db $(DB)

run: $(STAMP) $(DB)
	$(PY) app.py --db $(DB)

lint: $(STAMP)
	$(PY) -m ruff check .

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/import_bench.py

clean:
	rm -rf $(VENV) var
