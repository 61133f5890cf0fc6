# `make test` and `make demo` install what they need: apt packages (when run as
# root), a .venv with hafm in editable mode and its test extras.
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := iproute2 nftables keepalived tcpdump tshark procps etcd-server
PYTEST_ARGS ?=

.PHONY: test demo lint typecheck unit sysdeps venv clean

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

# Debian packages the daemon and its tests use; only installed when missing.
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
	else \
		echo "not root: skipping apt packages ($(APT_PACKAGES)); netns tests will be skipped"; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
