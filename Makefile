# Throwback: `make run` serves the demo, `make test` runs every test.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PHOTOS ?=
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/throwback

.PHONY: run test lint format install install-dev browser clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# face_recognition declares a dependency on the source-only `dlib`; the
# `dlib-bin` wheel in requirements.txt provides the same module, so
# face_recognition itself goes in without dependencies.
$(VENV)/.installed: requirements.txt requirements-nodeps.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Debian's Chromium for the browser tests (Playwright's own download is not used).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Install Debian's chromium (sudo apt-get install chromium) for the browser tests"; exit 1; fi; }

# Mails (digests, password resets) are printed to the console, links point here.
run: export EMAIL_URL ?= console://
run: export THROWBACK_SITE_URL ?= http://127.0.0.1:$(PORT)
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@if [ -n "$(PHOTOS)" ]; then $(BIN)/python manage.py import_albums --folder "$(PHOTOS)"; fi
	@echo "Throwback on http://127.0.0.1:$(PORT)/ (create an account there, or: $(BIN)/python manage.py createsuperuser)"
	@# gunicorn.conf.py: gthread workers, and the selfie encoder (manage.py run_encoder) beside them.
	THROWBACK_ALLOW_SIGNUP=$${THROWBACK_ALLOW_SIGNUP:-true} GUNICORN_BIND=127.0.0.1:$(PORT) \
	  $(BIN)/gunicorn throwback.wsgi

# Lint and type checks first (they take seconds), then every test.
test: lint browser
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy faces members thalia throwback

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) data/db.sqlite3 data/media data/static

# --- Benchmarks (issue 6) ----------------------------------------------------
# Import, match, web and burst-of-uploads benchmarks (bench/), then docs/performance.md with the
# scale model. Uses dedicated throwback_bench_* databases on the server in
# DATABASE_URL (default TEST_DATABASE_URL's), never the test or demo database.
# About 10 minutes on 2 idle cores (05:00-05:10 UTC on 2026-11-26); run it when the machine is quiet.
BENCH_RESULTS ?= /tmp/throwback-bench-results
bench: install
	mkdir -p $(BENCH_RESULTS)
	export DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)}; cd bench && \
	  ../$(BIN)/python import_speed.py --workers 1 2 --json $(abspath $(BENCH_RESULTS))/import.json && \
	  ../$(BIN)/python match_speed.py --json $(abspath $(BENCH_RESULTS))/match.json && \
	  ../$(BIN)/python web_speed.py --json $(abspath $(BENCH_RESULTS))/web.json && \
	  ../$(BIN)/python burst.py --json $(abspath $(BENCH_RESULTS))/burst.json && \
	  ../$(BIN)/python report.py $(abspath $(BENCH_RESULTS)) ../docs/performance.md
	@echo "Wrote docs/performance.md"
