"""The metric families every service exports on its ops endpoint (:mod:`foundation.ops_http`).

Each family is defined once, here, so a dashboard reads the same names from every service
and a service's /metrics lists them even before its first record. Labels stay few and
bounded: a stage (intake, integrate, warehouse), a source (a department), a topic, a route:
never a record, a case or a caller, which would grow a time series per value.
"""

from __future__ import annotations

import threading

from prometheus_client import Counter, Gauge, Histogram

STAGES = ("intake", "integrate", "warehouse")
"""Where a record is: taken in by a door, validated by the worker, written by the sink."""
OTHER = "other"
"""The label of every value past :data:`MAX_LABEL_VALUES`, and of values that are no plain name."""
MAX_LABEL_VALUES = 64
"""Distinct values one label takes at most in a process; a town has a few dozen sources."""

RECORDS_IN = Counter("gridhub_records_in", "Records a stage took in.", ["stage", "source"])
RECORDS_OUT = Counter(
    "gridhub_records_out", "Records a stage passed on (accepted, duplicate noted).", ["stage", "source"]
)
RECORDS_REJECTED = Counter("gridhub_records_rejected", "Records a stage turned into rejects.", ["stage", "source"])
RECORDS_SKIPPED = Counter(
    "gridhub_records_skipped",
    "Bulk-lane rows the worker passed on without validating again: it had accepted their content before.",
    ["source"],
)
CONSUMER_LAG = Gauge(
    "gridhub_consumer_lag", "Messages on a topic the consumer has not processed yet.", ["consumer", "topic"]
)
BATCH_SECONDS = Histogram(
    "gridhub_sink_batch_seconds",
    "Time the sink takes to write one batch (one DuckDB transaction).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
BATCH_ROWS = Histogram(
    "gridhub_sink_batch_rows",
    "Rows the sink writes in one batch (records, plus the rows of bulk-lane batches).",
    buckets=(1, 10, 50, 100, 500, 1000, 5000, 10_000, 50_000, 250_000),
)
REQUEST_SECONDS = Histogram(
    "gridhub_http_request_seconds", "Time a door takes to answer a request.", ["route", "method", "status"]
)


class BoundedLabel:
    """Keeps one label's values to at most ``limit`` plain names; later or odd values count as ``other``.

    Sources come from records and file names, which a careless publisher could vary without
    end; a bound keeps a mistake from becoming thousands of time series.
    """

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str | None) -> str:
        """``value`` if it may be a label value, else :data:`OTHER`."""
        if not value or len(value) > 64 or not value.replace("-", "").replace("_", "").replace(".", "").isalnum():
            return OTHER
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(value)
            return value


source_label = BoundedLabel()


def count_records(stage: str, source: str | None, *, taken: int = 0, passed: int = 0, rejected: int = 0) -> None:
    """Count what a stage did with the records of one source."""
    label = source_label(source)
    if taken:
        RECORDS_IN.labels(stage, label).inc(taken)
    if passed:
        RECORDS_OUT.labels(stage, label).inc(passed)
    if rejected:
        RECORDS_REJECTED.labels(stage, label).inc(rejected)


def count_skipped(source: str | None, rows: int) -> None:
    """Count rows the seen-rows memory let through, which the warehouse still counts as duplicates."""
    RECORDS_SKIPPED.labels(source_label(source)).inc(rows)
