# Two commands a newcomer needs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS := $(VENV)/.deps-installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format messages clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(DEPS): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Local server on SQLite with the taxonomy, the iTrus demo register and a local admin account, and a
# background worker beside it for confirmed imports (stopped with the server).
run: $(DEPS)
	DJANGO_DEBUG=1 $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=1 $(PY) manage.py load_demo
	DJANGO_DEBUG=1 $(PY) manage.py create_local_admin --url http://$(HOST):$(PORT)/admin/
	DJANGO_DEBUG=1 $(PY) manage.py db_worker --no-reload & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	DJANGO_DEBUG=1 $(PY) manage.py runserver $(HOST):$(PORT)

# The whole suite; on PostgreSQL when DATABASE_URL=postgres://… is set.
test: $(DEPS)
	$(PY) -m pytest

lint: $(DEPS)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(DEPS)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

messages: $(DEPS)
	DJANGO_DEBUG=1 $(PY) manage.py makemessages -l zh_Hans --ignore=.venv --ignore=bench --ignore=tests
	DJANGO_DEBUG=1 $(PY) manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache
