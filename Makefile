# Everything runs from a local .venv that the targets create from nothing (quick when it is up to date).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_RUN ?= runs/demo
DEMO_ROUNDS ?= 10
PYTEST_ARGS ?=

.PHONY: test test-all demo bench bench-quality venv clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-tff.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel setuptools
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-tff.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

# Fast default suite (slow tests are marked and skipped here; `make test-all` runs them).
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS) tests

test-all: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

# The main job on the embedded default data: PF-MSMTrec on the synthetic scenarios, AUC table beside the oracle.
demo: $(STAMP)
	$(VENV)/bin/pfmsmt train --data=synthetic --algorithm=pfmsmtrec --rounds=$(DEMO_ROUNDS) --output=$(DEMO_RUN) --overwrite

# Each writes benchmarks/results/<name>.md; render_readme.py copies them into the README's results section.
bench: $(STAMP)
	$(PY) benchmarks/data_pipeline.py
	$(PY) benchmarks/speed.py
	$(PY) benchmarks/remote.py
	$(PY) benchmarks/quality.py --quick
	$(PY) benchmarks/render_readme.py

bench-quality: $(STAMP)
	$(PY) benchmarks/quality.py
	$(PY) benchmarks/telemetry.py
	$(PY) benchmarks/render_readme.py

clean:
	rm -rf $(VENV) runs .pytest_cache
