"""Why a goal was missed, in CPU: how many cores the hub would need to reach it at the CPU it spent.

Every goal of the benchmark asks the hub to get some work done in some time: a million rows
at 50,000 a second is 20 s, and 200 reports a second for 60 s means keeping up with them for
those 60 s. The processes of the hub (everything the sampler watched but the benchmark itself)
spent some CPU seconds on the measurement; divided by the time the goal allows, that is the
number of cores the goal needs at today's cost. More cores than the machine has says the miss
is CPU: no wait removed can meet it, only less work per record or more cores. Fewer says the
time went to waiting: on a timer or a round trip, or for one busy process, since most of each
process's work runs on one thread, and a process that needs most of a core by itself keeps what
reaches it queued however idle the other core is. So the busiest process's own share is given too.

For the incident loads the CPU counts the load and its drain (the time the hub took to finish
what it accepted), and the background every idle hub spends, so the cores are an upper bound.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from bench.report import Result

NOT_THE_HUB = frozenset({"bench"})
"""Processes the sampler watches that are no part of the hub: the benchmark's own client."""
CONSUMERS_SHOWN = 4
"""Processes named in a line, the busiest first."""


@dataclass(frozen=True)
class CpuBudget:
    """The CPU a measurement took, against the time its goal allows."""

    measurement: str
    """``scenario: measure``."""
    met: bool
    records: int
    goal_rate: float
    """Records a second the goal asks the hub to sustain."""
    cpu_seconds: dict[str, float]
    """CPU seconds of each process of the hub, busiest first."""
    cores: int

    @property
    def hub_cpu_seconds(self) -> float:
        """CPU seconds of every process of the hub together."""
        return sum(self.cpu_seconds.values())

    @property
    def goal_seconds(self) -> float:
        """The time the goal allows for the measurement's records."""
        return self.records / self.goal_rate

    @property
    def cores_needed(self) -> float:
        """Cores that would do the measurement's CPU work in the time the goal allows."""
        return self.hub_cpu_seconds / self.goal_seconds

    @property
    def cpu_bound(self) -> bool:
        """Whether the goal needs more cores than the machine has, at this CPU cost."""
        return self.cores_needed > self.cores

    @property
    def cpu_ms_per_record(self) -> float:
        """Milliseconds of the hub's CPU a record."""
        return 1000 * self.hub_cpu_seconds / self.records

    @property
    def busiest(self) -> str:
        """The process that spent the most CPU."""
        return max(self.cpu_seconds, key=self.cpu_seconds.__getitem__)

    @property
    def busiest_cores(self) -> float:
        """Cores the busiest process needs by itself in the time the goal allows."""
        return self.cpu_seconds[self.busiest] / self.goal_seconds

    def line(self) -> str:
        """One line for the end of the output."""
        shown = list(self.cpu_seconds.items())[:CONSUMERS_SHOWN]
        busiest = ", ".join(f"{name} {seconds:,.1f}" for name, seconds in shown)
        verdict = (
            f"more than this machine's {self.cores}: CPU-bound"
            if self.cpu_bound
            else f"within this machine's {self.cores}, {self.busiest} alone {self.busiest_cores:,.2f} "
            "of a core: the rest is waiting (for a busy process, a timer, a round trip), not work"
        )
        return (
            f"{self.measurement} ({'met' if self.met else 'missed'}): the hub used {self.hub_cpu_seconds:,.1f} CPU s "
            f"({busiest}), {self.cpu_ms_per_record:,.2f} ms a record; its goal of "
            f"{self.goal_rate:,.0f} records/s allows {self.goal_seconds:,.1f} s, which needs "
            f"{self.cores_needed:,.1f} cores at this cost, {verdict}"
        )

    def as_json(self) -> dict[str, Any]:
        """The budget for results.json."""
        return {
            "measurement": self.measurement,
            "met": self.met,
            "records": self.records,
            "goal_records_per_s": self.goal_rate,
            "goal_seconds": round(self.goal_seconds, 2),
            "hub_cpu_seconds": round(self.hub_cpu_seconds, 2),
            "cpu_ms_per_record": round(self.cpu_ms_per_record, 3),
            "cpu_seconds": self.cpu_seconds,
            "cores": self.cores,
            "cores_needed": round(self.cores_needed, 2),
            "busiest_process": self.busiest,
            "busiest_process_cores": round(self.busiest_cores, 2),
            "cpu_bound": self.cpu_bound,
        }


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity), which the hub it starts shares."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cpu_budgets(results: list[Result], cores: int) -> list[CpuBudget]:
    """The budget of every measurement whose goal names a rate and whose processes were sampled."""
    budgets = []
    for result in results:
        hub = {name: usage.cpu_seconds for name, usage in result.processes.items() if name not in NOT_THE_HUB}
        if result.goal_rate is None or result.met is None or not hub or result.records <= 0:
            continue
        busiest = dict(sorted(hub.items(), key=lambda item: -item[1]))
        measurement = f"{result.scenario}: {result.measure}"
        budgets.append(CpuBudget(measurement, result.met, result.records, result.goal_rate, busiest, cores))
    return budgets
