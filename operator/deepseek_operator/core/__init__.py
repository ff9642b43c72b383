"""The pure core: schedule windows, catalog, cost model, planner. No I/O, no clock: time is an argument."""
