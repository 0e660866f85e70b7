# fieldpost: `make run` starts a collector and a local agent; `make test` installs what the tests need and runs them.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast test-dates faults lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	bash packaging/run-local.sh

# The dates the suite must also hold on (libfaketime): a spring day, and a leap day's last half hour in UTC.
TEST_DATES := '@2027-03-15 10:00:00' '@2028-02-29 23:30:00'

test: $(STAMP)
	bash packaging/test-deps.sh
	$(BIN)/ruff check .
	$(BIN)/python -m pytest
	$(MAKE) --no-print-directory test-dates

# The inner loop: lint, then every test but the slow and end-to-end ones (`make test` runs them all).
test-fast: $(STAMP)
	bash packaging/test-deps.sh
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m "not slow and not e2e"

# The collector, dashboard (not the browser) and agent tests on other dates: none may depend on today's.
test-dates: $(STAMP)
	bash packaging/test-deps.sh
	for at in $(TEST_DATES); do \
	  echo "== tests at $$at"; \
	  faketime -f "$$at" $(BIN)/python -m pytest -q -p no:cacheprovider tests/collector tests/web tests/agent \
	    --deselect tests/web/test_browser.py || exit 1; \
	done

# The delivery guarantee under faults (real processes, a few minutes): prints produced / stored / lost / duplicated,
# and what was acknowledged / stored after power cuts (tests/faults/powercut: needs cc).
faults: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/faults

lint: $(STAMP)
	$(BIN)/ruff check .

# Every benchmark, one after the other (several minutes): each prints its figures, medians of a few rounds.
bench: $(STAMP)
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.ingest --heartbeats --agents 100 --batches 30 --concurrency 32 --loops uvloop,asyncio
	$(BIN)/python -m bench.sweep
	$(BIN)/python -m bench.silent_sweep
	$(BIN)/python -m bench.agent_footprint

clean:
	rm -rf $(VENV) .run .pytest_cache .ruff_cache *.egg-info
