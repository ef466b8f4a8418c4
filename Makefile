# Quick start: `make run` serves the panel on http://127.0.0.1:8080, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install browser run lint test test-sqlite test-postgresql test-mariadb clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m app.reports.fontbuild
	touch $(STAMP)

run: install
	$(BIN)/crm run --demo

# Debian's Chromium for the browser tests; where it cannot be installed those tests are skipped.
browser:
	@scripts/install-browser.sh

# ruff (pyflakes, pycodestyle errors, isort, bugbear, pyupgrade) and mypy, both set up in pyproject.toml.
lint: install
	$(BIN)/ruff check app tests config.py run.py migrations
	$(BIN)/mypy

# The suite runs once per database, the three runs side by side (each prints when it is done); a
# database server or browser that cannot be reached is reported as skipped (and is a failure when
# CRM_TEST_REQUIRE_ALL=1, as in CI). Each run has its own temporary folder.
test: install browser lint
	$(MAKE) --no-print-directory -j3 --output-sync=target test-sqlite test-postgresql test-mariadb

test-sqlite test-postgresql test-mariadb: install browser
	CRM_TEST_DATABASE=$(subst test-,,$@) $(BIN)/python -m pytest -q -p no:cacheprovider --durations=15 \
		--basetemp=$${TMPDIR:-/tmp}/crm-tests-$(subst test-,,$@)-$$$$

clean:
	rm -rf $(VENV) instance .pytest_cache
