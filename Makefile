# Set-up and the two everyday commands. Every target creates the virtual
# environment (.venv) when it is missing and reuses it otherwise.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The verified stack (docs/en/get_started.md): torch (the pinned version
# unless the venv has one already, e.g. a CUDA build installed first),
# setuptools < 81 for mmcv's setup.py, mmcv built from source with its CPU
# ops only, also next to a CUDA torch (CUDA_VISIBLE_DEVICES= hides the GPU
# from its setup.py: no nvcc, minutes), without debug symbols (half the
# compile time, a 2 MB instead of 32 MB wheel). samref runs no compiled
# kernel of mmcv on any device; mmseg imports its ops.
TORCH_VERSION ?= 2.13.0
MMCV_VERSION ?= 2.1.0
STAMP := $(VENV)/.samref-installed
OPTIONAL_STAMP := $(VENV)/.samref-optional-installed
LINT_STAMP := $(VENV)/.samref-lint-installed
PYTEST_ARGS ?= -m "not slow"
# pytest-xdist: a worker per core, each test file on one worker (its module
# fixtures train once), one thread each: the tiny models' steps barely use a
# second thread, and two threads in each of two workers on two cores ran the
# suite 1.5 times slower than one. PYTEST_WORKERS=0 runs it in this process
# with the default threads.
PYTEST_WORKERS ?= auto

.PHONY: install test test-gpu lint demo demo-real app test-browser clean-venv

install: $(STAMP)

$(STAMP): setup.py requirements/runtime.txt requirements/tests.txt requirements/build.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || \
		$(BIN)/pip install "torch==$(TORCH_VERSION)"
	$(BIN)/pip install -r requirements/build.txt
	$(BIN)/python -c "import mmcv.ops" 2>/dev/null || \
		CUDA_VISIBLE_DEVICES= CFLAGS="-g0" MMCV_WITH_OPS=1 FORCE_CUDA=0 \
		MAX_JOBS=$$(nproc) $(BIN)/pip install --no-build-isolation \
		"mmcv==$(MMCV_VERSION)"
	$(BIN)/pip install -r requirements/runtime.txt -r requirements/tests.txt
	$(BIN)/pip install --no-build-isolation --no-deps -e .
	touch $@

test: $(STAMP)
	$(if $(filter 0,$(PYTEST_WORKERS)),,OMP_NUM_THREADS=1) \
		$(BIN)/python -m pytest tests -n $(PYTEST_WORKERS) \
		--dist loadfile $(PYTEST_ARGS)

# The checks that need an NVIDIA GPU (the `cuda` marker; skipped elsewhere).
test-gpu: $(STAMP)
	$(BIN)/python -m pytest tests -m cuda -rs -v

# The checks of .pre-commit-config.yaml (flake8, isort, yapf, codespell;
# settings in setup.cfg) on the whole tree, without pre-commit's downloads.
$(LINT_STAMP): $(STAMP) requirements/lint.txt
	$(BIN)/pip install -r requirements/lint.txt
	touch $@

lint: $(LINT_STAMP)
	$(BIN)/flake8 .
	$(BIN)/isort --check-only --diff .
	$(BIN)/yapf --diff --recursive --parallel samref tools tests demo configs setup.py
	$(BIN)/codespell

demo: $(STAMP)
	$(BIN)/python demo/shapes_demo.py

# Training on real pictures: the demo's SAM trained further on the real
# COCO-MVal copy, then SAM-REF; both evaluated on the real GrabCut copy
# (../shared/data by default; COCO_MVAL=... GRABCUT=... for other copies).
COCO_MVAL ?= ../shared/data/COCO_MVal
GRABCUT ?= ../shared/data/GrabCut
demo-real: $(STAMP)
	$(BIN)/python demo/real_data_demo.py --coco-mval $(COCO_MVAL) \
		--grabcut $(GRABCUT)

# The web demo's requirements (requirements/optional.txt), installed once.
$(OPTIONAL_STAMP): $(STAMP) requirements/optional.txt
	$(BIN)/pip install -r requirements/optional.txt
	touch $@

# The web demo on http://127.0.0.1:7860 (APP_CONFIG: any model config; with
# APP_CHECKPOINT unset it uses the weights `make demo` trained, if any).
APP_CONFIG ?= configs/demo/samref_tiny_256_stage2.py
APP_CHECKPOINT ?=
app: $(OPTIONAL_STAMP)
	$(BIN)/python demo/app.py $(APP_CONFIG) $(APP_CHECKPOINT)

# The web demo in headless Chromium; screenshots in work_dirs/browser_test.
test-browser: $(OPTIONAL_STAMP)
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update && apt-get install -y chromium chromium-driver; }
	SAMREF_SCREENSHOT_DIR=work_dirs/browser_test \
		$(BIN)/python -m pytest tests/test_demo/test_app_browser.py -rs -v

clean-venv:
	rm -rf $(VENV)
