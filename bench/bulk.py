"""Bulk: a department's export of a million people, from file to deduplicated, queryable golden records.

This is the lane where per-record overhead decides everything. The clock runs from the
start of ``gridhub ingest`` to the moment the intake ledger accounts for every row (what
``--wait`` waits for), and the run counts only if the warehouse then holds exactly one
golden record per valid person, every invalid row as a reject and every copied row as a
duplicate.
"""

from __future__ import annotations

from bench.data import PersonExport
from bench.hub import BenchHub
from bench.report import Result
from bench.session import SOURCE, Session, expect

RATE_GOAL = 50_000
WORKER_MEMORY_GOAL_MIB = 1024


def measure_first_load(session: Session, hub: BenchHub, export: PersonExport, scenario: str, measure: str) -> Result:
    """Load the export into an empty hub, time it, record it, and check every count it must leave behind."""
    run, usage = session.timed_ingest(hub, export.path, f"{scenario}: {measure}")
    counts = export.counts
    result = session.record(
        Result(
            scenario,
            measure,
            counts.records,
            run.seconds,
            goal=f"≥ {RATE_GOAL:,} rec/s, worker ≤ {WORKER_MEMORY_GOAL_MIB} MiB",
            goal_rate=RATE_GOAL,
            processes=usage,
            details={"run_id": run.run_id, "outcomes": run.outcomes, "stage_seconds": run.stages},
        )
    )
    workers = [usage[name].peak_rss_mib for name in usage if name.startswith("worker")]
    result.met = result.rate >= RATE_GOAL and max(workers, default=0) <= WORKER_MEMORY_GOAL_MIB
    expect(
        f"{scenario} intake outcomes",
        run.outcomes,
        {"new": counts.distinct_valid, "duplicate": counts.duplicates, "rejected": counts.invalid},
    )
    expect(f"{scenario} golden people", hub.scalar("SELECT count(*) FROM people"), counts.distinct_valid)
    expect(
        f"{scenario} person copies of {SOURCE}",
        hub.scalar(f"SELECT count(*) FROM person_sources WHERE source = '{SOURCE}'"),
        counts.distinct_valid,
    )
    expect(
        f"{scenario} rejects of the run",
        hub.scalar(f"SELECT count(*) FROM rejects WHERE run_id = '{run.run_id}'"),
        counts.invalid,
    )
    return result


def first_load(session: Session) -> Result:
    """The measured first load on the main hub (done once per run), then the ceiling on its records."""
    if session.first_load is None:
        hub = session.main_hub()
        session.first_load = measure_first_load(session, hub, session.export(), "bulk", "first load, 1 worker")
        session.measure_ceiling(hub)
    return session.first_load


def run(session: Session) -> None:
    """The bulk scenario's measurement (and the ceiling right after it)."""
    first_load(session)
