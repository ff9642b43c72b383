"""`deepseek-operator calibrate`: measure a running model server and record it in a PoolProfile."""
