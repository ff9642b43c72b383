"""The pure core: no I/O, no clock, no Kubernetes, HTTP or terminal code. Time is an argument.

Four rooms, each importing only those below it (import-linter holds the direction):

* `replay`: traces, the replay engine (physics only), the policies a user would otherwise run,
  the hindsight oracle and the comparison `simulate` prints;
* `planning`: schedule windows, stability, the solver, the planner, make-before-break steps, the
  CRD → planner mapping and `reconcile.decide()`, the operator's whole decision for one tick;
* `workloads`: engine profiles and the rendering of the Deployments and Service that run a plan;
* `costing`: catalog, fit, throughput, the cost model, currencies, scenarios and the article check.
"""
