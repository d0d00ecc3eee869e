"""Latency against offered load: short open-loop steps at rising rates until the hub saturates.

One rate says whether a goal is met there, not how much room is left or where latency starts to
climb. The steps offer 1, 20, 100, 200 and 400 reports/s, then keep doubling up to ``CAP_PER_S``,
each long enough for a p99 that means something (at least ``STEP_S`` seconds and ``MIN_REPORTS``
reports) while the whole curve stays within a couple of minutes. The curve stops after the first
step that saturates the hub: one more step would only queue behind the backlog it left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bench.open_loop import Goals, Load, LoadFigures

FIXED_RATES = (1, 20, 100, 200, 400)
CAP_PER_S = 1600
"""The highest step: beyond it the benchmark's own sender, on the same 2 cores, is the bottleneck."""
STEP_S = 15.0
MIN_REPORTS = 30
STEP_DRAIN_S = 15
"""How long after a step's last report its stragglers are awaited; one still missing then is lost."""
SATURATED_P99_MS = 2000
"""A step whose dispatch p99 exceeds this is saturated: reports queue faster than the hub serves them."""
HEADROOM_P99_MS = 250
"""The dispatch p99 the curve's headline rate must keep (issue 15's goal at 200/s)."""
GOALS = {20: Goals(100, 500), 200: Goals(250, 2000)}
"""Issue 15's goals by offered rate; the other steps have none."""


def rates(cap: int = CAP_PER_S) -> Iterator[int]:
    """The offered rates of the steps, in running order: the fixed ones, then doubling up to ``cap``."""
    rate = 0
    for rate in FIXED_RATES:
        if rate > cap:
            return
        yield rate
    while rate * 2 <= cap:
        rate *= 2
        yield rate


def plan(cap: int = CAP_PER_S) -> list[Load]:
    """Every step the curve may run (it stops early at saturation)."""
    return [Load(rate, max(STEP_S, MIN_REPORTS / rate), STEP_DRAIN_S, GOALS.get(rate)) for rate in rates(cap)]


def saturation(figures: LoadFigures) -> str | None:
    """Why a step saturated the hub, or None: any answer but 202, any loss, or dispatch p99 over 2 s."""
    reasons = []
    if figures.errors:
        reasons.append(f"{figures.error_count:,} answers other than 202")
    if figures.lost:
        reasons.append(f"{figures.lost:,} reports not seen within {STEP_DRAIN_S} s")
    if figures.dispatch_p99_ms() > SATURATED_P99_MS:
        reasons.append(f"dispatch p99 {figures.dispatch_p99_ms():,.0f} ms > {SATURATED_P99_MS:,} ms")
    return "; ".join(reasons) or None


def within_headroom(figures: LoadFigures) -> bool:
    """No error, no loss, and dispatch p99 within ``HEADROOM_P99_MS``."""
    return not figures.errors and not figures.lost and figures.dispatch_p99_ms() <= HEADROOM_P99_MS


@dataclass(frozen=True)
class Curve:
    """The steps run, in order, and the one that saturated the hub (if any did)."""

    steps: list[tuple[Load, LoadFigures]]

    @property
    def saturated(self) -> tuple[Load, str] | None:
        """The first step that saturated the hub, and why."""
        for load, figures in self.steps:
            reason = saturation(figures)
            if reason:
                return load, reason
        return None

    def highest_within_headroom(self) -> float | None:
        """The highest offered rate whose step kept dispatch p99 ≤ ``HEADROOM_P99_MS`` with no error or loss.

        Each step stands on its own: a lower step that missed (one slow second at 1/s is its p99)
        does not hide a higher one that held, and its own row shows the miss.
        """
        held = [load.rate_per_s for load, figures in self.steps if within_headroom(figures)]
        return max(held) if held else None

    def summary(self) -> str:
        """One line for the end of the output."""
        best = self.highest_within_headroom()
        held = f"{best:,g}/s" if best is not None else "none of the steps"
        line = f"latency curve: highest rate with dispatch p99 ≤ {HEADROOM_P99_MS} ms: {held}"
        stopped = self.saturated
        if stopped is None:
            return f"{line}; not saturated up to {self.steps[-1][0].rate_per_s:,g}/s" if self.steps else line
        load, reason = stopped
        return f"{line}; saturated at {load.rate_per_s:,g}/s ({reason})"

    def as_json(self) -> dict[str, Any]:
        """The curve's verdict for results.json (each step's figures are in its result rows)."""
        stopped = self.saturated
        return {
            "rates_per_s": [load.rate_per_s for load, _ in self.steps],
            "step_durations_s": [load.duration_s for load, _ in self.steps],
            "saturation_rule": f"any answer but 202, any report not seen within {STEP_DRAIN_S} s, "
            f"or dispatch p99 > {SATURATED_P99_MS:,} ms",
            "saturated_at_per_s": stopped[0].rate_per_s if stopped else None,
            "saturated_because": stopped[1] if stopped else None,
            f"highest_rate_dispatch_p99_within_{HEADROOM_P99_MS}_ms": self.highest_within_headroom(),
        }


def run_curve(steps: list[Load], measure: Callable[[Load], LoadFigures]) -> Curve:
    """Measure the steps in order, stopping after the first that saturates the hub."""
    done: list[tuple[Load, LoadFigures]] = []
    for load in steps:
        figures = measure(load)
        done.append((load, figures))
        if saturation(figures):
            break
    return Curve(done)
