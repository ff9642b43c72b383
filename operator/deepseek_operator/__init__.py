"""deepseek-operator: place DeepSeek-R1 replicas on GPU and CPU node pools at the lowest cost that meets the SLO."""

__version__ = "0.1.0"
