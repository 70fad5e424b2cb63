# The two commands of the README's quickstart, plus helpers for contributors.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test faults lint docs release-check tox clean

# Start the example project: web server + a real Celery worker, embedded
# defaults (SQLite, file-system broker), demo data and an API token printed.
demo:
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/demo.sh

# Run the test suite against PostgreSQL, RabbitMQ and Redis on 127.0.0.1.
test:
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/test.sh

# Only the fault suite (part of `make test`): it stops and restarts the services.
faults:
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/test.sh tests/faults

lint:
	$(BIN)/ruff check django_async_reports tests example_project docs_src
	$(BIN)/ruff format --check django_async_reports tests example_project docs_src
	$(BIN)/mypy
	$(BIN)/lint-imports

# The documentation site (mkdocs.yml) into site/; --strict fails on any broken
# link, anchor or page missing from the nav. Builds offline: nothing is fetched.
# NO_MKDOCS_2_WARNING silences Material's banner about its successor (not an error).
docs:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The release as users get it (docs/releasing.md): sdist and wheel, twine check, and
# the whole tutorial run from the wheel installed in a clean virtualenv.
release-check:
	VENV=$(VENV) bash scripts/check_release.sh dist

tox:
	$(BIN)/python -m pip install --quiet "tox>=4.2"
	$(BIN)/tox

clean:
	rm -rf $(VENV) .tox site build dist *.egg-info .pytest-workers example_project/var example_project/db.sqlite3*
