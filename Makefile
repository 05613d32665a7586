# Two commands on a fresh clone: `make run` (the app on the bundled samples) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
SAMPLES := resources/samples
SAMPLE_CLASSES := person,cat,cup,vehicle

.PHONY: run test test-long lint bench weights venv clean-venv

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11+) on PATH, or run: make PYTHON=python3.12 ..."; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch and torchvision pinned together: an unpinned torch pulls a newer torchvision ABI.
	$(PIP) install -q "torch==2.14.1" "torchvision==0.29.1"
	$(PIP) install -q -e ".[test,dev,cluster]"
	# rf-groundingdino and supervision pull opencv-python, whose bundled Qt plugins clash with
	# PySide6; keep only the headless build (docs/decisions/0002-opencv-headless.md).
	$(PIP) uninstall -q -y opencv-python opencv-python-headless
	$(PIP) install -q --no-deps "opencv-python-headless>=4.8"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/autolabel-gui $(SAMPLES) --classes $(SAMPLE_CLASSES)

weights: $(STAMP)
	$(VENV)/bin/autolabel-gui weights download

# lint first: a layering or type slip fails in seconds, before the 4-minute suite
# -n: one pytest worker per core (at most 4: each worker builds the tiny model once)
test: lint
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -p xdist -n auto --maxprocesses=4

lint: $(STAMP)
	$(VENV)/bin/ruff check autolabel_gui tests benchmarks docs
	$(VENV)/bin/mypy

# the reliability tests again, at full scale (the suite above runs them small)
test-long: $(STAMP)
	AUTOLABEL_LONG=1 QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -m scalable

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
