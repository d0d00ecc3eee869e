"""Quality reports: a batch with failing rows leaves a report naming the expectation it broke and its source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kafka import KafkaProducer

from schemas.topics import canonical_topic
from schemas.versions import CONTRACTS
from tests.support.hub import Hub, unique, wait_until

pytestmark = pytest.mark.integration

BAD_ID = "3204111970"
"""Too short for the warehouse contract's ``id_number`` pattern: a value no report may show."""


def test_a_batch_with_failing_rows_leaves_a_report_naming_the_expectation_and_the_source(
    hub: Hub, tmp_path: Path
) -> None:
    # Letters only, so that the analyst's masks (which scrub long digit runs) leave the source's name as it is.
    source = unique("rogue-quality").translate(str.maketrans("0123456789", "ghijklmnop"))
    record_uid = unique("quality")
    meta = {
        "record_uid": record_uid,
        "source": source,
        "source_record_id": "q1",
        "entity": "person",
        "run_id": None,
        "received_at": "2026-11-25T09:00:00+08:00",
        "processed_at": "2026-11-25T09:00:01+08:00",
        "outcome": "new",
        "fingerprint": "x",
        "record_version": CONTRACTS["person"].version,
    }
    message = {"record": {"id_number": BAD_ID, "name": "冒名", "gender": "M"}, "meta": meta}
    producer = KafkaProducer(bootstrap_servers=hub.stack.bootstrap, acks="all")  # around the worker, which refuses it
    try:
        producer.send(canonical_topic("person"), key=b"q1", value=json.dumps(message, ensure_ascii=False).encode())
        producer.flush()
    finally:
        producer.close()
    wait_until(
        lambda: (
            hub.scalar(f"SELECT reason_code FROM rejects WHERE record_uid = '{record_uid}'") == "contract_violation"
        ),
        what="the rogue person in the rejects",
    )

    folder = tmp_path / "quality"
    made = hub.cli("quality", "report", str(folder), "--days", "2", token=hub.tokens.analyst)
    assert made.returncode == 0, made.stderr
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert "expect_column_values_to_match_regex" in page
    assert "<code>id_number</code>" in page
    assert source in page
    data = json.loads((folder / "quality.json").read_text(encoding="utf-8"))
    [worst] = [row for row in data["sources"] if row["source"] == source]
    assert (worst["rows_checked"], worst["rows_failing"]) == (1, 1)
    assert any(
        row["expectation_type"] == "expect_column_values_to_match_regex" and row["failing_sources"] == [source]
        for row in data["failures"]
    )
    assert BAD_ID not in page and BAD_ID not in json.dumps(data), "a failing value never reaches the report"

    refused = hub.cli("quality", "report", str(tmp_path / "desk"), token=hub.tokens.desks["water"])
    assert refused.returncode == 2 and "role" in refused.stderr and "Traceback" not in refused.stderr
