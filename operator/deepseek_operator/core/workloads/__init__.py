"""What runs in the cluster: each inference engine's profile (image, arguments, probes, metric
names) and the pure rendering of a deployment's per-pool Deployments and its Service."""
