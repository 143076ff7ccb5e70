# Everything a fresh machine needs: Python 3.10+ with pip and venv. Each target creates what it uses.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test lint unit nbval train lab bench notebook-outputs clean

setup: $(STAMP)

# Re-install when the package's dependencies change.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

test: lint unit nbval

lint: $(STAMP)
	$(BIN)/ruff check googlenet_utils tests notebooks
	$(BIN)/ruff format --check googlenet_utils tests notebooks

unit: $(STAMP)
	$(BIN)/python -m pytest tests

# Notebooks run top to bottom in smoke mode: synthetic data, a narrow model, a few CPU steps.
nbval: $(STAMP)
	GOOGLENET_SMOKE=1 $(BIN)/python -m pytest --nbval-lax --nbval-current-env \
		--nbval-sanitize-with notebooks/nbval_sanitize.cfg -p no:cacheprovider notebooks

train: $(STAMP)
	$(BIN)/python -m googlenet_utils.train --data-dir data --out runs/googlenet --resume

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

bench: $(STAMP)
	$(BIN)/python -m googlenet_utils.bench loader
	$(BIN)/python -m googlenet_utils.bench train

# After editing a notebook: re-run it and keep only the outputs of its NBVAL_CHECK_OUTPUT cells.
notebook-outputs: $(STAMP)
	$(BIN)/python tests/store_notebook_outputs.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
