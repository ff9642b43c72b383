"""Where replicas run: schedule windows, anti-flapping (stability), the placement solver, the
planner, the single mapping from a DeepSeekDeployment and its PoolProfiles to planner inputs, and
`reconcile.decide()`, which turns one observed snapshot into the next safe step, the status and
the events. The operator and the replay's `ours` policy both call `decide()`."""
