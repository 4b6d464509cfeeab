# Two set-up commands: `make demo` and `make test`. Both create or refresh .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: demo test test-slow test-gpu lint install install-test benchmarks docs wheel-check clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PIP) "torch==2.13.0"
	# the demo is a sweep on a local Ray: the ray extra comes with the first command
	$(PIP) -e ".[ray]"
	touch $@

$(TEST_STAMP): $(STAMP)
	$(PIP) -e ".[test,lint]"
	# torchattacks' metadata requires torchvision (no CPU wheel) and neurobench's requires
	# torchaudio (pins another torch): install both without deps; the modules we cross-check
	# against need only what the test extra already brings (scipy, tqdm, requests, numpy).
	$(PY) -m pip install --disable-pip-version-check -q --no-deps "torchattacks==3.5.1" "neurobench==2.3.0"
	touch $@

# the gallery's BMI example reads EEG through MNE: the bmi extra comes with the docs
$(DOCS_STAMP): $(STAMP)
	$(PIP) -e ".[docs,bmi]"
	touch $@

install: $(STAMP)
install-test: $(TEST_STAMP)

demo: $(STAMP)
	$(VENV)/bin/neuroaikit demo --out demo-output

test: $(TEST_STAMP)
	# the slowest tests are listed so that the 15-minute budget can be watched in CI logs
	$(PY) -m pytest -q --durations=30

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check src tests benchmarks docs examples
	$(VENV)/bin/mypy

# the workflow tests on a CUDA GPU (tests parametrised by device run on cuda; see tests/conftest.py),
# and the tests that need a GPU, marked gpu
test-gpu: $(TEST_STAMP)
	$(PY) -m pytest -q -m gpu --devices cuda

test-slow: $(TEST_STAMP)
	# exit status 5 means no test is marked slow: nothing to run is not a failure
	$(PY) -m pytest -q -m slow || [ $$? -eq 5 ]

# every benchmark that needs no input of yours, in full (hours on a CPU); `make benchmarks
# BENCH_ARGS=--quick` runs their short versions. Left out, since they need input: insilico_table.py
# (probed run folders), xdg_100.py (--out), suite2p_roundtrip.py (--suite2p-python: a Python with suite2p);
# benchmarks/_cli.py is the command line some of them share, not a benchmark.
# Every script that takes --data-dir gets BENCH_DATA, the parent of the data folders (the loaders
# find mnist/, cifar10-subset/, eeg/ ... in it), so BENCH_DATA alone decides which data they read;
# the others simulate their data. The scripts in BENCH_REPLACE keep
# their models in run folders under runs/bench/ and refuse to replace them without --overwrite:
# rerunning this target is asking for them to be replaced.
BENCH_NEED_INPUT := benchmarks/insilico_table.py benchmarks/xdg_100.py benchmarks/suite2p_roundtrip.py
BENCH_REPLACE := adversarial_training attack_speed certified_accuracy certify cifar_noise_defenses hidden_noise_defense
BENCH_ARGS ?=
BENCH_DATA ?= ../shared/data
benchmarks: $(TEST_STAMP)
	for b in $(filter-out $(BENCH_NEED_INPUT),$(wildcard benchmarks/[!_]*.py)); do \
	  name=$$(basename $$b .py); data=""; \
	  if grep -q -- '"--data-dir"' $$b; then data="--data-dir $(BENCH_DATA)"; fi; \
	  case " $(BENCH_REPLACE) " in *" $$name "*) data="$$data --overwrite";; esac; \
	  echo "== $$b $$data"; $(PY) $$b $$data $(BENCH_ARGS) || exit 1; \
	done

# the documentation site: warnings are errors, every gallery example runs, then no broken internal link
docs: $(DOCS_STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	$(PY) docs/check_links.py docs/_build/html

# build the sdist and, from it, the wheel; install the wheel in a clean venv and run the CLI
wheel-check: $(TEST_STAMP)
	rm -rf dist build/wheel-venv
	$(PY) -m build --outdir dist . > /dev/null
	$(PYTHON) -m venv build/wheel-venv
	build/wheel-venv/bin/python -m pip install --disable-pip-version-check -q -c constraints.txt dist/*.whl
	cd build && wheel-venv/bin/neuroaikit --help > /dev/null && wheel-venv/bin/neuroaikit --version

clean:
	rm -rf $(VENV) demo-output .pytest_cache docs/_build docs/api docs/cli docs/auto_examples docs/results/generated dist build
