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

# lint and format checks first (seconds); the service tests run against SQLite and against Debian's PostgreSQL,
# which scripts/test-postgres.sh starts
test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	RADIOLOC_TEST_POSTGRES=$${RADIOLOC_TEST_POSTGRES:-$$(bash scripts/test-postgres.sh)} $(BIN)/pytest

# the benchmarks the README quotes: fresh data of the evaluation seeds (benchmarks/seeds.py), JSON and figures in
# docs/benchmarks/, then the README's Results tables rendered from that JSON
bench: $(STAMP)
	$(BIN)/python benchmarks/probabilistic.py
	$(BIN)/python benchmarks/readme_tables.py

clean:
	rm -rf $(VENV) out
