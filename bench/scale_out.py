"""Scale-out: the same export through two workers in one consumer group, against one.

Workers are the hub's unit of parallelism (up to the topic partitions); the sink is one
process by design. Both legs load the same file into an empty hub: the one-worker leg is
the bulk scenario's first load, the two-worker leg a fresh hub with a second worker
started exactly as a second container would be (``gridhub service worker``, same
environment), after the group has settled with both.
"""

from __future__ import annotations

from bench.bulk import first_load, measure_first_load
from bench.session import Session

SPEEDUP_GOAL = 1.6


def run(session: Session) -> None:
    """One worker (the bulk first load) against two, on the same export."""
    one = first_load(session)
    export = session.export()
    with session.fresh_hub() as hub:
        with session.console.status("starting a second worker and waiting for the group to settle..."):
            hub.add_worker()
        two = measure_first_load(session, hub, export, "scale-out", "first load, 2 workers")
    speedup = two.rate / one.rate if one.rate else 0.0
    two.goal = f"≥ {SPEEDUP_GOAL}× the bulk load's rate (1 worker)"
    two.met = speedup >= SPEEDUP_GOAL
    two.goal_rate = SPEEDUP_GOAL * one.rate
    two.details["speedup"] = round(speedup, 3)
    two.details["one_worker_records_per_s"] = round(one.rate, 1)
