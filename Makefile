# Emhana — the two commands: `make run` and `make test`. Everything else builds on `make setup`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
LOCALSTRIPE_PORT ?= 8420

.PHONY: setup run test faults e2e lighthouse bench bench-ci serve lint worker clean-db messages fuzz vendor-dwv mutate

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

CJK_FONT := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc

$(CJK_FONT):  ## Chinese in the second-opinion PDF; Debian's fonts-noto-cjk
	apt-get update -qq && apt-get install -y -qq fonts-noto-cjk

setup: $(STAMP) $(FONT) $(CJK_FONT)  ## create the virtual environment and install (idempotent)

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
	$(PY) -m pytest -m "not e2e and not worker and not faults" -q

# Fault tests on a PostgreSQL, Redis, gunicorn x2 and Celery workers of their own (temporary, free ports; never the
# machine's shared ones): outages under load, a worker SIGKILLed mid-send, webhook storms, the race on 2 instances.
faults: setup  ## fault tests (installs PostgreSQL's server and redis-server with apt-get when missing)
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || (mkdir -p /etc/postgresql-common \
	  && (grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf \
	      || echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf) \
	  && apt-get update -qq && apt-get install -y -qq postgresql)
	@command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server)
	env -u DATABASE_URL -u CACHE_URL -u REDIS_URL -u CELERY_BROKER_URL -u DJANGO_ENV -u DJANGO_SETTINGS_MODULE \
	  $(PY) -m pytest tests/faults -m faults -q -s

# Lighthouse from npm into .tools/ (gitignored); 12.2.3 because 13 needs Node 22. Node 20 + npm from apt-get if missing.
LIGHTHOUSE_VERSION := 12.2.3
LIGHTHOUSE := .tools/.lighthouse-$(LIGHTHOUSE_VERSION)

$(LIGHTHOUSE):
	@command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	npm install --prefix .tools --no-audit --no-fund --loglevel=error lighthouse@$(LIGHTHOUSE_VERSION)
	@touch $(LIGHTHOUSE)

CHROMIUM_APT := command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk)

e2e: setup $(LIGHTHOUSE)  ## browser tests in Debian's chromium (installs it with apt-get when missing): journeys, axe, make serve, Lighthouse
	@$(CHROMIUM_APT)
	$(PY) -m pytest tests/e2e -m e2e -q

lighthouse: setup $(LIGHTHOUSE)  ## Lighthouse (mobile) on home, catalogue, a service page against make serve (PostgreSQL + Redis): >= 95 each
	@$(CHROMIUM_APT)
	$(PY) -m pytest tests/e2e/test_lighthouse.py -m e2e -q -s

WRK := /usr/bin/wrk

$(WRK):  ## the benchmarks' load generator (C, epoll: never the bottleneck); Debian's wrk
	apt-get update -qq && apt-get install -y -qq wrk

bench: setup $(WRK)  ## benchmarks on PostgreSQL + Redis through gunicorn with wrk; ratios to /healthz in bench-results/*.json and a table
	$(PY) -m tests.bench.run

bench-ci: setup $(WRK)  ## the bounded benchmark (<= 90 s) for CI: fails when a ratio target is missed
	timeout 170 $(PY) -m tests.bench.run --ci

fuzz: setup  ## schemathesis over the whole API as a signed-in patient, long: FUZZ_EXAMPLES (300) per operation and mode
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-300} FUZZ_RANDOM=1 $(PY) -m pytest tests/fuzz -m fuzz -q -s

serve: setup  ## production shape: gunicorn + Celery worker + beat under honcho (Procfile), settings from the environment
	@test -n "$$SECRET_KEY" || (echo "Set SECRET_KEY, DATABASE_URL, CACHE_URL, CELERY_BROKER_URL, ALLOWED_HOSTS, the Stripe keys, DATA_ENCRYPTION_KEYS and DATA_HASH_KEY first: production refuses to start without them (README: Running in production)." && exit 1)
	@test -n "$$CELERY_BROKER_URL" || (echo "Set CELERY_BROKER_URL (Redis): production runs its tasks on a worker." && exit 1)
	@mkdir -p var
	DJANGO_ENV=production $(PY) manage.py collectstatic --noinput -v0
	DJANGO_ENV=production $(PY) manage.py migrate --noinput
	DJANGO_ENV=production EMHANA_HOST=$(HOST) EMHANA_PORT=$(PORT) exec $(VENV)/bin/honcho -f Procfile start

