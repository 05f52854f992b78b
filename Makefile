# Emhana — the two commands: `make run` and `make test`. Everything else builds on `make setup`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
LOCALSTRIPE_PORT ?= 8420

.PHONY: setup run test e2e bench serve lint worker clean-db messages

ICU := /usr/include/unicode/ucol.h

$(ICU):  ## ICU headers for PyICU (collation: country names sorted as each language sorts them)
	apt-get update -qq && apt-get install -y -qq libicu-dev pkg-config

$(STAMP): pyproject.toml $(ICU)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

FONT := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf

$(FONT):  ## the visa letter's Unicode font (Cyrillic); Debian's fonts-dejavu-core
	apt-get update -qq && apt-get install -y -qq fonts-dejavu-core

setup: $(STAMP) $(FONT)  ## create the virtual environment and install (idempotent)

db: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_catalogue
	$(PY) manage.py load_demo

run: db  ## migrate, load catalogue and demo clinics, serve on http://127.0.0.1:8000 (SQLite, eager Celery)
	@$(PY) -c "import socket, sys; busy = [p for p in sys.argv[2:] if socket.socket().connect_ex((sys.argv[1], int(p))) == 0]; \
	  busy and sys.exit(f'Already in use on {sys.argv[1]}: port {\", \".join(busy)}. Is make run already running? Stop it (Ctrl+C), or choose other ports: make run PORT=8001 LOCALSTRIPE_PORT=8421')" \
	  $(HOST) $(PORT) $$([ -z "$$STRIPE_SECRET_KEY" ] && echo $(LOCALSTRIPE_PORT))
	@echo "Emhana on http://$(HOST):$(PORT)/  (demo staff: see README)"
	@if [ -z "$$STRIPE_SECRET_KEY" ]; then \
	  echo "No Stripe keys set: test payments through localstripe on 127.0.0.1:$(LOCALSTRIPE_PORT) (no real money; card 4242 4242 4242 4242)"; \
	  STRIPE_API_BASE=http://127.0.0.1:$(LOCALSTRIPE_PORT) STRIPE_JS_TEST_DOUBLE=true SITE_URL=http://$(HOST):$(PORT) \
	  EMHANA_HOST=$(HOST) EMHANA_PORT=$(PORT) LOCALSTRIPE_PORT=$(LOCALSTRIPE_PORT) \
	  exec $(VENV)/bin/honcho -f Procfile.dev start; \
	else \
	  exec $(PY) manage.py runserver $(HOST):$(PORT); \
	fi

test: setup  ## the whole suite on the embedded default (SQLite, eager Celery, localstripe)
	$(PY) -m pytest -m "not e2e and not worker" -q

e2e: setup  ## browser tests in Debian's chromium (installs it with apt-get when missing)
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk)
	$(PY) -m pytest tests/e2e -m e2e -q

bench: setup  ## benchmarks through gunicorn; writes bench-results/*.json and prints a table
	$(PY) -m tests.bench.run

serve: setup  ## production shape: gunicorn + Celery worker + beat under honcho (Procfile), settings from the environment
	@test -n "$$SECRET_KEY" || (echo "Set SECRET_KEY, DATABASE_URL, CACHE_URL, CELERY_BROKER_URL, ALLOWED_HOSTS and the Stripe keys first: production refuses to start without them (README: Running in production)." && exit 1)
	@test -n "$$CELERY_BROKER_URL" || (echo "Set CELERY_BROKER_URL (Redis): production runs its tasks on a worker." && exit 1)
	@mkdir -p var
	DJANGO_ENV=production $(PY) manage.py collectstatic --noinput -v0
	DJANGO_ENV=production $(PY) manage.py migrate --noinput
	DJANGO_ENV=production EMHANA_HOST=$(HOST) EMHANA_PORT=$(PORT) exec $(VENV)/bin/honcho -f Procfile start

worker: setup  ## a Celery worker and beat (needs CELERY_BROKER_URL)
	$(VENV)/bin/celery -A portal worker -B -l info

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/bandit -q -r bookings catalog cms portal -x '*/migrations/*' -ll

messages: setup  ## refresh and compile the locale files
	@# vendor_locale/ holds hand-made catalogues for allauth (no source strings of its own): never regenerate them
	$(PY) manage.py makemessages --all --ignore='.venv/*' --ignore='vendor_locale/*' --ignore='tests/*' --ignore='test-artifacts/*' --no-obsolete
	$(PY) manage.py compilemessages --ignore='.venv/*'
