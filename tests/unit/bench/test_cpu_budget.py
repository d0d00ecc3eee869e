"""A missed goal is explained in cores: the hub's CPU over the time the goal allows, against the machine's."""

from __future__ import annotations

import pytest

from bench.cpu_budget import CpuBudget, cpu_budgets, usable_cores
from bench.probes import ProcessUsage
from bench.report import Result


def usage(**cpu_seconds: float) -> dict[str, ProcessUsage]:
    return {name.replace("_", "-"): ProcessUsage(100.0, seconds) for name, seconds in cpu_seconds.items()}


def first_load(seconds: float, met: bool, **cpu_seconds: float) -> Result:
    return Result(
        "bulk",
        "first load, 1 worker",
        1_000_000,
        seconds,
        goal="≥ 50,000 rec/s",
        met=met,
        goal_rate=50_000,
        processes=usage(**cpu_seconds),
    )


def test_a_load_that_needs_more_cores_than_the_machine_has_is_cpu_bound() -> None:
    (budget,) = cpu_budgets([first_load(48.8, False, sink=43.1, worker=20.7, broker=10.0, ingest=7.2, bench=2.0)], 2)

    assert budget.hub_cpu_seconds == pytest.approx(81.0)  # the benchmark's own client is no part of the hub
    assert budget.goal_seconds == pytest.approx(20.0)
    assert budget.cores_needed == pytest.approx(4.05)
    assert budget.cpu_bound
    assert list(budget.cpu_seconds) == ["sink", "worker", "broker", "ingest"]
    line = budget.line()
    assert "81.0 CPU s (sink 43.1, worker 20.7, broker 10.0, ingest 7.2)" in line
    assert "0.08 ms a record" in line
    assert "allows 20.0 s, which needs 4.0 cores" in line
    assert "CPU-bound" in line
    assert "(missed)" in line


def test_a_load_whose_cpu_fits_the_machine_was_slowed_by_waiting() -> None:
    (budget,) = cpu_budgets([first_load(48.8, False, sink=20.0, worker=10.0, broker=5.0, ingest=3.0)], 2)

    assert budget.cores_needed == pytest.approx(1.9)
    assert not budget.cpu_bound
    assert budget.busiest_cores == pytest.approx(1.0)
    assert "within this machine's 2, sink alone 1.00 of a core: the rest is waiting" in budget.line()


def test_a_latency_load_is_weighed_at_the_rate_it_was_offered() -> None:
    load = Result(
        "incidents",
        "request → dispatch topic",
        12_000,
        60.0,
        goal="p99 ≤ 250 ms",
        met=False,
        goal_rate=200,
        processes=usage(broker=46.9, worker=40.4, sink=40.1, patrol=29.5, screen=3.8, bench=17.0),
    )

    (budget,) = cpu_budgets([load], 2)

    assert budget.goal_seconds == pytest.approx(60.0)
    assert budget.cores_needed == pytest.approx(160.7 / 60)
    assert budget.as_json()["cpu_ms_per_record"] == pytest.approx(13.392)
    assert budget.as_json()["cpu_bound"] is True


def test_only_measurements_with_a_rate_goal_and_samples_are_weighed() -> None:
    no_goal = Result("incidents", "curve 100/s", 1_500, 15.0, processes=usage(worker=5.0))
    unsampled = Result("bulk", "first load", 1_000, 1.0, met=True, goal_rate=50_000)
    only_the_bench = Result("bulk", "first load", 1_000, 1.0, met=True, goal_rate=50_000, processes=usage(bench=1.0))
    weighed = first_load(10.0, True, worker=1.0)

    assert [budget.measurement for budget in cpu_budgets([no_goal, unsampled, only_the_bench, weighed], 2)] == [
        "bulk: first load, 1 worker"
    ]


def test_json_holds_the_figures_the_line_gives() -> None:
    budget = CpuBudget("bulk: first load", True, 1_000_000, 50_000, {"sink": 30.0, "worker": 6.0}, 2)

    assert budget.as_json() == {
        "measurement": "bulk: first load",
        "met": True,
        "records": 1_000_000,
        "goal_records_per_s": 50_000,
        "goal_seconds": 20.0,
        "hub_cpu_seconds": 36.0,
        "cpu_ms_per_record": 0.036,
        "cpu_seconds": {"sink": 30.0, "worker": 6.0},
        "cores": 2,
        "cores_needed": 1.8,
        "busiest_process": "sink",
        "busiest_process_cores": 1.5,
        "cpu_bound": False,
    }


def test_the_machine_has_at_least_one_usable_core() -> None:
    assert usable_cores() >= 1
