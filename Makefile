# Two set-up commands for a fresh machine: `make demo` and `make test`.
# Both create .venv and install what they need (Python packages, Debian packages).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench-campaign system-packages clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Debian packages the tests drive for real: Chromium for browser tests, Postfix (its smtp-sink for
# benchmarks, a Postfix instance of the inbound tests' own) and Dovecot's IMAP server.
system-packages:
	@if ! command -v chromium >/dev/null || ! command -v smtp-sink >/dev/null || ! command -v swaks >/dev/null || ! command -v dovecot >/dev/null; then \
		echo "installing Debian packages: chromium postfix swaks dovecot-imapd"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium postfix swaks dovecot-imapd >/dev/null; \
	fi

# axe-core for the browser tests' accessibility checks (npm registry, pinned by package-lock.json).
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	npm ci --silent --no-audit --no-fund
	touch $(NODE_STAMP)

demo: $(STAMP)
	$(BIN)/prefsvc demo

test: $(STAMP) $(NODE_STAMP) system-packages lint
	$(BIN)/python -m pytest -n 2 -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check prefsvc tests bench wsgi.py gunicorn.conf.py
	$(BIN)/ruff format --check prefsvc tests bench wsgi.py gunicorn.conf.py

clean:
	rm -rf $(VENV) node_modules instance .pytest_cache