worker: setup  ## a Celery worker and beat (needs CELERY_BROKER_URL)
	$(VENV)/bin/celery -A portal worker -B -l info

vendor-dwv:  ## rebuild the DICOM viewer (dwv from npm, pinned in package-lock.json) into static/vendor/dwv
	@command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	npm ci --no-audit --no-fund --loglevel=error
	npm run build:dwv

# Mutation testing with mutmut (docs/mutation.md; config under [tool.mutmut] in pyproject.toml), one child process.
# MUTATE: mutmut's mutant-name globs, i.e. the functions mutated. The default, ~32 min here: the cancellation, refund,
# reason and state rules, the payment services, and the engine's overlap checks (overlaps, inside, _clear). MUTATE_ALGEBRA adds the
# range algebra (~17 min more: pytest-django runs the slow database tests before the pure ones that kill those
# mutants): make mutate MUTATE='$(MUTATE_RULES) $(MUTATE_ALGEBRA)'. MUTATE= (empty) mutates every function of the five
# files (~2 h). mutants/ is made anew each time: a cached verdict would outlive the tests that gave it.
AVAILABILITY := bookings.engine.availability
MUTATE_ALGEBRA := $(AVAILABILITY).x_normalize__* $(AVAILABILITY).x_subtract__* $(AVAILABILITY).x_intersect__* \
  $(AVAILABILITY).x__free_unit__*
MUTATE_RULES := bookings.lifecycle.* bookings.payments.services.x_* \
  $(AVAILABILITY).x_overlaps__* $(AVAILABILITY).x_inside__* $(AVAILABILITY).x__clear__*
MUTATE ?= $(MUTATE_RULES)

mutate: setup  ## mutation testing (mutmut): prints killed / total and the survivors per file
	rm -rf mutants && mkdir -p mutants
	@set -eo pipefail; start=$$(date +%s); \
	$(VENV)/bin/mutmut run --max-children 1 $(foreach m,$(MUTATE),'$(m)') 2>&1 | tee mutants/mutmut-run.log \
	  | tr '\r' '\n' | awk 'match($$0, / [0-9]+\/[0-9]+ /) { d = int(substr($$0, RSTART + 1) / 50); if (d > last) { last = d; print; fflush() } next } \
	    /done|second|ailed|rror|Stopping|Traceback/ { print; fflush() }'; \
	echo "mutmut took $$(( ($$(date +%s) - start) / 60 )) min $$(( ($$(date +%s) - start) % 60 )) s"
	@$(VENV)/bin/mutmut results --all true | awk -F': ' '$$2 != "not checked" { \
	    k = $$1; gsub(/ /, "", k); sub(/\.[^.]*$$/, "", k); gsub(/\./, "/", k); k = k ".py"; n[k]++; c[k, $$2]++; t[$$2]++; all++ } \
	  END { for (f in n) printf "%-34s killed %4d / %4d (%5.1f%%)  survived %3d  no tests %3d  timeout %2d\n", f, \
	          c[f, "killed"] + c[f, "timeout"], n[f], 100 * (c[f, "killed"] + c[f, "timeout"]) / n[f], \
	          c[f, "survived"], c[f, "no tests"], c[f, "timeout"] | "sort"; close("sort"); \
	        printf "%-34s killed %4d / %4d (%5.1f%%)  survived %3d  no tests %3d  timeout %2d  (timeouts count as killed)\n", \
	          "TOTAL", t["killed"] + t["timeout"], all, all ? 100 * (t["killed"] + t["timeout"]) / all : 0, \
	          t["survived"], t["no tests"], t["timeout"] }'
	@echo "Survivors: .venv/bin/mutmut results; one diff: .venv/bin/mutmut show NAME (full log: mutants/mutmut-run.log)"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/bandit -q -r bookings catalog cms portal -x '*/migrations/*' -ll

messages: setup  ## refresh and compile the locale files
	@# vendor_locale/ holds hand-made catalogues for allauth (no source strings of its own): never regenerate them
	$(PY) manage.py makemessages --all --ignore='.venv/*' --ignore='vendor_locale/*' --ignore='tests/*' --ignore='test-artifacts/*' --ignore='node_modules/*' --ignore='.tools/*' --no-obsolete
	$(PY) manage.py compilemessages --ignore='.venv/*'
