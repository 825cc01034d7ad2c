# Quick start (see README.md):
#   make course   set up .venv and open the course in JupyterLab
#   make check    students: check your functions (your notebooks under nbval + unit tests)
#   make test     set up .venv with the test tools and run every test (developers, CI)
# Other targets: make stylize (headless: writes a stylized PNG), make notebooks (authors).

PYTHON ?= python3
VENV ?= .venv
# Which torch to install. The default lets pip choose the right build for your machine.
TORCH ?= torch torchvision
BIN := $(VENV)/bin

.PHONY: course check test stylize notebooks

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Students get the course, JupyterLab and their checks; developers (make test) also the test tools
# and nbgrader.
$(VENV)/.course: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install $(TORCH)
	$(BIN)/python -m pip install -e ".[notebook,check]"
	touch $@

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install $(TORCH)
	$(BIN)/python -m pip install -e ".[dev]"
	touch $@ $(VENV)/.course

course: $(VENV)/.course
	$(BIN)/jupyter lab notebooks/

stylize: $(VENV)/.course
	$(BIN)/python -m cs231n_style --example cat_starry_night --output outputs/cat_starry_night.png

check: $(VENV)/.course
	$(BIN)/python -m pytest notebooks/

test: $(VENV)/.installed
	$(BIN)/python -m pytest

notebooks: $(VENV)/.installed
	$(BIN)/python tools/make_student_notebooks.py --execute
