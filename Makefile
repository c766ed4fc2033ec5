# leeward: `make run` shows a sandboxed execution, `make test` runs every test.
PYTHON ?= /usr/bin/python3
VENV   := .venv
VPY    := $(VENV)/bin/python

.PHONY: setup run test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install-system-packages.sh
	./scripts/install-system-packages.sh
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]'
	touch $@

run: setup
	$(VPY) scripts/demo.py

test: setup
	$(VPY) -m pytest

bench: setup
	$(VPY) bench/latency.py

clean:
	rm -rf $(VENV) build *.egg-info
