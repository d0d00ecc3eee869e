"""Incidents: grid workers' reports over HTTP; how long until a desk and an analyst see them, and why.

The urgent lane, measured four ways in one run on the main hub. First, on the idle hub, one
report is followed hop by hop (:mod:`bench.trace`) and a bare Kafka hop is timed
(:mod:`bench.hop_floor`): the floor every figure after it stands on. Then the latency curve
(:mod:`bench.latency_curve`): short steps at rising rates until the hub saturates. Then the
issue's measurement: reports at a steady 200/s for 60 s. Last, the curve's 20/s step once more,
with the thousands of reports of the runs before it behind it.

The order matters on the embedded broker, which keeps every record and lists all the batches a
partition holds on each fetch of a new one: the same 20/s cost it 0.39 of a core on a fresh hub
and 0.61 after 6,000 reports (one session). Each load therefore records how many records
``cases.commands``, the one partition every report crosses, held when it started; the curve
runs first so its steps differ by rate rather than by what came before, and the repeated step
shows what the history alone costs.

Each load is the same open-loop run (:mod:`bench.open_loop`) with its own report-id prefix and
its own slice of report locations (:mod:`bench.patrol_reports`), so no report merges into
another's case: each accepted report must end as one work order and one case, and the warehouse
is checked for that after every load. A load starts only once the hub has finished the loads
before it (or ``SETTLE_S`` has passed), so a saturated load's backlog is not measured again as
the next one's.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, field

from bench.hop_floor import measure_floor
from bench.hub import BenchError, BenchHub, records_held
from bench.latency_curve import plan, run_curve
from bench.open_loop import Clocks, Goals, Load, LoadFigures, run_load
from bench.patrol_reports import ReportLattice
from bench.probes import ProcessUsage
from bench.report import Result
from bench.session import Session, expect
from bench.trace import trace_json, trace_report, trace_table
from schemas.grid import Grid
from schemas.topics import CASE_COMMANDS
from simulation.town import reported_categories
from streams.routing import load_rules

RATE_PER_S = 200
DURATION_S = 60
DRAIN_S = 60
"""How long after the last report the benchmark waits for work orders and cases still missing."""
DISPATCH_P99_GOAL_MS = 250
WAREHOUSE_P99_GOAL_MS = 2000
SETTLE_S = 120
"""How long a load waits, before its first report, for the hub to finish the reports of the loads before it."""
REPEATED_RATE = 20
"""The curve's step measured again after the 60 s run: the rate of issue 15's first goals."""


def run(session: Session) -> None:
    """Trace one report, time the bare hop, run the curve, send 200/s for 60 s, repeat one step; check each."""
    hub = session.main_hub()
    categories = reported_categories(load_rules(hub.settings.routing_rules))
    lattice = ReportLattice.of(Grid.load(hub.settings.grid_path), categories)
    main = Load(RATE_PER_S, DURATION_S, DRAIN_S, Goals(DISPATCH_P99_GOAL_MS, WAREHOUSE_P99_GOAL_MS))
    steps = plan()
    repeated = next(step for step in steps if step.rate_per_s == REPEATED_RATE)
    lattice.require(1 + main.reports + sum(step.reports for step in steps) + repeated.reports)
    loads = _Loads(session, hub, lattice, f"BENCH-{uuid.uuid4().hex[:8]}-")

    with session.console.status("following one report through the idle hub..."):
        rows = trace_report(hub, lattice.take(1, f"{loads.prefix}trace-")[0])
    loads.accepted += 1
    session.notes.append(trace_table(rows))
    session.extra["incidents_trace"] = trace_json(rows)
    measure_floor(session, hub)

    curve = run_curve(steps, lambda load: loads.measure(load, f"curve {load.rate_per_s:,g}/s"))
    session.notes.append(curve.summary())
    session.extra["incidents_curve"] = curve.as_json()
    loads.measure(main, None)
    loads.measure(repeated, f"curve {REPEATED_RATE}/s again, after the 200/s run")
    session.notes.append(loads.history_line())


@dataclass
class _Loads:
    """The loads of one incidents run: their shared report-id prefix and how many reports the hub accepted."""

    session: Session
    hub: BenchHub
    lattice: ReportLattice
    prefix: str
    accepted: int = 0
    """Reports of the run answered 202 so far: the cases the warehouse must hold once the hub has caught up."""
    measured: int = 0
    held_at_start: dict[str, int] = field(default_factory=dict)
    """Records ``cases.commands`` held as each load started, by the load's label."""

    def measure(self, load: Load, name: str | None) -> LoadFigures:
        """Offer one load on a hub that has caught up, record its two latencies, check the warehouse.

        The measures are named ``name: request → ...``; the 60 s run has no name, so its two rows
        keep the names issue 5's table and the scripts reading results.json know them by.
        """
        waited_s, behind = self._settle()
        label = f"incidents {name}" if name else "incidents"
        held = records_held(self.hub, CASE_COMMANDS)
        self.held_at_start[name or f"{load.rate_per_s:g}/s for {load.duration_s:g} s"] = held
        self.measured += 1
        prefix = f"{self.prefix}{self.measured:02d}r{load.rate_per_s:g}-"
        clocks, usage = run_load(self.session, self.hub, self.lattice.take(load.reports, prefix), load, prefix, label)
        self.accepted += len(clocks.accepted())
        figures = clocks.figures(load.rate_per_s)
        backlog = {
            "waited_for_earlier_loads_s": waited_s,
            "earlier_cases_missing_at_start": behind,
            "case_commands_records_held_at_start": held,
        }
        _record(self.session, load, figures, usage, f"{name}: " if name else "", backlog)
        _check_warehouse(self.hub, prefix, clocks)
        return figures

    def history_line(self) -> str:
        """One line for the end of the output: what the broker held before each load."""
        held = "; ".join(f"{label}: {count:,}" for label, count in self.held_at_start.items())
        return f"records held on {CASE_COMMANDS} as each incident load started ({held})"

    def _settle(self) -> tuple[float, int]:
        """Wait (up to ``SETTLE_S``) until every case of the run so far is in the warehouse.

        A load measured on the backlog of a saturated one would measure that backlog. Returns the
        seconds waited and how many cases were still missing when the wait ended.
        """
        started = time.monotonic()
        sql = f"SELECT count(*) FROM cases WHERE case_id LIKE '{self.prefix}%'"
        missing = self.accepted - int(self.hub.scalar(sql) or 0)
        if missing > 0:
            with self.session.console.status(f"waiting for the hub to finish {missing:,} earlier reports..."):
                while missing > 0 and time.monotonic() - started < SETTLE_S:
                    time.sleep(0.5)
                    missing = self.accepted - int(self.hub.scalar(sql) or 0)
        return round(time.monotonic() - started, 1), max(0, missing)


