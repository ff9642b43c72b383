# Two entry points a new user needs: `make demo` runs the local cluster with the sample pools,
# `make test` runs every check. Both set up everything they need first (idempotent).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,serving

.PHONY: setup binaries demo demo-down test lint unit e2e crds clean

$(VENV)/.installed-$(subst $(comma),-,$(EXTRAS)): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[$(EXTRAS)]'
	touch $@

comma := ,
setup: $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

binaries: setup
	$(BIN)/deepseek-operator cluster build

demo: binaries
	$(BIN)/deepseek-operator cluster up --config examples/cluster.yaml
	$(BIN)/kubectl --kubeconfig "$$($(BIN)/deepseek-operator cluster kubeconfig)" get nodes -L deepseek-operator.io/pool,accelerator

demo-down: setup
	$(BIN)/deepseek-operator cluster down

test: binaries
	PATH="$(abspath $(BIN)):$$PATH" bash hack/check.sh

lint: setup
	PATH="$(abspath $(BIN)):$$PATH" bash hack/check.sh --lint-only
