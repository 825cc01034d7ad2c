# Quick start (see README.md):
#   make course   set up .venv and open the course in JupyterLab
#   make check    students: check your functions (your notebooks under nbval + unit tests)
#   make test     set up .venv with the test tools and run every test (developers, CI)
# Other targets: make stylize (headless: writes a stylized PNG), make notebooks (authors).

PYTHON ?= python3
VENV ?= .venv
# Which torch to install, and from where. Without an NVIDIA GPU (no nvidia-smi on the PATH), PyTorch's
# CPU index is added, so pip picks the CPU build (about 1 GB instead of about 5 GB with CUDA's
# libraries). Where that index cannot be reached (offline but for pip's own registry), it is left
# out - pip would retry it for minutes - and one line says so. Pick by hand with e.g.
#   make course TORCH_INDEX=                      (pip's choice: CUDA on Linux)
#   make course TORCH_INDEX="--index-url https://download.pytorch.org/whl/cu126"
TORCH ?= torch torchvision
CPU_INDEX_URL := https://download.pytorch.org/whl/cpu
CPU_INDEX := --extra-index-url $(CPU_INDEX_URL)
HAS_GPU = $(shell command -v nvidia-smi 2>/dev/null)
# "yes" when the CPU index answers within 5 s; asked once, and only by the install recipes (an
# ordinary `make check` asks nothing). Set CPU_INDEX_UP=yes or CPU_INDEX_UP= to skip the question.
CPU_INDEX_UP ?= $(eval CPU_INDEX_UP := $(shell $(PYTHON) -c "import urllib.request as r; \
	r.urlopen('$(CPU_INDEX_URL)/', timeout=5)" >/dev/null 2>&1 && echo yes))$(CPU_INDEX_UP)
TORCH_INDEX ?= $(if $(HAS_GPU),,$(if $(CPU_INDEX_UP),$(CPU_INDEX)))
# Said before the torch install when the CPU build was wanted but its index cannot be reached.
TORCH_NOTE = $(if $(filter file,$(origin TORCH_INDEX)),$(if $(HAS_GPU)$(CPU_INDEX_UP),,@echo "No GPU here, but \
	PyTorch's CPU index ($(CPU_INDEX_URL)) cannot be reached: pip takes torch from its usual index (on Linux \
	the CUDA build, about 5 GB with its libraries; it runs on the CPU too)."))
BIN := $(VENV)/bin
# JupyterLab refuses to run as root without --allow-root (containers, Colab-like images), and opens
# no browser where there is no display (it prints the URL to open instead).
JUPYTER_FLAGS ?= $(if $(filter 0,$(shell id -u)),--allow-root) \
	$(if $(DISPLAY)$(WAYLAND_DISPLAY)$(filter Darwin,$(shell uname -s)),,--no-browser)
# Offline weights: a copy in weights/ (see README), found by the package without any variable.
SHARED_WEIGHTS ?= ../shared/weights/squeezenet1_1_features.pth

.PHONY: help course check test stylize notebooks weights
.DEFAULT_GOAL := help

# `make` alone: the targets, from this file's first lines.
help:
	@sed -n 's/^#   make /  make /p; s/^# Other targets: /  also: /p' $(firstword $(MAKEFILE_LIST))

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Students get the course, JupyterLab and their checks; developers (make test) also the test tools
# and nbgrader.
$(VENV)/.course: pyproject.toml | $(BIN)/python
	$(TORCH_NOTE)
	$(BIN)/python -m pip install $(TORCH_INDEX) $(TORCH)
	$(BIN)/python -m pip install -e ".[notebook,check]"
	touch $@

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(TORCH_NOTE)
	$(BIN)/python -m pip install $(TORCH_INDEX) $(TORCH)
	$(BIN)/python -m pip install -e ".[dev]"
	touch $@ $(VENV)/.course

# The pretrained weights for offline use, copied once from $(SHARED_WEIGHTS) when it is there.
weights:
	@if [ ! -f weights/squeezenet1_1_features.pth ] && [ -f $(SHARED_WEIGHTS) ]; then \
		mkdir -p weights && cp $(SHARED_WEIGHTS) weights/ && echo "Copied $(SHARED_WEIGHTS) to weights/"; fi

course: $(VENV)/.course weights
	@echo "Starting JupyterLab on notebooks/. Open the URL it prints; stop it with Ctrl-C (twice)."
	$(BIN)/jupyter lab notebooks/ $(JUPYTER_FLAGS)

stylize: $(VENV)/.course weights
	$(BIN)/python -m cs231n_style --example cat_starry_night --output outputs/cat_starry_night.png

check: $(VENV)/.course weights
	$(BIN)/python -m pytest notebooks/

test: $(VENV)/.installed
	$(BIN)/python -m pytest --durations=30

notebooks: $(VENV)/.installed
	$(BIN)/python tools/make_student_notebooks.py --execute
