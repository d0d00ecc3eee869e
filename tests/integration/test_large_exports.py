"""A million-row export streams: reading, mapping and batching take no more memory than for 250,000 rows.

No hub is needed: each measurement runs the connector's whole path (reader, column
map, record ids and hashes, Arrow batches encoded per partition) in a fresh
interpreter and reports that process's peak resident memory, so nothing the test
process itself holds can blur the comparison. The encoded batches are decoded and
counted instead of sent: publishing a million records to Kafka would only measure
the broker. The smaller file has a quarter of a million rows: below that the process is
still warming up (interpreter and allocator pools grow over the first dozen blocks, then
stay put: 271 MiB at one million rows, 272 MiB at three million, measured 2026-11-26).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.files import write_csv
from tests.support.hub import ROOT

LARGE, SMALL = 1_000_000, 250_000
ALLOWED_GROWTH_MIB = 50
HEADERS = ["姓名", "公民身份号码", "出生日期", "联系电话", "住址"]
PROBE = """
import resource, sys
from pathlib import Path
from kafka.future import Future
from connectors.exports import ExportFile, ExportPublisher
from schemas.batches import decode_batch

class CountingPublisher:
    batch_rows = 5000
    rows = 0
    def partitions(self, topic):
        return 4
    def publish_batch(self, topic, partition, value, uids):
        self.rows += len(decode_batch(value))
        return Future().success(None)
    def acknowledged(self, sent, what):
        pass

publisher = CountingPublisher()
ExportPublisher(publisher, "s").publish(ExportFile(Path(sys.argv[1]), "person"), "r")
print(publisher.rows, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def resident(number: int) -> list[object]:
    return [
        f"居民{number}",
        f"32041119900101{number % 10_000:04d}",
        "1990-01-01",
        13_900_000_000 + number,
        f"孟河镇{number}号",
    ]


def write_register_csv(path: Path, rows: int) -> Path:
    return write_csv(path, HEADERS, (resident(number) for number in range(rows)))


def write_parquet(path: Path, rows: int) -> Path:
    """One row group for the whole file: the worst case for a reader that loads row groups whole."""
    columns = list(zip(*(resident(number) for number in range(rows)), strict=True))
    pq.write_table(pa.table(dict(zip(HEADERS, columns, strict=True))), path, row_group_size=rows)
    return path


def peak_mib(path: Path, rows: int) -> int:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, cwd=ROOT, timeout=900, check=False
    )
    assert result.returncode == 0, result.stderr
    published, peak = map(int, result.stdout.split())
    assert published == rows
    return peak


@pytest.mark.parametrize(
    ("write", "suffix"), [(write_register_csv, ".csv"), (write_parquet, ".parquet")], ids=["csv", "parquet"]
)
def test_peak_memory_does_not_grow_with_the_row_count(
    tmp_path: Path, write: Callable[[Path, int], Path], suffix: str
) -> None:
    small, large = write(tmp_path / f"small{suffix}", SMALL), write(tmp_path / f"large{suffix}", LARGE)
    assert large.stat().st_size > 3 * small.stat().st_size

    small_peak, large_peak = peak_mib(small, SMALL), peak_mib(large, LARGE)

    assert large_peak - small_peak < ALLOWED_GROWTH_MIB, (
        f"peak {small_peak} MiB for {SMALL:,} rows but {large_peak} MiB for {LARGE:,}: rows are being held"
    )
