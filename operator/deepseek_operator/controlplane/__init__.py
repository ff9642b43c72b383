"""A real local Kubernetes control plane built from Go modules: etcd, kube-apiserver,
controller-manager, scheduler and kwok, run as child processes on 127.0.0.1."""
