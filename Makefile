# bpfnb: the two commands of the README.
#   make demo   set up, then run notebooks/quickstart.ipynb headless (DataFrames -> out/*.csv)
#   make test   set up, then ruff, mypy and the whole pytest suite (kernel, notebooks, browser)
PY := .venv/bin/python
OUT ?= out

.PHONY: setup setup-browser demo test lint typecheck pytest bench clean

setup:
	bash scripts/setup.sh

setup-browser:
	bash scripts/setup.sh --browser

demo: setup
	BPFNB_OUT=$(abspath $(OUT)) $(PY) scripts/run_notebook.py notebooks/quickstart.ipynb $(OUT)

lint:
	$(PY) -m ruff check bpfnb tests benchmarks scripts
	$(PY) -m ruff format --check bpfnb tests benchmarks scripts

typecheck:
	$(PY) -m mypy

pytest:
	$(PY) -m pytest -ra

test: setup-browser lint typecheck pytest

bench: setup
	-bash benchmarks/setup-bcc.sh >/dev/null
	-$(PY) benchmarks/compile.py
	-$(PY) benchmarks/maps.py
	-$(PY) benchmarks/ringbuf.py
	-$(PY) benchmarks/widgets.py
	-$(PY) benchmarks/fleet.py

clean:
	rm -rf .venv $(OUT) test-output .mypy_cache .ruff_cache .pytest_cache
