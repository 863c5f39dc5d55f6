# Set-up and the two everyday commands. Every target creates the virtual
# environment (.venv) when it is missing and reuses it otherwise.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The verified CPU stack (see README, "Installation"): a pinned CPU torch,
# setuptools < 81 for mmcv's setup.py, mmcv built from source with its ops
# (without debug symbols: half the compile time, a 2 MB instead of 32 MB wheel).
TORCH_VERSION ?= 2.13.0
MMCV_VERSION ?= 2.1.0
STAMP := $(VENV)/.samref-installed
PYTEST_ARGS ?= -m "not slow"

.PHONY: install test demo clean-venv

install: $(STAMP)

$(STAMP): setup.py requirements/runtime.txt requirements/tests.txt requirements/build.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install "torch==$(TORCH_VERSION)"
	$(BIN)/pip install -r requirements/build.txt
	$(BIN)/python -c "import mmcv.ops" 2>/dev/null || \
		CFLAGS="-g0" MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=2 \
		$(BIN)/pip install --no-build-isolation "mmcv==$(MMCV_VERSION)"
	$(BIN)/pip install -r requirements/runtime.txt -r requirements/tests.txt
	$(BIN)/pip install --no-build-isolation --no-deps -e .
	touch $@

test: $(STAMP)
	$(BIN)/python -m pytest tests $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python demo/shapes_demo.py

clean-venv:
	rm -rf $(VENV)
