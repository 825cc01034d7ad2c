# Quick start (see README.md):
#   make course   set up .venv and open the course in JupyterLab
#   make check    students: check your functions (your notebooks under nbval + unit tests)
#   make test     set up .venv with the test tools and run every test (developers, CI)
# Other targets: make stylize (headless: writes a stylized PNG), make notebooks (authors).

PYTHON ?= python3
VENV ?= .venv
# Which torch to install, and from where. Without an NVIDIA GPU (no nvidia-smi on the PATH), PyTorch's
# CPU index is added, so pip picks the CPU build (about 1 GB less than CUDA's libraries); where that
# index cannot be reached, pip says so and falls back to its usual index. Pick by hand with e.g.
#   make course TORCH_INDEX=                      (pip's choice: CUDA on Linux)
#   make course TORCH_INDEX="--index-url https://download.pytorch.org/whl/cu126"
TORCH ?= torch torchvision
CPU_INDEX := --extra-index-url https://download.pytorch.org/whl/cpu
TORCH_INDEX ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,$(CPU_INDEX))
BIN := $(VENV)/bin
# JupyterLab refuses to run as root without --allow-root (containers, Colab-like images), and opens
# no browser where there is no display (it prints the URL to open instead).
JUPYTER_FLAGS ?= $(if $(filter 0,$(shell id -u)),--allow-root) \
	$(if $(DISPLAY)$(WAYLAND_DISPLAY)$(filter Darwin,$(shell uname -s)),,--no-browser)
# Offline weights: a copy in weights/ (see README), found by the package without any variable.
SHARED_WEIGHTS ?= ../shared/weights/squeezenet1_1_features.pth

.PHONY: course check test stylize notebooks weights

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Students get the course, JupyterLab and their checks; developers (make test) also the test tools
# and nbgrader.
$(VENV)/.course: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install $(TORCH_INDEX) $(TORCH)
	$(BIN)/python -m pip install -e ".[notebook,check]"
	touch $@

$(VENV)/.installed: pyproject.toml | $(BIN)/python
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
