# Everything a fresh machine needs: Python 3.10+ with pip and venv. Each target creates what it uses.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SHARED ?= ../shared
# The GPU machine has PyTorch in its own python3 and no network (see results/README.md).
GPU_PYTHON ?= python3
OUT ?= gpu-report

.PHONY: setup test lint unit nbval train lab bench mirror reference-runs notebook-outputs \
	notebook-outputs-real gpu-prepare gpu-report gpu-publish clean

setup: $(STAMP)

# Re-install when the package's dependencies change.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

test: lint unit nbval

lint: $(STAMP)
	$(BIN)/ruff check googlenet_utils tests tools notebooks
	$(BIN)/ruff format --check googlenet_utils tests tools notebooks

unit: $(STAMP)
	$(BIN)/python -m pytest tests

# Notebooks run top to bottom in smoke mode: synthetic data, the smoke recipe, the CPU.
nbval: $(STAMP)
	GOOGLENET_SMOKE=1 $(BIN)/python -m pytest --nbval-lax --nbval-current-env \
		--nbval-sanitize-with notebooks/nbval_sanitize.cfg -p no:cacheprovider notebooks

# The recipe follows the device: `fast` on a GPU, `cpu` (about half an hour) without one.
train: $(STAMP)
	$(BIN)/python -m googlenet_utils.train --data-dir data --resume

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

bench: $(STAMP)
	$(BIN)/python -m googlenet_utils.bench loader
	$(BIN)/python -m googlenet_utils.bench train

# The CIFAR-10 JPEG mirror (50,000 official training images, 5,000 official test images) from the shared folder.
mirror: $(STAMP)
	$(BIN)/python $(SHARED)/tools/cifar10_mirror.py data/mirror --official-test \
		--train $(SHARED)/data/cifar10-jpeg-train.npz --test $(SHARED)/data/cifar10-jpeg-test.npz

# The shipped CPU reference runs (about an hour on a 2-core CPU; run nothing else meanwhile).
reference-runs: $(STAMP) mirror
	$(BIN)/python tools/ship_reference_runs.py

# After editing a notebook: re-run it in smoke mode and store the outputs of its checked cells.
notebook-outputs: $(STAMP)
	$(BIN)/python tools/store_notebook_outputs.py

# Store real outputs (full mode, the JPEG mirror, the reference runs) for readers of the repository.
notebook-outputs-real: $(STAMP) mirror
	$(BIN)/python tools/store_notebook_outputs.py --real

# Here, before a GPU session: the mirror's data and tool, a pure-Python wheel, and the commit.
gpu-prepare: $(STAMP)
	mkdir -p .gpu/wheels
	cp $(SHARED)/data/cifar10-jpeg-train.npz $(SHARED)/tools/cifar10_mirror.py .gpu/
	$(BIN)/python -m pip download --no-deps --quiet -d .gpu/wheels tqdm
	git rev-parse HEAD > .gpu/commit

# On the GPU machine (carry .gpu/): writes the mirror, then the report into $(OUT). About 5 minutes.
gpu-report:
	$(GPU_PYTHON) -c "import tqdm" 2>/dev/null || $(GPU_PYTHON) -m pip install --no-index --find-links .gpu/wheels tqdm
	$(GPU_PYTHON) .gpu/cifar10_mirror.py data/mirror --train .gpu/cifar10-jpeg-train.npz
	PYTHONPATH=. PYTHONUNBUFFERED=1 $(GPU_PYTHON) -m googlenet_utils.gpu_report run --data-dir data/mirror \
		--no-verify --out $(OUT) --commit $$(cat .gpu/commit) $(REPORT_ARGS)

# Back here: make gpu-publish REPORT=<folder the device returned> NAME=h100-fast
gpu-publish: $(STAMP)
	$(BIN)/python -m googlenet_utils.gpu_report publish $(REPORT) --name $(NAME)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
