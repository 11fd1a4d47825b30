# Two entry points (see README): `make demo` runs the main job, `make test` runs the tests.
# Both create the virtual environment in .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	bash scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/radioloc demo --out out/demo

# the service tests run against SQLite and against Debian's PostgreSQL, which scripts/test-postgres.sh starts
test: $(STAMP)
	RADIOLOC_TEST_POSTGRES=$${RADIOLOC_TEST_POSTGRES:-$$(bash scripts/test-postgres.sh)} $(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/dpm_speed.py
	$(BIN)/python benchmarks/dataset_generation.py
	$(BIN)/python benchmarks/radiounet.py
	$(BIN)/python benchmarks/locunet.py
	$(BIN)/python benchmarks/raytracing.py
	$(BIN)/python benchmarks/robustness.py

clean:
	rm -rf $(VENV) out
