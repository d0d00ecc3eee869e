"""``gridhub bench``: the benchmark harness of issue 5.

One module per scenario (:mod:`bench.bulk`, :mod:`bench.resync`, :mod:`bench.incidents`,
:mod:`bench.scale_out`) on shared helpers: the generated person export (:mod:`bench.data`),
throwaway hubs (:mod:`bench.hub`), process sampling (:mod:`bench.probes`), the raw aiokafka
ceiling (:mod:`bench.ceiling`), the run's shared state (:mod:`bench.session`) and the result
tables and JSON (:mod:`bench.report`). :mod:`bench.runner` runs them in order.
"""
