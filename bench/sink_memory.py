"""The sink's peak memory over the whole benchmark run, against the limit DuckDB is given.

``GRIDHUB_DUCKDB_MEMORY_LIMIT`` bounds DuckDB's buffer manager, not the process: the sink's
interpreter, Kafka client and Arrow batches come on top. Its resident memory staying under the
limit therefore shows the limit is the bound that matters (a sink within it cannot be what runs
the machine out of memory first); one above it shows how much the rest of the process adds.
The peak is the highest any measurement's process sampler saw (:mod:`bench.probes`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bench.report import Result

UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
"""DuckDB's memory units: KB, MB, GB and TB count in thousands, KiB, MiB, GiB and TiB in 1024s."""
_LIMIT = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)\s*")


def limit_bytes(limit: str) -> int:
    """Bytes of a DuckDB memory limit such as ``4GB`` (4,000,000,000) or ``512 MiB``."""
    found = _LIMIT.fullmatch(limit)
    unit = found.group(2).lower() if found else ""
    if found is None or unit not in UNITS:
        raise ValueError(f"{limit!r} is no DuckDB memory limit (a number and one of B, KB, MB, GB, TB, KiB, ... TiB)")
    return round(float(found.group(1)) * UNITS[unit])


@dataclass(frozen=True)
class SinkMemory:
    """The sink's highest resident memory in the run, and the limit it is held against."""

    peak_rss_mib: float
    limit: str
    peak_in: str
    """The measurement (scenario: measure) in which the peak was seen."""
    measurements: int
    """How many measurements' samplers watched the sink."""

    @property
    def limit_mib(self) -> float:
        """The limit in MiB, the unit the process table gives memory in."""
        return limit_bytes(self.limit) / 2**20

    @property
    def met(self) -> bool:
        """Goal: sink peak ≤ memory_limit."""
        return self.peak_rss_mib * 2**20 <= limit_bytes(self.limit)

    def line(self) -> str:
        """One line for the end of the output."""
        verdict = "[green]met[/green]" if self.met else "[red]missed[/red]"
        return (
            f"sink peak memory {self.peak_rss_mib:,.0f} MiB against its DuckDB memory_limit {self.limit} "
            f"({self.limit_mib:,.0f} MiB), highest in {self.peak_in}: {verdict} (goal: sink peak ≤ memory_limit)"
        )

    def as_json(self) -> dict[str, Any]:
        """The check for results.json."""
        return {
            "peak_rss_mib": self.peak_rss_mib,
            "memory_limit": self.limit,
            "memory_limit_bytes": limit_bytes(self.limit),
            "memory_limit_mib": round(self.limit_mib, 1),
            "goal": "sink peak ≤ memory_limit",
            "met": self.met,
            "peak_in": self.peak_in,
            "measurements": self.measurements,
        }


def sink_memory(results: list[Result], limit: str) -> SinkMemory | None:
    """The sink's peak over every measurement that sampled it; None if none did."""
    sampled = [(result, result.processes["sink"]) for result in results if "sink" in result.processes]
    if not sampled:
        return None
    result, usage = max(sampled, key=lambda pair: pair[1].peak_rss_mib)
    return SinkMemory(usage.peak_rss_mib, limit, f"{result.scenario}: {result.measure}", len(sampled))
