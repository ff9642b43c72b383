"""I/O behind small protocols: Kubernetes reads and writes, Prometheus queries, events."""
