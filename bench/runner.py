"""``gridhub bench``: run the chosen scenarios in their fixed order, show and save the results."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from bench import bulk, incidents, resync, scale_out, screen
from bench.cpu_budget import cpu_budgets, usable_cores
from bench.hub import BenchError
from bench.report import Result, show, write_json
from bench.session import ScenarioRunner, Session
from bench.sink_memory import sink_memory
from foundation.settings import Settings

SCENARIOS: dict[str, ScenarioRunner] = {
    "bulk": bulk.run,
    "resync": resync.run,
    "incidents": incidents.run,
    "scale-out": scale_out.run,
}
"""In running order: resync needs the first load's hub, incidents reuse it, scale-out stops it."""
SEPARATE: dict[str, ScenarioRunner] = {"screen": screen.run}
"""Scenarios run only when named: the screen's year of data is not one of issue 5's goals."""
ALL_WITHIN_S = 600
"""Issue 5: all four scenarios from a clean checkout in under 10 minutes."""

__all__ = ["SCENARIOS", "SEPARATE", "BenchError", "run_bench"]


def run_bench(
    settings: Settings, scenario: str, records: int, output: Path, console: Console, seed: int = 20261125
) -> list[Result]:
    """Run one scenario or all, print the tables, write ``output``; raise :class:`BenchError` on a wrong count.

    The tables and the JSON are written even when a step fails, with what was measured before it.
    """
    chosen = list(SCENARIOS) if scenario == "all" else [scenario]
    session = Session(settings, records, seed, console)
    started = time.perf_counter()
    failure: BaseException | None = None
    try:
        for name in chosen:
            console.print(f"[bold]{name}[/bold]")
            {**SCENARIOS, **SEPARATE}[name](session)
    except BaseException as exc:
        failure = exc
        console.print(f"the failed hub's folder and logs are kept under {session.root / 'runs'}")
        raise
    finally:
        session.close(failure)
        total = time.perf_counter() - started
        ceiling_rate = session.ceiling.rate if session.ceiling else None
        if session.results:
            show(console, session.results, ceiling_rate)
        for note in session.notes:
            console.print(note)
        extra = {
            "scenarios": chosen,
            "records": records,
            "seed": seed,
            "total_seconds": round(total, 1),
            "failure": None if failure is None else str(failure),
            "settings": {
                name: getattr(settings, name)
                for name in (
                    "topic_partitions",
                    "sink_batch_records",
                    "sink_batch_wait_ms",
                    "worker_rebalance_timeout_s",
                    "fetch_wait_ms",
                    "producer_linger_ms",
                    "duckdb_memory_limit",
                )
            },
            **session.extra,
        }
        memory = sink_memory(session.results, settings.duckdb_memory_limit)
        if memory is not None:
            console.print(memory.line())
            extra["sink_memory"] = memory.as_json()
        budgets = cpu_budgets(session.results, usable_cores())
        if budgets:
            console.print("CPU against the goals (cores the goal needs at the CPU the hub spent):")
            for budget in budgets:
                console.print(f"  {budget.line()}")
            extra["cpu_budgets"] = [budget.as_json() for budget in budgets]
        if scenario == "all" and failure is None:
            extra["all_within_10_minutes"] = total < ALL_WITHIN_S
            verdict = "[green]met[/green]" if total < ALL_WITHIN_S else "[red]missed[/red]"
            console.print(f"all scenarios took {total:,.0f} s: {verdict} (goal < {ALL_WITHIN_S} s)")
        write_json(output, session.results, ceiling_rate, extra)
        console.print(f"results written to {output}")
    return session.results
