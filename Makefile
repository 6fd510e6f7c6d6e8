# Developer entry points: `make setup`, `make demo`, `make test`, `make readme-figures`, `make clean`.
# Facts behind the install order are in ../shared/notes/environment.md.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Re-run setup only when the dependency lists or this recipe change.
SETUP_STAMP := $(VENV)/.setup-done

# torch==2.13.0 is the one spec that resolves to the local CPU wheel; any other spec pulls a
# multi-GB CUDA build. It is installed first so nothing later re-resolves it.
TORCH_VERSION := 2.13.0
TORCH_PIN := torch==$(TORCH_VERSION)
# lava-nc 0.10.0 is the newest release; it declares Python <3.11, hence --no-deps
# --ignore-requires-python (its runtime needs come from the `lava` extra in pyproject.toml).
LAVA_NC_PIN := lava-nc==0.10.0
# lava-dl 0.6.0 is the newest release and matches lava-nc 0.10; its declared torch<2.4 and
# torchvision pins cannot be met here, so it is installed the same way as lava-nc.
LAVA_DL_PIN := lava-dl==0.6.0
# The peer library of `tsslbp bench`, kept in step with pyproject.toml's `bench` extra.
SNNTORCH_PIN := snntorch==1.0.0
# The other peers (speed only), also --no-deps: SpikingJelly needs loguru at import, norse nirtorch
# (and nir, already a dependency of tsslbp).
PEER_PINS := spikingjelly==2.0.0 loguru==0.7.3 norse==1.1.0 nirtorch==2.6
# Triton (a ~285 MB wheel), so the tests run tsslbp's Triton kernels on CPU under its interpreter
# (TRITON_INTERPRET=1) against the numba kernels; on a GPU the same kernels are compiled. --no-deps:
# it declares none that matter here, and the CPU torch wheel does not pin it.
TRITON_PIN := triton==3.9.0

# Debian's Fashion-MNIST package: the four IDX .gz files, no download at run time.
FASHION_MNIST_DEB := dataset-fashion-mnist
FASHION_MNIST_DIR := /usr/share/datasets/fashion-mnist

.PHONY: setup demo test format clean readme-figures

setup: $(SETUP_STAMP)

$(SETUP_STAMP): export DEBIAN_FRONTEND := noninteractive
$(SETUP_STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet '$(TORCH_PIN)'
	$(PIP) install --quiet -e '.[lava,test]'
	$(PIP) install --quiet --no-deps --ignore-requires-python '$(LAVA_NC_PIN)' '$(LAVA_DL_PIN)'
	@# snnTorch, the peer `tsslbp bench` compares with (the `bench` extra); --no-deps so it cannot
	@# pull another torch if a release ever declares one (1.0.0 declares no dependencies).
	$(PIP) install --quiet --no-deps '$(SNNTORCH_PIN)'
	$(PIP) install --quiet --no-deps $(PEER_PINS)
	$(PIP) install --quiet --no-deps '$(TRITON_PIN)'
	@# numpy<2 (pinned in pyproject.toml): lava-nc/lava-dl are built against numpy 1.x, and
	@# other packages can silently pull numpy 2. Checked here, after the last install.
	$(PY) -c 'import numpy as np, sys; ok = int(np.__version__.split(".")[0]) < 2; \
	    sys.exit(None if ok else f"numpy {np.__version__} was installed: lava needs numpy<2")'
	$(PY) -c 'import torch, sys; ok = torch.__version__.split("+")[0] == "$(TORCH_VERSION)"; \
	    sys.exit(None if ok else f"torch {torch.__version__} replaced $(TORCH_PIN)")'
	@if ls $(FASHION_MNIST_DIR)/*.gz >/dev/null 2>&1; then \
	    echo "Fashion-MNIST already present in $(FASHION_MNIST_DIR)"; \
	elif [ "$$(id -u)" != 0 ]; then \
	    echo "Fashion-MNIST skipped: not root, so apt-get cannot install $(FASHION_MNIST_DEB)"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	    echo "Fashion-MNIST skipped: apt-get not available to install $(FASHION_MNIST_DEB)"; \
	elif ! { apt-get update -qq && apt-get install -y -qq $(FASHION_MNIST_DEB); } \
	        >/dev/null 2>&1; then \
	    echo "Fashion-MNIST skipped: apt-get install $(FASHION_MNIST_DEB) failed"; \
	else \
	    echo "Fashion-MNIST installed in $(FASHION_MNIST_DIR)"; \
	fi
	touch $@

# The main job on the embedded digits: train, export to netx, golden model, verify on Lava.
demo: setup
	$(VENV)/bin/tsslbp demo --out runs/demo

# README's demo summary (table and time) and docs/img/demo_*.png from a fresh `tsslbp demo` run.
readme-figures: setup
	$(PY) benchmarks/readme_figures.py

# Lint and format checks first (ruff, configured in pyproject.toml), then the test suite.
test: setup
	$(VENV)/bin/ruff check tsslbp tests benchmarks
	$(VENV)/bin/ruff format --check tsslbp tests benchmarks
	$(PY) -m pytest -q

# Rewrite the tree in the project's style (ruff format + the import order and safe lint fixes).
format: setup
	$(VENV)/bin/ruff check --fix tsslbp tests benchmarks
	$(VENV)/bin/ruff format tsslbp tests benchmarks

clean:
	rm -rf $(VENV) runs
