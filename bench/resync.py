"""Resync: the same export sent again, unchanged and then with 1% of the people changed.

Departments re-send their whole register on a schedule; the hub must recognise every
unchanged row as a duplicate (and be fast at it, since that is most of the traffic) and
let exactly the changed rows through as updates. Runs on the hub that took the first load,
whose dedup memory knows the export.
"""

from __future__ import annotations

from bench.bulk import first_load
from bench.data import CHANGED_PHONE_PREFIX
from bench.report import Result
from bench.session import Session, expect

UNCHANGED_RATE_GOAL = 100_000


def run(session: Session) -> None:
    """Re-send the unchanged export, then the changed one; check the outcome of every row.

    The hub keeps phones in their normal form (``+86`` and the 11 digits), so a changed phone is
    looked for with its country code.
    """
    first_load(session)
    hub = session.main_hub()
    base, changed = session.export(), session.export(changed=True)
    people = base.counts.distinct_valid
    for export, measure in ((base, "unchanged"), (changed, "1% changed")):
        run, usage = session.timed_ingest(hub, export.path, f"resync: {measure}")
        counts = export.counts
        result = session.record(
            Result(
                "resync",
                measure,
                counts.records,
                run.seconds,
                processes=usage,
                details={
                    "run_id": run.run_id,
                    "outcomes": run.outcomes,
                    "stage_seconds": run.stages,
                    "skipped_validation": hub.scalar(
                        f"SELECT count(*) FROM intake WHERE run_id = '{run.run_id}' AND reason_code = 'seen_before'"
                    ),
                },
            )
        )
        if not counts.changed:
            result.goal, result.met = f"≥ {UNCHANGED_RATE_GOAL:,} rec/s", result.rate >= UNCHANGED_RATE_GOAL
            result.goal_rate = UNCHANGED_RATE_GOAL
        expected = {"duplicate": counts.records - counts.invalid - counts.changed, "rejected": counts.invalid}
        expected |= {"update": counts.changed} if counts.changed else {}
        expect(f"resync {measure} intake outcomes", run.outcomes, expected)
        expect(f"resync {measure} golden people", hub.scalar("SELECT count(*) FROM people"), people)
        expect(
            f"resync {measure} people with a changed phone",
            hub.scalar(f"SELECT count(*) FROM people WHERE phone LIKE '+86{CHANGED_PHONE_PREFIX}%'"),
            counts.changed,
        )
