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
	$(BIN)/qbconsole

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q

# Debian packages the integration tests need (installed only when missing).
system-deps:
	@command -v tmux >/dev/null || { apt-get update -q && apt-get install -y -q tmux; }

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^qbconsole' > requirements.lock

clean:
	rm -rf $(VENV) *.egg-info
