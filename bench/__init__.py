"""``gridhub bench``: the benchmark harness of issues 5 and 15.

One module per scenario (:mod:`bench.bulk`, :mod:`bench.resync`, :mod:`bench.incidents`,
:mod:`bench.scale_out`) on shared helpers: the generated person export (:mod:`bench.data`),
throwaway hubs (:mod:`bench.hub`), process sampling (:mod:`bench.probes`), the raw aiokafka
ceiling (:mod:`bench.ceiling`), the run's shared state (:mod:`bench.session`) and the result
tables and JSON (:mod:`bench.report`). The incidents scenario adds its open-loop load
(:mod:`bench.open_loop`) on report bodies that never merge (:mod:`bench.patrol_reports`), the
latency curve (:mod:`bench.latency_curve`), the bare Kafka hop (:mod:`bench.hop_floor`) and the
hop-by-hop trace of one report (:mod:`bench.trace`); the sink's memory is held against its
DuckDB limit over the whole run (:mod:`bench.sink_memory`). :mod:`bench.runner` runs them in order.
"""
