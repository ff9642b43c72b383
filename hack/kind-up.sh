#!/usr/bin/env bash
# For people with Docker: a kind cluster with the same pools and labels as examples/cluster.yaml,
# so the e2e tests run unchanged against it (`KUBECONFIG=... make test`).
#
# kind workers have no GPUs; like the Kubernetes task "Advertise Extended Resources for a Node",
# this script patches fake nvidia.com/gpu capacity into the GPU workers' status (the kubelet keeps
# extended resources it does not manage). Pods requesting GPUs then schedule as on real nodes.
set -euo pipefail
name="${KIND_CLUSTER_NAME:-deepseek}"
command -v kind >/dev/null || { echo "kind is not installed: https://kind.sigs.k8s.io" >&2; exit 1; }

cat <<YAML | kind create cluster --name "$name" --config -
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
  - role: worker
    labels: {deepseek-operator.io/pool: a100, deepseek-operator.io/kind: gpu, accelerator: nvidia-a100}
  - role: worker
    labels: {deepseek-operator.io/pool: a100, deepseek-operator.io/kind: gpu, accelerator: nvidia-a100}
  - role: worker
    labels: {deepseek-operator.io/pool: rtx4090, deepseek-operator.io/kind: gpu, accelerator: nvidia-rtx-4090}
  - role: worker
    labels: {deepseek-operator.io/pool: rtx4090, deepseek-operator.io/kind: gpu, accelerator: nvidia-rtx-4090}
  - role: worker
    labels: {deepseek-operator.io/pool: cpu-xeon, deepseek-operator.io/kind: cpu, accelerator: none}
  - role: worker
    labels: {deepseek-operator.io/pool: cpu-xeon, deepseek-operator.io/kind: cpu, accelerator: none}
  - role: worker
    labels: {deepseek-operator.io/pool: cpu-xeon, deepseek-operator.io/kind: cpu, accelerator: none}
YAML

for pool_gpus in a100:8 rtx4090:2; do
  pool=${pool_gpus%%:*}; gpus=${pool_gpus##*:}
  for node in $(kubectl get nodes -l "deepseek-operator.io/pool=$pool" -o name); do
    kubectl patch "$node" --subresource=status --type=json \
      -p "[{\"op\":\"add\",\"path\":\"/status/capacity/nvidia.com~1gpu\",\"value\":\"$gpus\"}]"
    kubectl taint --overwrite "$node" nvidia.com/gpu=present:NoSchedule
  done
done
kubectl get nodes -L deepseek-operator.io/pool,accelerator
kind get kubeconfig --name "$name" > "kind-$name.kubeconfig"
echo "export KUBECONFIG=$PWD/kind-$name.kubeconfig"
