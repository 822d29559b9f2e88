# Two entry points on a fresh machine: `make demo` and `make test`.
# Both create .venv with the pinned versions of constraints.txt on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test bench gpu-check clean

$(STAMP): constraints.txt requirements/base.txt requirements/test.txt requirements/dev.txt setup.py pyproject.toml \
		$(shell find csrc -type f ! -name '*.md')
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0 setuptools wheel
	$(PY) -m pip install -q -c constraints.txt -r requirements/dev.txt
	$(PY) -m pip install -q --no-build-isolation --no-deps -e .
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py --out out/demo

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m pytest benchmarks -o python_files='bench_*.py' -o python_functions='bench_*' --benchmark-enable \
		--benchmark-columns=min,median,mean,stddev,rounds

# The GPU checks (benchmarks/gpu/README.md): CUDA build, CUDA tests, benchmarks;
# results in $(GPU_OUT)/gpu_results.{json,md}. No install step: a GPU machine
# brings its own CUDA torch, so the python is .venv's where there is one and
# python3 otherwise (GPU_PYTHON=... to choose).
GPU_OUT ?= out/gpu
GPU_PYTHON ?= $(if $(wildcard $(PY)),$(PY),python3)
gpu-check:
	OUT=$(GPU_OUT) PYTHON=$(GPU_PYTHON) bash benchmarks/gpu/run.sh

clean:
	rm -rf $(VENV) out build *.egg-info .pytest_cache .benchmarks
