# Candour: `make demo` shows it working, `make test` runs every check. Debian, as root.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

PREFIX ?= /opt/candour
BINDIR ?= /usr/local/bin

.PHONY: deps venv test lint typecheck unit demo bench faults fuzz install clean

# System packages: Dovecot for the private IMAP server used by tests, demo and benchmarks;
# Chromium and poppler-utils to look at the board report as a reader would (tests).
deps:
	@missing=""; \
	{ command -v dovecot >/dev/null 2>&1 || test -x /usr/sbin/dovecot; } || missing="$$missing dovecot-imapd"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v pdftoppm >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip "setuptools>=77" wheel
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

test: deps venv lint typecheck
	$(BIN)/pytest

demo: deps venv
	$(BIN)/python -m demo.run

bench: deps venv
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Fault injection, long form: 500 messages and 50 kill -9 per run, SQLite and PostgreSQL,
# with a misbehaving SMTP peer and Dovecot restarts; prints the figures table, exit 1 if an
# invariant broke. `make faults FAULTS_ARGS="--runs 3 --seed 5"`; the short form is in
# tests/test_faults.py. libfaketime (apt: faketime) makes the clock jumps; the full disk is a
# tmpfs, so it needs root.
faults: deps venv
	@command -v faketime >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime; }
	$(BIN)/python -m faults.runner $(FAULTS_ARGS)

# The long fuzz run (tests/test_fuzz.py is the short one): mutated corpus mail through the
# daemon's stages; prints figures, saves reproducers. E.g. FUZZ_ARGS="--examples 20000".
fuzz: venv
	$(BIN)/python -m fuzz.run $(FUZZ_ARGS)

# Production install: a virtualenv in $(PREFIX)/venv with PostgreSQL support, `candour` on
# PATH ($(BINDIR)/candour), the README where the systemd unit's Documentation= points.
install:
	$(PYTHON) -m venv $(PREFIX)/venv
	$(PREFIX)/venv/bin/pip install -q --upgrade pip
	$(PREFIX)/venv/bin/pip install -q '.[postgresql]'
	install -d $(BINDIR)
	ln -sf $(PREFIX)/venv/bin/candour $(BINDIR)/candour
	install -m 0644 README.md $(PREFIX)/README.md
	@echo "installed: $(BINDIR)/candour -> $(PREFIX)/venv/bin/candour"

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
