"""The latency curve's steps and its verdicts: when a step counts as saturated, which rate it reports.

The curve stops at the first saturated step and quotes the highest rate that kept dispatch
p99 within 250 ms, so both rules decide what the benchmark claims; they are checked here on
figures made up for the purpose, without a hub.
"""

from __future__ import annotations

import pytest

from bench.latency_curve import (
    CAP_PER_S,
    HEADROOM_P99_MS,
    MIN_REPORTS,
    SATURATED_P99_MS,
    STEP_S,
    Curve,
    plan,
    rates,
    run_curve,
    saturation,
)
from bench.open_loop import Goals, Load, LoadFigures


def figures(
    rate: float = 20,
    dispatch_p99: float | None = 80.0,
    errors: dict[str, int] | None = None,
    lost_dispatch: int = 0,
    lost_warehouse: int = 0,
) -> LoadFigures:
    dispatch = {} if dispatch_p99 is None else {"p50": 10.0, "p95": 40.0, "p99": dispatch_p99, "max": dispatch_p99}
    return LoadFigures(
        rate_per_s=rate,
        sent=300,
        accepted=300 - sum((errors or {}).values()),
        errors=errors or {},
        lost_dispatch=lost_dispatch,
        lost_warehouse=lost_warehouse,
        dispatch_ms=dispatch,
        warehouse_ms={"p50": 100.0, "p95": 200.0, "p99": 300.0, "max": 400.0},
        seconds=15.0,
        worst_send_lag_ms=1.0,
    )


def test_rates_are_the_fixed_steps_then_doubling_up_to_the_cap() -> None:
    assert list(rates()) == [1, 20, 100, 200, 400, 800, 1600]
    assert list(rates(1000)) == [1, 20, 100, 200, 400, 800]
    assert list(rates(150)) == [1, 20, 100]


def test_every_step_has_enough_reports_for_a_p99_and_the_issue_goals_at_20_and_200() -> None:
    steps = plan()
    assert [step.rate_per_s for step in steps] == list(rates(CAP_PER_S))
    assert all(step.reports >= MIN_REPORTS and step.duration_s >= STEP_S for step in steps)
    assert steps[0].duration_s == MIN_REPORTS  # 1/s: 30 reports take 30 s
    goals = {step.rate_per_s: step.goals for step in steps if step.goals}
    assert goals == {20: Goals(100, 500), 200: Goals(250, 2000)}


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (figures(), None),
        (figures(dispatch_p99=SATURATED_P99_MS), None),
        (figures(dispatch_p99=SATURATED_P99_MS + 1), "dispatch p99"),
        (figures(dispatch_p99=None, lost_dispatch=300), "300 reports not seen"),
        (figures(lost_warehouse=1), "1 reports not seen"),
        (figures(errors={"503": 2, "ClientOSError": 1}), "3 answers other than 202"),
    ],
)
def test_a_step_saturates_on_any_error_any_loss_or_dispatch_p99_over_two_seconds(
    step: LoadFigures, reason: str | None
) -> None:
    found = saturation(step)
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found


def test_the_curve_stops_after_the_first_saturated_step() -> None:
    outcomes = {1: figures(1), 20: figures(20), 100: figures(100, dispatch_p99=5000.0), 200: figures(200)}
    measured: list[float] = []

    def measure(load: Load) -> LoadFigures:
        measured.append(load.rate_per_s)
        return outcomes[int(load.rate_per_s)]

    curve = run_curve([Load(rate, 15, 15) for rate in outcomes], measure)
    assert measured == [1, 20, 100]
    assert curve.saturated is not None and curve.saturated[0].rate_per_s == 100
    assert "saturated at 100/s" in curve.summary()
    assert curve.as_json()["saturated_at_per_s"] == 100


def test_the_headline_rate_is_the_highest_step_within_250_ms_without_error_or_loss() -> None:
    steps = [
        (Load(1, 30, 15), figures(1, dispatch_p99=HEADROOM_P99_MS + 50)),
        (Load(20, 15, 15), figures(20, dispatch_p99=60)),
        (Load(100, 15, 15), figures(100, dispatch_p99=HEADROOM_P99_MS)),
        (Load(200, 15, 15), figures(200, dispatch_p99=120, lost_warehouse=1)),
        (Load(400, 15, 15), figures(400, dispatch_p99=900)),
    ]
    curve = Curve(steps)
    assert curve.highest_within_headroom() == 100
    assert curve.as_json()[f"highest_rate_dispatch_p99_within_{HEADROOM_P99_MS}_ms"] == 100
    assert Curve(steps[4:]).highest_within_headroom() is None
    assert "none of the steps" in Curve(steps[4:]).summary()


def test_an_unsaturated_curve_says_how_far_it_went() -> None:
    curve = Curve([(Load(rate, 15, 15), figures(rate)) for rate in (1, 20, 1600)])
    assert curve.saturated is None
    assert curve.summary().endswith("not saturated up to 1,600/s")
    assert curve.as_json()["saturated_at_per_s"] is None
