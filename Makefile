# One entry point. `make demo` and `make test` each do the whole set-up on a fresh machine:
# find a Python >= 3.12 (PATH or pyenv), create .venv, install pymc-dlm with its test extras, then run.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench bench-pymc bench-estimation bench-many clean

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

# The competitors live in an environment of their own (.venv-bench): pymc-extras pins its own
# PyMC, and none of them is a dependency of pymc-dlm.
BENCH_PY    := .venv-bench/bin/python
BENCH_STAMP := .venv-bench/.installed
$(BENCH_STAMP): pyproject.toml
	@set -e; base="$$(scripts/find-python)"; \
	if [ ! -x $(BENCH_PY) ]; then "$$base" -m venv .venv-bench; fi; \
	$(BENCH_PY) -m pip install --quiet -e ".[test]" pymc-extras dynaris pykalman simdkalman
	@touch $(BENCH_STAMP)

bench-pymc: $(BENCH_STAMP)
	$(BENCH_PY) benchmarks/bench_pymc.py

bench-estimation: $(BENCH_STAMP)
	$(BENCH_PY) benchmarks/bench_estimation.py

bench-many: $(BENCH_STAMP)
	$(BENCH_PY) benchmarks/bench_many.py

clean:
	rm -rf $(VENV) .venv-bench demo_output .pytest_cache
	find src -name '*.nbi' -delete -o -name '*.nbc' -delete  # numba cache (see CONTRIBUTING)
