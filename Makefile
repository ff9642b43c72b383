# Two entry points a new user needs: `make demo` runs the local cluster with the sample pools,
# `make test` runs every check. Both set up everything they need first (idempotent).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,serving
comma := ,

.PHONY: setup binaries demo demo-down test lint crds

$(VENV)/.installed-$(subst $(comma),-,$(EXTRAS)): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[$(EXTRAS)]'
	touch $@

setup: $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

binaries: setup
	$(BIN)/deepseek-operator cluster build

KUBECTL = $(BIN)/kubectl --kubeconfig "$$($(BIN)/deepseek-operator cluster kubeconfig)"

demo: binaries
	$(BIN)/deepseek-operator cluster status >/dev/null 2>&1 || $(BIN)/deepseek-operator cluster up --config examples/cluster.yaml
	$(KUBECTL) apply -f crds/
	$(KUBECTL) wait --for=condition=Established crd --all --timeout=60s
	$(KUBECTL) apply -f examples/pools.yaml -f examples/r1-7b-gpu-by-day-cpu-at-night.yaml
	$(KUBECTL) get nodes -L deepseek-operator.io/pool,accelerator
	$(KUBECTL) get poolprofiles,deepseekdeployments
	@echo; echo "export KUBECONFIG=$$($(BIN)/deepseek-operator cluster kubeconfig)   # then: kubectl get dsd"
	@echo "make demo-down stops the cluster."

demo-down: setup
	$(BIN)/deepseek-operator cluster down

test: binaries
	PATH="$(abspath $(BIN)):$$PATH" bash hack/check.sh

crds: setup
	$(BIN)/deepseek-operator crds

lint: setup
	PATH="$(abspath $(BIN)):$$PATH" bash hack/check.sh --lint-only
