# rcwebhook: `make run` runs the daemon, `make test` runs the tests.
PYTHON ?= python3
PYTEST_ARGS ?= -q -rs
DEPS := $(CURDIR)/.deps
export PYTHONPATH := $(DEPS)$(if $(PYTHONPATH),:$(PYTHONPATH))
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test check-config pytest clean

## run: the daemon in the foreground; in dry-run when no configuration exists yet
run:
	@if [ -z "$$RCWEBHOOK_CONFIG" ] && [ ! -f /etc/rcwebhook/rcwebhook.env ] && [ ! -f .env ] \
	   && [ -z "$$ROCKETCHAT_WEBHOOK_CRITICAL$$ROCKETCHAT_WEBHOOK_WARNING$$ROCKETCHAT_WEBHOOK_INFO" ]; then \
	  dry=--dry-run; \
	  echo "No configuration found (see examples/rcwebhook.env): running in dry-run; messages are logged, not posted."; \
	fi; \
	echo "Send the sample alert from another terminal:"; \
	echo "  curl -H 'Content-Type: application/json' --data @examples/test-alert.json http://127.0.0.1:$${PORT:-8093}/webhook"; \
	echo "Stop with Ctrl-C."; \
	exec $(PYTHON) rcwebhook.py $$dry $(ARGS)

## test: the whole test suite; installs pytest first when it is missing
test: pytest
	$(PYTHON) -m pytest $(PYTEST_ARGS) tests

## check-config: validate the configuration rcwebhook would use
check-config:
	$(PYTHON) rcwebhook.py --check-config $(ARGS)

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

clean:
	rm -rf "$(DEPS)" .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
