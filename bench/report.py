"""Results of a benchmark run: one row per measurement, shown as tables and written as JSON.

A figure is only useful next to what it is compared with, so every row carries its goal
from issue 5 or 15 (met or missed), its ratio to the raw client ceiling measured in the same
run, and what each process of the hub used while it ran. What is no row (the trace of one
report, the curve's verdict, the sink's memory against its limit) follows the tables as the
session's notes and sits beside the results in the JSON.
"""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.probes import ProcessUsage

PROCESS_ORDER = ("worker", "worker-2", "sink", "broker", "patrol", "ingest", "approvals", "bench")
"""Column order of the process table: the busy ones first."""


@dataclass
class Result:
    """One measurement of one scenario."""

    scenario: str
    measure: str
    records: int
    seconds: float
    goal: str | None = None
    met: bool | None = None
    goal_rate: float | None = None
    """Records a second the goal asks the hub to sustain: a throughput goal's rate, or the rate a latency goal's
    load is offered at (the hub must keep up with it). What :mod:`bench.cpu_budget` weighs the CPU against."""
    latency_ms: dict[str, float] | None = None
    """Percentiles over the records that arrived; ``lost`` says how many did not (in time)."""
    lost: int | None = None
    processes: dict[str, ProcessUsage] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Records per second over the measured time."""
        return self.records / self.seconds if self.seconds > 0 else 0.0


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p95, p99 and max of latencies in seconds, as milliseconds (nearest rank)."""
    if not samples:
        return {}
    ordered = sorted(samples)

    def rank(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))] * 1000, 1)

    return {name: rank(share) for name, share in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))}


def _goal_cell(result: Result) -> str:
    if result.met is None:
        return result.goal or "-"
    verdict = "[green]met[/green]" if result.met else "[red]missed[/red]"
    return f"{verdict} ({result.goal})"


def _latency_cell(result: Result) -> str:
    figures = " / ".join(f"{value:,.0f}" for value in (result.latency_ms or {}).values()) or "-"
    return f"{figures} ({result.lost:,} not seen)" if result.lost else figures


def results_table(results: list[Result], ceiling_rate: float | None) -> Table:
    """Records, time, rate, ratio to the ceiling, latency and goal of every measurement."""
    table = Table(title="gridhub bench", title_justify="left")
    for column in ("scenario", "measure", "records", "seconds", "rec/s", "÷ ceiling"):
        table.add_column(column, justify="right" if column not in ("scenario", "measure") else "left")
    table.add_column("latency ms p50 / p95 / p99 / max", justify="right")
    table.add_column("goal")
    for result in results:
        ratio = f"{result.rate / ceiling_rate:.3f}" if ceiling_rate and result.scenario != "incidents" else "-"
        table.add_row(
            result.scenario,
            result.measure,
            f"{result.records:,}",
            f"{result.seconds:,.1f}",
            f"{result.rate:,.0f}",
            ratio,
            _latency_cell(result),
            _goal_cell(result),
        )
    return table


def processes_table(results: list[Result]) -> Table:
    """Peak resident memory, CPU seconds and seconds queued for a CPU of each process, per measurement."""
    names = [name for name in PROCESS_ORDER if any(name in result.processes for result in results)]
    table = Table(title="per process: peak MiB / CPU s / s queued for a CPU", title_justify="left")
    table.add_column("scenario")
    table.add_column("measure")
    for name in names:
        table.add_column(name, justify="right")
    for result in results:
        cells = []
        for name in names:
            usage = result.processes.get(name)
            if usage is None:
                cells.append("-")
                continue
            queued = "-" if usage.queued_seconds is None else f"{usage.queued_seconds:,.1f}"
            cells.append(f"{usage.peak_rss_mib:,.0f} / {usage.cpu_seconds:,.1f} / {queued}")
        table.add_row(result.scenario, result.measure, *cells)
    return table


def show(console: Console, results: list[Result], ceiling_rate: float | None) -> None:
    """Print both tables."""
    console.print(results_table(results, ceiling_rate))
    console.print(processes_table(results))


def write_json(path: Path, results: list[Result], ceiling_rate: float | None, extra: dict[str, Any]) -> None:
    """Write the run as JSON: machine, settings, ceiling and every result with its processes."""
    document = {
        "written_at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "ceiling_records_per_s": round(ceiling_rate, 1) if ceiling_rate else None,
        **extra,
        "results": [
            {
                **asdict(result),
                "records_per_s": round(result.rate, 1),
                "ratio_to_ceiling": round(result.rate / ceiling_rate, 4)
                if ceiling_rate and result.scenario != "incidents"
                else None,
            }
            for result in results
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
