"""Replaying a load trace: trace readers, the step engine (start-up delays, capacity, cost and
unmet demand, nothing else), the policies a user would otherwise run, the hindsight oracle, and
the comparison `deepseek-operator simulate` prints. `ours` is `planning.reconcile.decide()`."""
