# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv and installs
# onnxmend with its pinned dependencies the first time (or when pyproject/constraints change).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# MindSpore's CPU wheel is ~800 MB, so it is an extra of its own, installed only by test-mindspore.
MINDSPORE_STAMP := $(VENV)/.installed-mindspore
DEMO_OUT ?= demo-out
# The development machine keeps a CPU build of torch here; elsewhere pip uses its indexes.
WHEELS := $(wildcard /opt/wheels)
PIP_FLAGS := -c constraints.txt $(if $(WHEELS),--find-links $(WHEELS))

.PHONY: demo test test-fast test-mindspore lint install clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(PIP_FLAGS) -e '.[dev]'
	touch $(STAMP)

$(MINDSPORE_STAMP): $(STAMP)
	$(PY) -m pip install --quiet $(PIP_FLAGS) -e '.[dev,mindspore]'
	touch $(MINDSPORE_STAMP)

demo: $(STAMP)
	$(VENV)/bin/onnxmend convert keras:MobileNetV2 -o $(DEMO_OUT)

# Imports only point down (the import-linter contracts in pyproject.toml), then the suite.
lint: $(STAMP)
	$(PY) .ci/lint_imports.py

test: lint
	$(PY) -m pytest -q

test-fast: lint
	$(PY) -m pytest -q -m "not slow"

# The MindSpore source's tests (they skip without the extra, so `make test` alone leaves them out).
test-mindspore: lint $(MINDSPORE_STAMP)
	$(PY) -m pytest -q tests/exporters/test_mindspore.py tests/models/test_ports.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
