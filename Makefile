# Two commands do everything on a fresh Debian machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# System packages: the service's (espeak-ng speaks, ffmpeg decodes MP3/OGG, sox plays and converts audio as the
# README shows), and the tests' only (multimon-ng checks our DTMF, chromium runs the browser console test, sipp and baresip call the SIP door,
# redis-server and nginx run several instances behind a balancer).
RUN_PACKAGES := espeak-ng libespeak-ng1 ffmpeg sox
TEST_PACKAGES := multimon-ng chromium sip-tester baresip redis-server nginx
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test bench system system-test clean

run: $(VENV)/.installed
	$(BIN)/kore-voice serve

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed-test
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# System packages are installed only when missing; `make run` needs only the service's.
system: PACKAGES = $(RUN_PACKAGES)
system-test: PACKAGES = $(RUN_PACKAGES) $(TEST_PACKAGES)
system system-test:
	@need=$$(for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	$(PYTHON) -c 'import ensurepip' 2>/dev/null || need="$$need python3-venv"; \
	if [ -n "$$(echo $$need)" ]; then \
		echo "Installing system packages:" $$need; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$need; \
	fi

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | system $(VENV)/bin/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | system-test $(VENV)/bin/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(VENV)/.installed $@

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
