# One entry point. `make demo` and `make test` each do the whole set-up on a fresh machine:
# find a Python >= 3.12 (PATH or pyenv), create .venv, install pymc-dlm with its test extras, then run.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench bench-pymc clean

$(STAMP): pyproject.toml
	@set -e; base="$$(scripts/find-python)"; echo "using $$base"; \
	if [ ! -x $(PY) ]; then "$$base" -m venv $(VENV); fi; \
	$(PY) -m pip install --quiet --upgrade pip; \
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

demo: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pymc_dlm demo --out demo_output

test: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	$(PY) benchmarks/bench_filter.py

# pymc-extras pins its own PyMC, so it gets an environment of its own (.venv-bench)
bench-pymc:
	@set -e; base="$$(scripts/find-python)"; \
	if [ ! -x .venv-bench/bin/python ]; then "$$base" -m venv .venv-bench; fi; \
	.venv-bench/bin/python -m pip install --quiet -e . pymc-extras
	.venv-bench/bin/python benchmarks/bench_pymc.py

clean:
	rm -rf $(VENV) .venv-bench demo_output .pytest_cache
	find src -name '*.nbi' -delete -o -name '*.nbc' -delete  # numba cache (see CONTRIBUTING)
