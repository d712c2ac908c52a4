# Two entry points (see README): `make run` opens the console, `make test` runs every test.
# Both bootstrap a virtual environment in .venv from the pinned requirements.lock.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test bench clean lock system-deps

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/qbconsole demo

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q

# Debian packages the tests need, installed only when missing: promtool (from
# prometheus) checks our rule semantics against Prometheus's; prometheus and
# prometheus-alertmanager run in the integration tests; tmux drives the console.
DEB_PACKAGES = prometheus prometheus-alertmanager tmux
system-deps:
	@missing=""; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v prometheus-alertmanager >/dev/null || missing="$$missing prometheus-alertmanager"; \
	command -v tmux >/dev/null || missing="$$missing tmux"; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

# Every benchmark once (tmux is needed by overhead.py; soak runs 10 minutes here,
# `python bench/soak.py --minutes 60` for the figure that counts).
bench: $(STAMP) system-deps
	for b in store rules report experiments poll overhead; do $(BIN)/python bench/$$b.py || exit 1; done
	$(BIN)/python bench/soak.py --minutes 10

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^qbconsole' > requirements.lock

clean:
	rm -rf $(VENV) *.egg-info
