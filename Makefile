# Two commands for a new user: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
AMI_PORT ?= 5038
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/supervision
# PBX=pjsip: PJSIP demo phones and a simulated Asterisk 22 (default: chan_sip and Asterisk 20)
PBX ?= sip
export AMI_PORT

.PHONY: run test test-sqlite test-postgres bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,bench]'
	touch $(STAMP)

# `make run` refuses to start when something already answers on either port: the dashboard would
# log in to whatever listens on AMI_PORT (a real PBX, another simulator) instead of its own.
define PORTS_FREE
import socket, sys
for host, port, what, knob in (("127.0.0.1", int(sys.argv[1]), "the simulated PBX (AMI)", "AMI_PORT"),
                               (sys.argv[2], int(sys.argv[3]), "the dashboard", "PORT")):
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        continue
    sys.exit(f"Port {port} on {host} is taken (something answers there), so {what} cannot use it. "
             f"Choose free ports: make run PORT=8001 AMI_PORT=5039 ({knob} is this one).")
endef
export PORTS_FREE

run: $(STAMP)
	@$(PY) -c "$$PORTS_FREE" $(AMI_PORT) $(HOST) $(PORT)
	@case "$(PBX)" in sip|pjsip) ;; *) echo "PBX must be sip or pjsip"; exit 2;; esac
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --history $(if $(filter pjsip,$(PBX)),--pjsip)
	@echo "Starting the simulated PBX ($(if $(filter pjsip,$(PBX)),Asterisk 22 PJSIP,Asterisk 20 chan_sip), demo call-centre day) on 127.0.0.1:$(AMI_PORT) and the dashboard on http://$(HOST):$(PORT)/"
	@$(PY) manage.py fakepbx --host 127.0.0.1 --port $(AMI_PORT) --scenario demo --ring-seconds 6 --pickup-race random $(if $(filter pjsip,$(PBX)),--flavour asterisk22) & pbx=$$!; \
	  trap 'kill $$pbx 2>/dev/null' EXIT INT TERM; \
	  $(VENV)/bin/daphne -b $(HOST) -p $(PORT) --websocket-max-message-size 16777216 supervision.asgi:application

test: test-sqlite test-postgres

test-sqlite: $(STAMP)
	$(PY) -m pytest

# The same suite on PostgreSQL; skipped (with the reason) when no server answers,
# unless REQUIRE_SERVICES=1, where a missing server is a failure.
test-postgres: $(STAMP)
	@if $(PY) -c "import psycopg,sys; psycopg.connect('$(POSTGRES_URL)'.rsplit('/',1)[0]+'/postgres', connect_timeout=3).close()" 2>/dev/null; then \
	  DATABASE_URL=$(POSTGRES_URL) $(PY) -m pytest; \
	elif [ "$(REQUIRE_SERVICES)" = "1" ]; then \
	  echo "REQUIRE_SERVICES=1 but PostgreSQL does not answer at $(POSTGRES_URL)"; exit 1; \
	else \
	  echo "SKIPPED: the PostgreSQL pass (no server at $(POSTGRES_URL)); set POSTGRES_URL or start PostgreSQL"; \
	fi

bench: $(STAMP)
	$(PY) bench/ami_ingest.py
	$(PY) bench/fanout.py
	$(PY) bench/action_latency.py
	$(PY) bench/snapshot.py

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