def _record(
    session: Session,
    load: Load,
    figures: LoadFigures,
    usage: dict[str, ProcessUsage],
    title: str,
    backlog: dict[str, float],
) -> None:
    common = {
        "offered_per_s": load.rate_per_s,
        "duration_s": load.duration_s,
        "sent": figures.sent,
        "accepted": figures.accepted,
        "errors": figures.errors,
        "worst_send_lag_ms": figures.worst_send_lag_ms,
        "drain_limit_s": load.drain_s,
        **backlog,
    }
    goals = load.goals
    for measure, latency, lost, goal_ms in (
        ("request → dispatch topic", figures.dispatch_ms, figures.lost_dispatch, goals and goals.dispatch_p99_ms),
        ("request → warehouse case", figures.warehouse_ms, figures.lost_warehouse, goals and goals.warehouse_p99_ms),
    ):
        result = Result(
            "incidents",
            f"{title}{measure}",
            figures.accepted,
            figures.seconds,
            goal=None if goal_ms is None else f"p99 ≤ {goal_ms:,} ms, no error, no loss",
            goal_rate=None if goal_ms is None else load.rate_per_s,
            latency_ms=latency,
            lost=lost,
            processes=usage,
            details=common,
        )
        if goal_ms is not None:
            result.met = not figures.errors and not lost and latency.get("p99", math.inf) <= goal_ms
        session.record(result)


def _check_warehouse(hub: BenchHub, prefix: str, clocks: Clocks) -> None:
    """What the warehouse holds of a load must be right, even where the hub was too slow to finish.

    A report still queued after the drain limit is a missed goal (counted above), not an
    error; an unknown, merged or rejected report of the load, or a case that vanished, is.
    """
    accepted = clocks.accepted()
    cases = int(hub.scalar(f"SELECT count(*) FROM cases WHERE case_id LIKE '{prefix}%'") or 0)
    if accepted <= clocks.visible.keys():
        expect(f"incidents {prefix}: cases of the load", cases, len(accepted))
    elif not len(clocks.visible) <= cases <= len(clocks.answers):
        raise BenchError(f"incidents {prefix}: {cases} cases of the load in the warehouse, {len(clocks.visible)} seen")
    expect(f"incidents {prefix}: cases of no report sent", len(clocks.visible.keys() - clocks.answers.keys()), 0)
    expect(
        f"incidents {prefix}: cases of the load with more than one report",
        hub.scalar(f"SELECT count(*) FROM cases WHERE case_id LIKE '{prefix}%' AND report_count <> 1"),
        0,
    )
    expect(
        f"incidents {prefix}: rejects of the load's reports",
        hub.scalar(f"SELECT count(*) FROM rejects WHERE source_record_id LIKE '{prefix}%'"),
        0,
    )
