"""What a replica costs and how fast it is: the catalog, memory fit, throughput, the cost model
(per device-hour, per replica-hour, per million tokens, TCO, break-even), exchange rates and
money formatting, `cost` scenarios and the source article's worked example."""
