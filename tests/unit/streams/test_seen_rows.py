"""The worker's seen-rows memory: an unchanged row skips validation, anything doubtful is validated.

A skipped row must reach the sink with what it needs to decide (ids, remembered fingerprint, the
row as sent); a row of a record the batch holds twice, a changed row and a row judged under other
reference tables are validated as if there were no memory.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from foundation.settings import Settings
from schemas.batches import SEEN_DIGEST_HEX, SEEN_PAYLOAD, RecordBatch, decode_batch, encode_batch
from schemas.digests import leading_hex
from schemas.grid import Grid
from streams.bulk import normalise_unseen
from streams.routing import RoutingRules, load_rules
from streams.seen_rows import (
    FORGOTTEN,
    Learned,
    Refusal,
    SeenRows,
    fingerprint_digest,
    record_key,
    record_keys,
    reference_digest,
    triage,
)

WOMAN_ID = "11010519491231002X"
MAN_ID = "320411199007058931"


def raw_batch(rows: list[tuple[str, dict[str, Any]]], uid_prefix: str = "u") -> RecordBatch:
    """A raw batch as the ingest client builds it: each row with its content hash."""
    fields = list(dict.fromkeys(name for _, row in rows for name in row))
    hashes = [hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest() for _, row in rows]
    table = pa.table(
        {
            "record_uid": [f"{uid_prefix}{index}" for index in range(len(rows))],
            "source_record_id": [record_id for record_id, _ in rows],
            **{name: pa.array([row.get(name) for _, row in rows], pa.string()) for name in fields},
            "content_hash": hashes,
        }
    )
    return RecordBatch("person", "civil-affairs", "run-1", datetime(2026, 11, 26, tzinfo=UTC), table)


ZHANG = {"name": "张三", "id_number": WOMAN_ID, "gender": "女"}
WANG = {"name": "王芳", "id_number": MAN_ID}
LI = {"name": "李四", "phone": "13900000001", "birth_date": "1980-05-03"}


@pytest.fixture(scope="module")
def town() -> tuple[RoutingRules, Grid]:
    settings = Settings()
    return load_rules(settings.routing_rules), Grid.load(settings.grid_path)


def judged(memory: SeenRows, batch: RecordBatch, town: tuple[RoutingRules, Grid]) -> tuple[list[str], list[str]]:
    """The uids validated (accepted) and the uids skipped as seen, after the memory learned the batch."""
    outcome = normalise_unseen(batch, memory, *town)
    if outcome.learned is not None:
        memory.learn(outcome.learned)
    accepted = outcome.accepted.rows.column("record_uid").to_pylist() if outcome.accepted else []
    seen = outcome.seen.rows.column("record_uid").to_pylist() if outcome.seen else []
    return accepted, seen


def test_an_unchanged_row_is_skipped_and_a_changed_or_new_one_validated(town: tuple[RoutingRules, Grid]) -> None:
    memory = SeenRows(100, "ref")
    first = raw_batch([("a", ZHANG), ("b", WANG)])
    assert judged(memory, first, town) == (["u0", "u1"], [])
    assert len(memory) == 2

    again = raw_batch([("a", ZHANG), ("b", {**WANG, "phone": "13900000002"}), ("c", LI)], uid_prefix="v")
    outcome = normalise_unseen(again, memory, *town)

    assert outcome.accepted is not None and outcome.seen is not None
    assert outcome.accepted.rows.column("record_uid").to_pylist() == ["v1", "v2"]
    seen = outcome.seen.rows.to_pylist()
    accepted_first = normalise_unseen(first, SeenRows(0, "ref"), *town).accepted
    assert accepted_first is not None
    remembered = accepted_first.rows.column("fingerprint")[0].as_py()
    assert [(row["record_uid"], row["source_record_id"], row["fingerprint"]) for row in seen] == [
        ("v0", "a", remembered[:16])
    ]
    assert {name: value for name, value in seen[0][SEEN_PAYLOAD].items() if value is not None} == ZHANG


def test_the_memory_learns_only_accepted_rows_and_a_rejected_change_keeps_what_it_knew(
    town: tuple[RoutingRules, Grid],
) -> None:
    memory = SeenRows(100, "ref")
    judged(memory, raw_batch([("a", ZHANG)]), town)
    bad = {**ZHANG, "id_number": WOMAN_ID[:-1] + "1"}
    outcome = normalise_unseen(raw_batch([("a", bad), ("b", bad)]), memory, *town)
    assert [reject.record_uid for reject in outcome.rejects] == ["u0", "u1"]
    assert outcome.learned is not None and len(outcome.learned) == 0
    assert judged(memory, raw_batch([("a", ZHANG)]), town) == ([], ["u0"])


BAD_ID = {**ZHANG, "id_number": WOMAN_ID[:-1] + "1"}
"""A row validation refuses: the check digit of the id number is wrong."""


def content_digest(batch: RecordBatch, row: int) -> int:
    return int(leading_hex(batch.rows.column("content_hash"), SEEN_DIGEST_HEX)[row])


def test_a_row_refused_before_is_refused_again_unvalidated_as_validation_would_refuse_it(
    town: tuple[RoutingRules, Grid],
) -> None:
    memory = SeenRows(100, "ref")
    first = normalise_unseen(raw_batch([("a", ZHANG), ("b", BAD_ID)]), memory, *town)
    assert first.learned is not None
    memory.learn(first.learned)
    assert [reject.record_uid for reject in first.rejects] == ["u1"]

    again = raw_batch([("a", ZHANG), ("b", BAD_ID)], uid_prefix="v")
    split = triage(memory, again)
    assert len(split.fresh) == 0
    assert split.refused.column("record_uid").to_pylist() == ["v1"]
    outcome = normalise_unseen(again, memory, *town)
    assert outcome.accepted is None
    assert outcome.seen is not None and outcome.seen.rows.column("record_uid").to_pylist() == ["v0"]
    validated = normalise_unseen(again, SeenRows(0, "ref"), *town).rejects
    assert [reject.model_dump(exclude={"rejected_at"}) for reject in outcome.rejects] == [
        reject.model_dump(exclude={"rejected_at"}) for reject in validated
    ]
    assert [reject.reason_code for reject in outcome.rejects] == ["invalid_id_number"]


def test_a_refusal_holds_for_the_content_refused_on_its_town_day_only(town: tuple[RoutingRules, Grid]) -> None:
    memory = SeenRows(100, "ref")
    refused = raw_batch([("b", BAD_ID)])
    normalise_unseen(refused, memory, *town)
    key = record_key("civil-affairs", "person", "b")
    day = triage(memory, refused).day
    assert memory.refusal(key, content_digest(refused, 0), day) is not None
    assert memory.refusal(key, content_digest(refused, 0), day + timedelta(days=1)) is None

    changed = raw_batch([("b", {**BAD_ID, "name": "张四"})])
    split = triage(memory, changed)
    assert split.fresh.rows.column("record_uid").to_pylist() == ["u0"]
    assert split.refused.num_rows == 0


def test_the_oldest_refusals_go_past_the_limit() -> None:
    memory = SeenRows(20, "ref")
    refusal = Refusal("validate", "invalid_id_number", "the id number's check digit is wrong")
    today = date(2026, 12, 5)
    for key in range(1, 22):
        memory.refuse(key, 7, today, refusal)
    assert memory.refusal(1, 7, today) is None
    assert memory.refusal(21, 7, today) == refusal
    off = SeenRows(0, "ref")
    off.refuse(1, 7, today, refusal)
    assert off.refusal(1, 7, today) is None


def test_rows_of_a_record_the_batch_holds_twice_are_never_skipped_and_forgotten(
    town: tuple[RoutingRules, Grid],
) -> None:
    memory = SeenRows(100, "ref")
    judged(memory, raw_batch([("a", ZHANG), ("b", WANG)]), town)
    twice = raw_batch([("a", ZHANG), ("a", {**ZHANG, "name": "张三丰"}), ("b", WANG)])
    assert judged(memory, twice, town) == (["u0", "u1"], ["u2"])
    assert judged(memory, raw_batch([("a", ZHANG)]), town) == (["u0"], [])


def test_a_row_without_a_content_hash_is_validated_and_its_record_forgotten(town: tuple[RoutingRules, Grid]) -> None:
    memory = SeenRows(100, "ref")
    batch = raw_batch([("a", ZHANG), ("b", WANG)])
    judged(memory, batch, town)
    unhashed = batch.rows.set_column(
        batch.rows.schema.get_field_index("content_hash"), "content_hash", pa.array(["", "x"])
    )
    assert judged(memory, RecordBatch("person", "civil-affairs", "run-2", batch.received_at, unhashed), town) == (
        ["u0", "u1"],
        [],
    )
    assert len(memory) == 0


def test_a_record_the_per_record_lane_changed_is_forgotten_and_validated_again(
    town: tuple[RoutingRules, Grid],
) -> None:
    memory = SeenRows(100, "ref")
    batch = raw_batch([("a", ZHANG), ("b", WANG)])
    judged(memory, batch, town)
    tombstone = memory.forget("civil-affairs", "person", "a")
    assert tombstone is not None and tombstone.contents == [FORGOTTEN]
    assert memory.forget("civil-affairs", "person", "a") is None
    assert judged(memory, batch, town) == (["u0"], ["u1"])

    restored = SeenRows(100, "ref")
    restored.learn(Learned("ref", [*tombstone.keys, *tombstone.keys], [5, FORGOTTEN], [6, 0]))
    assert len(restored) == 0


def test_the_oldest_entries_go_past_the_limit_and_zero_turns_the_memory_off(
    town: tuple[RoutingRules, Grid],
) -> None:
    memory = SeenRows(20, "ref")
    memory.learn(Learned("ref", list(range(1, 21)), [7] * 20, [9] * 20))
    assert len(memory) == 20
    memory.learn(Learned("ref", [21], [7], [9]))
    assert len(memory) <= 20
    assert memory.fingerprint(1, 7) is None
    assert memory.fingerprint(21, 7) == 9
    memory.learn(Learned("ref", [21], [FORGOTTEN], [0]))
    assert memory.fingerprint(21, 7) is None

    off = SeenRows(0, "ref")
    batch = raw_batch([("a", ZHANG)])
    assert judged(off, batch, town) == (["u0"], [])
    assert judged(off, batch, town) == (["u0"], [])
    assert len(off) == 0


def test_entries_learned_under_other_reference_tables_are_ignored(tmp_path: Path) -> None:
    memory = SeenRows(100, "ref")
    memory.learn(Learned("other", [1], [2], [3]))
    assert memory.fingerprint(1, 2) is None

    settings = Settings()
    rules = tmp_path / "categories.yaml"
    rules.write_bytes(settings.routing_rules.read_bytes() + b"\n# a new category would go here\n")
    assert reference_digest(settings) == reference_digest(Settings())
    assert reference_digest(settings.model_copy(update={"routing_rules": rules})) != reference_digest(settings)


def test_what_a_batch_taught_survives_the_wire_in_messages_that_fit() -> None:
    learned = Learned("ref", [1, 2**64 - 1, 5], [2, 3, FORGOTTEN], [2**63, 4, 0])
    assert Learned.decode(learned.encode()) == learned
    parts = learned.encode_within(entries=2)
    assert [len(Learned.decode(part)) for part in parts] == [2, 1]

    restored = SeenRows(10, "ref")
    for part in parts:
        restored.learn(Learned.decode(part))
    assert (restored.fingerprint(1, 2), restored.fingerprint(2**64 - 1, 3), len(restored)) == (2**63, 4, 2)


def test_a_seen_batch_survives_the_wire_with_its_rows_as_sent(town: tuple[RoutingRules, Grid]) -> None:
    memory = SeenRows(100, "ref")
    batch = raw_batch([("a", ZHANG), ("b", LI)])
    judged(memory, batch, town)
    split = triage(memory, batch)
    assert split.seen is not None and len(split.fresh) == 0
    decoded = decode_batch(encode_batch(split.seen))
    assert decoded.rows.column(SEEN_PAYLOAD).to_pylist() == [
        {"name": "张三", "id_number": WOMAN_ID, "gender": "女", "phone": None, "birth_date": None},
        {"name": "李四", "id_number": None, "gender": None, "phone": "13900000001", "birth_date": "1980-05-03"},
    ]
    assert all(len(value) == 16 for value in decoded.rows.column("fingerprint").to_pylist())
    assert fingerprint_digest(decoded.rows.column("fingerprint")[0].as_py()) > 0


def test_a_column_of_record_ids_gets_the_keys_each_id_gets_alone() -> None:
    ids = ["A-1", "张三家", "", None]

    keys = record_keys("civil-affairs", "person", pa.array(ids, pa.string()))

    def spelled_out(record_id: str | None) -> int:
        """The key as bulk.seen has always carried it: the 8-byte blake2b of source, kind and id."""
        text = f"civil-affairs\x1fperson\x1f{record_id}"
        return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")

    assert keys.tolist() == [spelled_out(record_id) for record_id in ids]
    assert [record_key("civil-affairs", "person", record_id) for record_id in ids] == keys.tolist()
