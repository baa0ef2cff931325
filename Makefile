# FEBLAM — `make demo` runs the job on embedded defaults, `make test` runs the tests.
# Both create (or reuse) .venv and install the project into it.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install browser demo test unit lint format typecheck bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# DEMO_SECONDS=0 runs until Ctrl-C.
DEMO_SECONDS ?= 30
demo: install
	$(VENV)/bin/feblam demo $(if $(filter 0,$(DEMO_SECONDS)),,--seconds $(DEMO_SECONDS))

# The console's browser test drives Debian's Chromium with its driver (never a downloaded browser).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver; }

test: install browser lint typecheck
	$(PY) -m pytest -q

# The unit tests alone (no subprocess, broker or browser): seconds, for the edit-test loop.
unit: install
	$(PY) -m pytest -q -m "not system and not kafka"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Applies the formatter that `make lint` checks.
format: install
	$(VENV)/bin/ruff format .

typecheck: install
	$(VENV)/bin/mypy feblam matchers sources sinks flows gateway bench

bench: install
	$(VENV)/bin/feblam bench

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache

# Leaflet for the console's map, from the npm registry (the files are committed; this refreshes them).
LEAFLET_VERSION = 1.9.4
leaflet:
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack -q leaflet@$(LEAFLET_VERSION) >/dev/null && tar xzf leaflet-$(LEAFLET_VERSION).tgz && \
	  dest=$(CURDIR)/gateway/console/static/vendor/leaflet && mkdir -p $$dest && \
	  cp package/dist/leaflet.js package/dist/leaflet.css package/LICENSE $$dest/ && cp -r package/dist/images $$dest/ && \
	  rm -rf $$tmp && echo "leaflet $(LEAFLET_VERSION) in $$dest"
.PHONY: leaflet
