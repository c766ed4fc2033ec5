# leeward: `make run` shows a sandboxed execution, `make test` runs every test.
PYTHON ?= /usr/bin/python3
VENV   := .venv
VPY    := $(VENV)/bin/python
NODE_DIR := bindings/node
SANDBOX_VENV := build/sandbox-venv
export PATH := $(PATH):/usr/local/go/bin:$(HOME)/.cargo/bin

.PHONY: setup lib cli run test bench fuzz soak clean

setup: $(VENV)/.installed lib cli $(NODE_DIR)/node_modules/.installed $(SANDBOX_VENV)/.installed

# libleeward.so + leeward.pc in build/lib (cffi embedding; see libleeward/build_ffi.py)
lib: $(VENV)/.installed
	$(VPY) libleeward/build_ffi.py --if-stale

# The `leeward` command: cli/leeward.c runs `exec` and `run` itself and hands the rest to
# the Python CLI; installed over pip's console script (again after every pip install).
cli: $(VENV)/.installed
	$(VPY) cli/build.py --if-stale --install $(VENV)/bin

$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund
	touch $@

$(VENV)/.installed: pyproject.toml scripts/install-system-packages.sh
	./scripts/install-system-packages.sh
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]'
	touch $@

# A second environment for the sandbox (config key `python`): its own numpy, no pandas.
# tests/integration/test_sandbox_python.py serves jobs from it.
$(SANDBOX_VENV)/.installed: tests/sandbox-venv-requirements.txt
	$(PYTHON) -m venv --clear $(SANDBOX_VENV)
	$(SANDBOX_VENV)/bin/python -m pip install -q -r tests/sandbox-venv-requirements.txt
	touch $@

run: setup
	$(VPY) scripts/demo.py
	@echo '--- the same through the C ABI: leeward exec (starts a per-user daemon if none answers)'
	$(VENV)/bin/leeward exec "print(sum(range(100)))"

test: setup
	$(VPY) -m pytest
	bindings/go/run-tests.sh -count=1
	bindings/rust/run-tests.sh
	cd tests/deploy && go test -count=1 ./...
	cd $(NODE_DIR) && node --test

# The suite's cgroup v2, systemd and kernel 6.1 part in a Debian 12 guest under QEMU
# (root; the guest image is cached in /var/cache/leeward-vm). See scripts/vm/run.sh.
test-vm: setup
	bash scripts/vm/run.sh

bench: setup
	$(VPY) bench/latency.py

# Longer protocol fuzzing than the test suite's few seconds (LEEWARD_FUZZ_EXAMPLES).
fuzz: setup
	LEEWARD_FUZZ_EXAMPLES=$${LEEWARD_FUZZ_EXAMPLES:-20000} $(VPY) -m pytest -q tests/reliability/test_protocol_fuzz.py

# Not in CI: SOAK_MINUTES of mixed traffic against a fresh daemon, with outcome counts
# and a resource trend line (daemon RSS, fds, sandboxes, cgroup boxes) per interval.
soak: setup
	$(VPY) bench/soak.py --minutes $${SOAK_MINUTES:-10}

clean:
	rm -rf $(VENV) build *.egg-info $(NODE_DIR)/node_modules bindings/rust/target
