PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test check docs lab clean

# (Re)create the virtual environment whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq torch==2.13.0
	$(BIN)/python -m pip install -qq -e '.[dev,bench,sweep]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m hnviz demo --out runs/demo

# Every test: unit tests, paper results, kills and resumes, sweeps, and each notebook run
# once in JupyterLab + Chromium (short FAST runs) with its checked outputs compared.
# Two workers on two cores (pytest-xdist, one file per worker at a time, one torch
# thread each: tests/conftest.py).
test: $(STAMP)
	HNVIZ_FAST=1 $(BIN)/python -m pytest tests -n auto --dist loadfile -p no:cacheprovider

# The inner loop: the tests not marked slow (about a minute and a half).
check: $(STAMP)
	HNVIZ_FAST=1 $(BIN)/python -m pytest tests -m "not slow" -n auto --dist loadfile -q -p no:cacheprovider

# The documentation site (Sphinx, strict: any warning fails): build/docs/index.html.
# The notebooks are executed first with their short settings (skipped when up to date).
docs: $(STAMP)
	$(BIN)/python docs/execute_notebooks.py
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs build/docs

lab: $(STAMP)
	$(BIN)/jupyter lab --ip 127.0.0.1 --LabApp.default_url=/lab/tree/notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

clean:
	rm -rf $(VENV) runs notebooks/runs test-artifacts .pytest_cache
