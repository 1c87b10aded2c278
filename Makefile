# Two commands do all the set-up on a fresh machine (Python 3.10+ and the package registries):
#   make demo   install mujun-geo and run the whole pipeline on the bundled sample county
#   make test   install mujun-geo with the test tools (and the Debian packages the tests need) and run the tests
PYTHON ?= python3
PIP = $(PYTHON) -m pip

.PHONY: demo test install install-test system-deps lint sample bench

install:
	$(PIP) install -q -e ".[all]"

demo: install
	mujun-geo demo --out out --overwrite

install-test:
	$(PIP) install -q -e ".[all,test]"

# Debian packages for the browser, LibreOffice and PostGIS tests (root or sudo needed; skipped elsewhere)
system-deps:
	@bash scripts/install_system_deps.sh

test: install-test system-deps
	$(PYTHON) -m ruff check mujun_geo tests scripts
	$(PYTHON) -m mypy
	$(PYTHON) -m pytest -q

lint:
	$(PYTHON) -m ruff check mujun_geo tests scripts
	$(PYTHON) -m mypy
	$(PYTHON) -m ruff format --check mujun_geo tests scripts

sample:
	$(PYTHON) scripts/make_sample.py

bench:
	$(PIP) install -q -e ".[all,bench]"
	$(PYTHON) scripts/bench.py --parcels 100000
