# rcwebhook: `make run` runs the daemon, `make test` runs the tests.
PYTHON ?= python3
PYTEST_ARGS ?= -q -rs
DEPS := $(CURDIR)/.deps
export PYTHONPATH := $(DEPS)$(if $(PYTHONPATH),:$(PYTHONPATH))
export PYTHONDONTWRITEBYTECODE := 1

VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' rcwebhook/__init__.py)
# Another package version (for upgrade tests): make deb DEB_VERSION=2.0.0+1
DEB_VERSION ?= $(VERSION)
BUILD := $(CURDIR)/build
DEB := $(BUILD)/rcwebhook_$(DEB_VERSION)_all.deb

.PHONY: run test check-config pytest clean deb check-package bench bench-hostile

# The configuration every target that reads one uses, by one rule: $$RCWEBHOOK_CONFIG, else the
# checkout's ./.env, never the installed package's /etc/rcwebhook/rcwebhook.env (which an ordinary
# user may not even read, and which is not what a checkout runs). Without either, no file
# (/dev/null) and dry-run, unless the environment sets a hook URL. Sets $$config and $$dry.
define CHOOSE_CONFIG
config=; dry=; \
if [ -n "$$RCWEBHOOK_CONFIG" ]; then config="$$RCWEBHOOK_CONFIG"; \
elif [ -f .env ]; then config=.env; \
else config=/dev/null; \
  if [ -z "$$ROCKETCHAT_WEBHOOK_CRITICAL$$ROCKETCHAT_WEBHOOK_WARNING$$ROCKETCHAT_WEBHOOK_INFO" ]; then \
    dry=--dry-run; \
    echo "No configuration found (see examples/rcwebhook.env): running in dry-run; messages are logged, not posted."; \
  fi; \
fi
endef

## run: the daemon in the foreground on the checkout's ./.env (or $$RCWEBHOOK_CONFIG), its state in
## ./.state; in dry-run when there is no configuration
# The curl hint names the PORT that configuration sets.
run:
	@$(CHOOSE_CONFIG); \
	port=$$($(PYTHON) -c 'import os, sys; from pathlib import Path; from rcwebhook.config.loading import load; print(load(Path(sys.argv[1]), os.environ, {"DRY_RUN": "true"})[0].port)' "$$config" 2>/dev/null) \
	  || port=$${PORT:-8093}; \
	echo "Send the sample alert from another terminal:"; \
	echo "  curl -H 'Content-Type: application/json' --data @examples/test-alert.json http://127.0.0.1:$$port/webhook"; \
	echo "Stop with Ctrl-C."; \
	STATE_DIR="$${STATE_DIR:-$(CURDIR)/.state}" exec $(PYTHON) rcwebhook.py --config "$$config" $$dry $(ARGS)

## test: the whole test suite; installs pytest first when it is missing
test: pytest
	$(PYTHON) -m pytest $(PYTEST_ARGS) tests

## check-config: validate the configuration `make run` runs, chosen by the same rule
check-config:
	@$(CHOOSE_CONFIG); \
	exec $(PYTHON) rcwebhook.py --check-config --config "$$config" $$dry $(ARGS)

# pytest from, in order: the system, pip into ./.deps, or Debian's python3-pytest.
pytest:
	@if $(PYTHON) -c 'import pytest' 2>/dev/null; then exit 0; fi; \
	echo "pytest is missing: installing it"; \
	if $(PYTHON) -m pip --version >/dev/null 2>&1; then \
	  $(PYTHON) -m pip install --quiet --disable-pip-version-check --target "$(DEPS)" pytest && exit 0; \
	fi; \
	sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	if command -v apt-get >/dev/null 2>&1; then \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq python3-pytest \
	  && $(PYTHON) -c 'import pytest' && exit 0; \
	fi; \
	echo "Could not install pytest: install python3-pytest (apt) or pytest (pip) and run make test again." >&2; \
	exit 1

## deb: build/rcwebhook_<version>_all.deb with debhelper, in build/, leaving the tree clean
deb:
	@command -v dpkg-buildpackage >/dev/null && command -v dh_python3 >/dev/null || \
	  { echo "make deb needs: apt-get install debhelper dh-python" >&2; exit 1; }
	rm -rf "$(BUILD)/deb" && mkdir -p "$(BUILD)/deb/rcwebhook-$(DEB_VERSION)"
	cp -r rcwebhook rcwebhook.py examples docs README.md "$(BUILD)/deb/rcwebhook-$(DEB_VERSION)/"
	cp -r packaging/debian "$(BUILD)/deb/rcwebhook-$(DEB_VERSION)/debian"
	cp packaging/systemd/rcwebhook.service "$(BUILD)/deb/rcwebhook-$(DEB_VERSION)/debian/"
	find "$(BUILD)/deb" -name __pycache__ -prune -exec rm -rf {} +
	cd "$(BUILD)/deb/rcwebhook-$(DEB_VERSION)" && \
	  if [ "$(DEB_VERSION)" != "$(VERSION)" ]; then \
	    { printf 'rcwebhook (%s) unstable; urgency=medium\n\n  * Rebuild as %s.\n\n' "$(DEB_VERSION)" "$(DEB_VERSION)"; \
	      printf ' -- rcwebhook developers <rcwebhook@example.org>  %s\n\n' "$$(sed -n 's/^ -- .*>  //p' debian/changelog | head -n 1)"; \
	      cat debian/changelog; } > debian/changelog.new && mv debian/changelog.new debian/changelog; \
	  fi && \
	  dpkg-buildpackage --build=binary --no-sign >/dev/null 2>"$(BUILD)/deb/build.log" \
	  || { cat "$(BUILD)/deb/build.log" >&2; exit 1; }
	cp "$(BUILD)/deb/rcwebhook_$(DEB_VERSION)_all.deb" "$(DEB)"
	@echo "built $(DEB)"

## bench: the benchmark suite (a few minutes; wrk where installed); writes bench/RESULTS.md, and
## bench/FOOTPRINT.md (idle memory, start time; BENCH_AGAINST=<commit or tree> measures that one too)
bench:
	$(PYTHON) bench/run.py $(BENCH_ARGS)
	$(PYTHON) bench/footprint.py $(if $(BENCH_AGAINST),--against $(BENCH_AGAINST))

## bench-hostile: what hostile notifications cost (CPU, memory, /health); figures for bench/RESULTS.md
bench-hostile:
	$(PYTHON) bench/hostile.py
	$(PYTHON) bench/hostile_state.py

## check-package: lintian, the unit's exposure, reproducibility, install, run, upgrade, purge (as root),
## then the boot tests: Debian 11, 12 and 13 booted in systemd-nspawn (RCWEBHOOK_BOOT_SUITES picks)
check-package: pytest
	$(PYTHON) -m pytest $(PYTEST_ARGS) packaging/tests

clean:
	rm -rf "$(DEPS)" "$(BUILD)" .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
