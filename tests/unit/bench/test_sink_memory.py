"""The sink's memory check reads the DuckDB limit as DuckDB does: KB..TB in thousands, KiB..TiB in 1024s."""

from __future__ import annotations

import pytest

from bench.probes import ProcessUsage
from bench.report import Result
from bench.sink_memory import limit_bytes, sink_memory


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("4GB", 4_000_000_000),
        ("4 GB", 4_000_000_000),
        ("4GiB", 4 * 2**30),
        ("512MiB", 512 * 2**20),
        ("1.5gb", 1_500_000_000),
        ("100KB", 100_000),
        ("2KiB", 2048),
        ("1TB", 10**12),
        ("1TiB", 2**40),
        ("700B", 700),
    ],
)
def test_limits_parse_in_duckdb_units(limit: str, expected: int) -> None:
    assert limit_bytes(limit) == expected


@pytest.mark.parametrize("limit", ["4", "GB", "4 gigs", "-1", "80%", "4GB of RAM"])
def test_what_is_no_duckdb_limit_is_refused(limit: str) -> None:
    with pytest.raises(ValueError, match="no DuckDB memory limit"):
        limit_bytes(limit)


def result(measure: str, sink_mib: float | None) -> Result:
    processes = {"worker": ProcessUsage(900.0, 1.0)}
    if sink_mib is not None:
        processes["sink"] = ProcessUsage(sink_mib, 1.0)
    return Result("bulk", measure, 1000, 1.0, processes=processes)


def test_the_peak_is_the_highest_sample_of_any_measurement_against_the_limit() -> None:
    results = [result("first load", 700.0), result("ceiling", None), result("resync", 1200.0)]
    memory = sink_memory(results, "1GiB")
    assert memory is not None
    assert (memory.peak_rss_mib, memory.peak_in, memory.measurements) == (1200.0, "bulk: resync", 2)
    assert not memory.met
    roomy = sink_memory(results, "4GB")
    assert roomy is not None and roomy.met
    document = memory.as_json()
    assert document["memory_limit_bytes"] == 2**30
    assert document["goal"] == "sink peak ≤ memory_limit"


def test_a_peak_exactly_at_the_limit_meets_it() -> None:
    memory = sink_memory([result("load", 1024.0)], "1GiB")
    assert memory is not None and memory.met


def test_no_sampled_sink_gives_no_check() -> None:
    assert sink_memory([result("ceiling", None)], "4GB") is None
