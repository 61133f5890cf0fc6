# `make test` and `make demo` install what they need: apt packages (when run as
# root), a .venv with hafm in editable mode and its test extras.
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := iproute2 nftables keepalived tcpdump tshark procps curl tomcat10 etcd-server
PYTEST_ARGS ?=

.PHONY: test demo lint typecheck unit sysdeps venv clean bench

test: sysdeps venv lint typecheck
	$(VENV)/bin/pytest $(PYTEST_ARGS)

unit: venv
	$(VENV)/bin/pytest -m "not netns" $(PYTEST_ARGS)

demo: sysdeps venv
	$(VENV)/bin/hafm demo

lint: venv
	$(VENV)/bin/ruff check hafm plugins tests bench
	$(VENV)/bin/ruff format --check hafm plugins tests bench
	$(VENV)/bin/lint-imports

typecheck: venv
	$(VENV)/bin/mypy

# Debian packages the daemon and its tests use; only installed when missing. tomcat10's own
# service would listen on the host's port 8080: it is disabled, the lab runs Tomcat per namespace.
sysdeps:
	@if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
		missing=""; \
		for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
		command -v python3 >/dev/null || missing="$$missing python3"; \
		python3 -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
		if [ -n "$$missing" ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		fi; \
		for service in tomcat10 etcd; do \
			if command -v systemctl >/dev/null && systemctl is-enabled $$service >/dev/null 2>&1; then \
				echo "$$service: disabling the system service (the lab starts it in namespaces only)"; \
				systemctl disable --now $$service >/dev/null 2>&1 || true; \
			fi; \
		done; \
	else \
		echo "not root: skipping apt packages ($(APT_PACKAGES)); netns tests will be skipped"; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# Every table and plot of docs/benchmarks.md (root, ~45 min). BENCH_BEFORE=DIR adds an older hafm tree.
bench: sysdeps venv
	$(PY) -m pip install -q -e '.[test,bench]'
	mkdir -p bench-results
	$(PY) bench/scale.py $(if $(BENCH_BEFORE),--before $(BENCH_BEFORE)) --json bench-results/scale.json
	$(PY) bench/failover.py --rounds 5 --json bench-results/failover.json
	$(PY) bench/appdown.py --rounds 3 --json bench-results/appdown.json
	$(PY) bench/plots.py --scale bench-results/scale.json --failover bench-results/failover.json --out docs

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
