# relief-ledger: `make run` starts everything on the embedded defaults; `make test` runs the tests.
# Both create the virtual environment in .venv on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/relief run

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider -n auto --dist loadfile

# The console's browser tests drive Debian's Chromium: installed here when missing and this
# user may (root, as in CI); otherwise those tests are skipped and say why.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -q chromium chromium-driver fonts-wqy-microhei >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null && \
	      apt-get install -y -q chromium chromium-driver fonts-wqy-microhei >/dev/null)) || \
	    echo "could not install chromium: the browser tests will be skipped"; \
	  else echo "chromium/chromium-driver missing (apt-get install chromium chromium-driver):" \
	    "the browser tests will be skipped"; fi; \
	fi

# Benchmarks of issue 9 (~10 min at the default ~100k events); BENCH_ARGS="--events 1000000"
# for the big size. Writes bench/results.md and bench/results.json.
bench: $(STAMP)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
