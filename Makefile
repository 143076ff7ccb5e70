# Everything a fresh machine needs: Python 3.10+ with pip and venv. Each target creates what it uses.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SHARED ?= ../shared
# The GPU machine has PyTorch in its own python3 and no network (see results/README.md).
GPU_PYTHON ?= python3
OUT ?= gpu-report
# The GPU report's clock starts when make does: writing the mirror counts against its budget.
STARTED := $(shell date +%s)
MIRROR_META := data/mirror/cifar-10-batches-py/batches.meta

.PHONY: setup test test-fast lint unit nbval train lab bench mirror reference-runs cpu-90min cpu-tradeoff notebook-outputs \
	notebook-outputs-real gpu-prepare gpu-tqdm gpu-report gpu-report-no-aux gpu-report-best gpu-publish \
	gpu-ablation gpu-ablation-publish clean

setup: $(STAMP)

# Re-install when the package's dependencies change.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

test: lint unit nbval

# The fast tier while editing: lint and the unit tests not marked slow (no subprocesses, no compiling,
# at most one tiny training run), in the same two processes as `make unit`.
test-fast: lint $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests -m "not slow" -q $(UNIT_OPTIONS)

lint: $(STAMP)
	$(BIN)/ruff check googlenet_utils tests tools notebooks
	$(BIN)/ruff format --check googlenet_utils tests tools notebooks

# Two test processes, one torch thread each: unit tests in 6 min instead of 8.5 on 2 cores (2026-12-01).
TEST_WORKERS ?= 2
PARALLEL := -n $(TEST_WORKERS) --dist worksteal
# nbval's plugin costs each process about 4 s to import (its JSON-schema checks); unit tests need none of it.
UNIT_OPTIONS := $(PARALLEL) -p no:nbval
# nbval runs a notebook's cells in order in one kernel: each notebook stays on one process.
NOTEBOOKS_PARALLEL := -n $(TEST_WORKERS) --dist loadfile

unit: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests $(UNIT_OPTIONS)

# Notebooks run top to bottom in smoke mode: synthetic data, the smoke recipe, the CPU.
nbval: $(STAMP)
	GOOGLENET_SMOKE=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest $(NOTEBOOKS_PARALLEL) --nbval-lax --nbval-current-env \
		--nbval-sanitize-with notebooks/nbval_sanitize.cfg -p no:cacheprovider notebooks

# The recipe follows the device: `fast` on a GPU, `cpu` (about 40 minutes on 2 cores) without one.
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

# The shipped CPU reference runs (about an hour on a 2-core CPU; run nothing else meanwhile), then the
# real outputs of notebooks 04 and 05 from them: 04 re-tests runs/reference/, which only this machine has.
reference-runs: $(STAMP) mirror
	$(BIN)/python tools/ship_reference_runs.py
	$(BIN)/python tools/store_notebook_outputs.py --real notebooks/04_*.ipynb notebooks/05_*.ipynb

# The longer CPU reference notebook 05 analyses (90 minutes in all on 2 cores: run it alone), results/reference-cpu-90min.
cpu-90min: $(STAMP) mirror
	$(BIN)/python tools/ship_reference_runs.py --long

# Notebook 04's width-against-epochs table (about 5 hours on 2 cores, run alone): resumable, each run
# shipped to results/sweeps/width-epochs/ as it finishes; commit them as they come.
cpu-tradeoff: $(STAMP) mirror
	$(BIN)/python -m googlenet_utils.sweep width-epochs

# After editing a notebook: re-run it in smoke mode and store the outputs of its checked cells.
notebook-outputs: $(STAMP)
	$(BIN)/python tools/store_notebook_outputs.py

# Store real outputs (full mode, the JPEG mirror, the reference runs) for readers of the repository.
notebook-outputs-real: $(STAMP) mirror
	$(BIN)/python tools/store_notebook_outputs.py --real

# Here, before a GPU session: the mirror's data (both splits) and tool, a pure-Python wheel, the commit.
gpu-prepare: $(STAMP)
	mkdir -p .gpu/wheels
	cp $(SHARED)/data/cifar10-jpeg-train.npz $(SHARED)/data/cifar10-jpeg-test.npz \
		$(SHARED)/tools/cifar10_mirror.py .gpu/
	ls .gpu/wheels/tqdm-*.whl >/dev/null 2>&1 || $(BIN)/python -m pip download --no-deps --quiet -d .gpu/wheels tqdm
	git rev-parse HEAD > .gpu/commit

# On the GPU machine: the mirror in the official split (50,000 training, 5,000 test images), once.
$(MIRROR_META): .gpu/cifar10-jpeg-train.npz .gpu/cifar10-jpeg-test.npz
	$(GPU_PYTHON) .gpu/cifar10_mirror.py data/mirror --train .gpu/cifar10-jpeg-train.npz \
		--test .gpu/cifar10-jpeg-test.npz

.gpu/%.npz:
	@echo "error: $@ is missing: run make gpu-prepare on the machine that has $(SHARED), carry .gpu/" >&2; exit 1

gpu-tqdm:
	$(GPU_PYTHON) -c "import tqdm" 2>/dev/null || $(GPU_PYTHON) -m pip install --no-index --find-links .gpu/wheels tqdm

GPU_REPORT = PYTHONPATH=. PYTHONUNBUFFERED=1 $(GPU_PYTHON) -m googlenet_utils.gpu_report run --data-dir data/mirror \
	--no-verify --out $(OUT) --commit $$(cat .gpu/commit) --started $(STARTED)

# On the GPU machine (carry .gpu/): the `fast` recipe into $(OUT), files written as it goes. Sized to
# end within 8 minutes of make's start, mirror and compile included; a guard stops training by 9.
gpu-report: $(MIRROR_META) gpu-tqdm
	$(GPU_REPORT) $(REPORT_ARGS)

# The second call of a window (at most 6 minutes): the same recipe, seed and data without aux heads.
gpu-report-no-aux: $(MIRROR_META) gpu-tqdm
	$(GPU_REPORT) --no-aux --budget 320 --wall-limit 345 $(REPORT_ARGS)

# A later window's call on its own: `best`, as many epochs (at most 180) as the 8-minute budget allows.
gpu-report-best: $(MIRROR_META) gpu-tqdm
	$(GPU_REPORT) --recipe best $(REPORT_ARGS)

# After the report, on the GPU machine (at most 6 minutes, data included): notebook 06's most telling
# pairs at full width, one seed, into $(OUT)/gpu-pairs; checkpoints stay on the machine (runs/).
gpu-ablation: $(MIRROR_META) gpu-tqdm
	PYTHONPATH=. PYTHONUNBUFFERED=1 $(GPU_PYTHON) -m googlenet_utils.sweep gpu-pairs --data-dir data/mirror \
		--results $(OUT) --environment --commit $$(cat .gpu/commit) --started $(STARTED) --deadline 345

# Back here: make gpu-ablation-publish REPORT=<folder the device returned>
gpu-ablation-publish: $(STAMP)
	$(BIN)/python -m googlenet_utils.sweep gpu-pairs --publish $(REPORT)

# Back here: make gpu-publish REPORT=<folder the device returned> NAME=h100-fast
gpu-publish: $(STAMP)
	$(BIN)/python -m googlenet_utils.gpu_report publish $(REPORT) --name $(NAME) $(PUBLISH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
