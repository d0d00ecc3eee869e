"""The Arrow stream an export's rows travel in from the sink: whole, or refused when it was cut short."""

from __future__ import annotations

import io
from datetime import datetime

import pyarrow as pa
import pytest

from foundation.errors import InputRejected
from schemas import TOWN_TIMEZONE
from warehouse.relation_stream import RelationRows, StreamBrokeOff, parse_as_of, read_stream, write_stream

SCHEMA = pa.schema([("n", pa.int64()), ("name", pa.string())])


def sent(batches: int) -> bytes:
    rows = RelationRows(
        "people",
        SCHEMA,
        (pa.record_batch([pa.array([i, i + 1]), pa.array(["a", None])], schema=SCHEMA) for i in range(batches)),
    )
    sink = io.BytesIO()
    write_stream(rows, sink)
    assert rows.rows == 2 * batches
    return sink.getvalue()


def test_a_whole_stream_reads_back_with_every_row_and_its_schema() -> None:
    rows = read_stream("people", io.BytesIO(sent(3)))
    assert rows.schema == SCHEMA
    assert sum(batch.num_rows for batch in rows) == 6 == rows.rows


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_a_stream_cut_short_anywhere_is_refused_not_read_as_a_shorter_relation(keep: float) -> None:
    data = sent(3)
    with pytest.raises(StreamBrokeOff, match="people"):
        rows = read_stream("people", io.BytesIO(data[: int(len(data) * keep)]))
        list(rows)


def test_as_of_takes_iso_moments_and_reads_one_without_an_offset_as_town_time() -> None:
    assert parse_as_of("2026-11-25T08:00") == datetime(2026, 11, 25, 8, tzinfo=TOWN_TIMEZONE)
    assert parse_as_of("2026-11-25") == datetime(2026, 11, 25, tzinfo=TOWN_TIMEZONE)
    assert parse_as_of("2026-11-25T00:00:00+00:00").utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    with pytest.raises(InputRejected, match="--as-of takes a moment"):
        parse_as_of("last tuesday")
