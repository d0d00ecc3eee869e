"""The command line as a user meets it, while the hub runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kafka.partitioner import murmur2

from foundation import runfiles
from schemas.topics import dispatch_topic
from schemas.versions import CONTRACTS
from tests.support import hub as support
from tests.support.files import picture
from tests.support.hostile_sql import HOSTILE
from tests.support.hub import Hub, unique, wait_until
from warehouse.reader import query
from warehouse.sql_guard import QueryRefused


def test_sql_answers_while_the_sink_holds_the_warehouse(hub: Hub) -> None:
    result = hub.cli("sql", "SELECT 40 + 2 AS answer, count(*) >= 0 AS ok FROM intake", "--output", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"answer": 42, "ok": True}]


def test_sql_takes_values_for_its_placeholders_from_the_live_door(hub: Hub) -> None:
    sql = "SELECT CAST(? AS INTEGER) + 2 AS answer, ? AS word, count(*) >= 0 AS ok FROM intake"
    result = hub.cli("sql", sql, "--param", "40", "-p", "网格", "--output", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"answer": 42, "word": "网格", "ok": True}]
    short = hub.cli("sql", sql, "-p", "40")
    assert short.returncode == 2
    assert "parameters" in short.stderr and "Traceback" not in short.stderr


def test_sql_refuses_writes_and_reports_sql_errors_plainly(hub: Hub) -> None:
    delete = hub.cli("sql", "DELETE FROM people")
    assert delete.returncode == 2
    assert "only SELECT" in delete.stderr
    typo = hub.cli("sql", "SELECT * FROM peeple")
    assert typo.returncode == 2
    assert "peeple" in typo.stderr
    assert "Traceback" not in typo.stderr + delete.stderr


@pytest.mark.parametrize("case", HOSTILE, ids=[case["sql"][:50] for case in HOSTILE])
def test_the_live_sql_endpoint_refuses_every_hostile_query_with_its_code(hub: Hub, case: dict[str, Any]) -> None:
    before = hub.scalar("SELECT count(*) FROM rejects")
    with pytest.raises(QueryRefused) as refused:
        query(hub.as_caller(hub.tokens.analyst), case["sql"])
    assert refused.value.reason_code == case.get("live_code", case["code"]), str(refused.value)
    assert hub.scalar("SELECT count(*) FROM rejects") == before, "nothing was written"


def test_the_live_sql_endpoint_cuts_a_huge_answer_and_says_so(hub: Hub) -> None:
    answer = query(hub.as_caller(hub.tokens.analyst), "SELECT * FROM range(30000000)")
    assert len(answer["rows"]) == hub.settings.sql_max_rows
    assert answer["truncated"] is True


def test_sql_csv_output(hub: Hub) -> None:
    result = hub.cli("sql", "SELECT 1 AS a, 'x' AS b", "--output", "csv")
    assert result.stdout.splitlines() == ["a,b", "1,x"]


def test_schemas_export_writes_json_schema_for_every_contract(hub: Hub, tmp_path: Path) -> None:
    result = hub.cli("schemas", "export", str(tmp_path))
    assert result.returncode == 0, result.stderr
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == sorted(
        f"{kind}.v{CONTRACTS[kind].version}.schema.json"
        for kind in (
            "person",
            "organisation",
            "place",
            "object",
            "event",
            "event_update",
            "application",
            "track_point",
            "case",
            "case_transition",
            "enforcement_case",
            "raw_envelope",
            "reject",
        )
    )
    person_file = f"person.v{CONTRACTS['person'].version}.schema.json"
    person = json.loads((tmp_path / person_file).read_text())
    assert person["$id"].endswith(f"/{person_file}")
    assert set(person["required"]) == {"name"}, "a person without an ID is matched on other fields"
    assert {"id_number", "birth_date", "phone", "address"} <= set(person["properties"])
    assert "match_key" not in person["properties"], "derived fields are not the publisher's to send"


def test_second_up_on_the_same_data_dir_is_refused(hub: Hub) -> None:
    result = hub.cli("up", timeout=60)
    assert result.returncode == 2
    assert "already runs" in result.stderr
    assert runfiles.discover(hub.settings, "broker") is not None, "the refused start must not unannounce the hub"


def test_rows_published_around_the_worker_meet_the_warehouse_contract(hub: Hub) -> None:
    """A producer that bypasses the worker cannot put bad rows in the tables, nor lose them silently."""
    from kafka import KafkaProducer

    rogue, record_uid, junk = unique("rogue"), unique("bypass"), unique("junk")
    producer = KafkaProducer(bootstrap_servers=hub.stack.bootstrap, acks="all")
    meta = {
        "record_uid": record_uid,
        "source": rogue,
        "source_record_id": "r1",
        "entity": "person",
        "run_id": None,
        "received_at": "2026-11-25T09:00:00+08:00",
        "processed_at": "2026-11-25T09:00:01+08:00",
        "outcome": "new",
        "fingerprint": "x",
    }
    bad_row = {"record": {"id_number": "12345", "name": "冒名", "gender": "M"}, "meta": meta}
    producer.send("canonical.person", key=b"12345", value=json.dumps(bad_row, ensure_ascii=False).encode())
    producer.send("canonical.person", key=b"junk", value=f"\xff not json {junk}".encode("latin-1"))
    producer.flush()
    producer.close()

    rows = wait_until(
        lambda: (
            (
                found := hub.sql(
                    "SELECT reason_code, stage, reason FROM rejects "
                    f"WHERE source = '{rogue}' OR (reason_code = 'undecodable_at_sink' AND payload LIKE '%{junk}%') "
                    "ORDER BY 1"
                )
            )
            and len(found) == 2
            and found
        ),
        what="both rogue messages in the rejects",
    )
    assert [row[:2] for row in rows] == [["contract_violation", "warehouse"], ["undecodable_at_sink", "sink"]]
    assert "id_number must match" in rows[0][2]
    assert hub.scalar("SELECT count(*) FROM people WHERE id_number = '12345'") == 0
    assert hub.scalar(f"SELECT outcome FROM intake WHERE record_uid = '{record_uid}'") == "rejected"


def listen(hub: Hub, *options: str) -> str:
    """What ``gridhub dispatch listen --department water --once`` shows a desk."""
    listened = hub.cli(
        "dispatch", "listen", "--department", "water", "--once", *options, token=hub.tokens.desks["water"]
    )
    assert listened.returncode == 0, listened.stderr
    return listened.stdout


def listen_until(hub: Hub, event_id: str, *options: str) -> str:
    """Run the desk's ``listen --once`` until it has shown ``event_id``; return all it showed.

    A run that shows nothing commits nothing, so running it again changes nothing for the desk;
    it is needed because ``--once`` may stop at a quiet poll that went into joining the group.
    """
    shown: list[str] = []

    def show() -> bool:
        shown.append(listen(hub, *options))
        return event_id in shown[-1]

    wait_until(show, what=f"the desk to be shown {event_id}")
    return "".join(shown)


def water_report(report_id: str) -> dict:
    return support.report(
        report_id,
        category="0105",
        description="河面漂浮垃圾",
        reported_at="2026-11-25T11:00:00+08:00",
        reporter_id="GW050",
    )


def order_in_topic(hub: Hub, event_id: str) -> support.Message:
    """Wait for a case's work order on ``dispatch.water``; return the message."""
    return wait_until(
        lambda: [m for m in hub.messages(dispatch_topic("water")) if m.json()["work_order"]["event_id"] == event_id],
        what=f"the work order of {event_id}",
    )[0]


def id_in_partition(partition: int, partitions: int) -> str:
    """A fresh report id that Kafka's default partitioner (murmur2, as every client hashes) puts in ``partition``."""
    while True:
        candidate = unique("R-DESK")
        if (murmur2(candidate.encode()) & 0x7FFFFFFF) % partitions == partition:
            return candidate


def test_a_desk_reads_its_work_orders_and_posts_back_with_a_photo(hub: Hub, tmp_path: Path) -> None:
    event_id = unique("R-DESK")
    assert hub.post("/v1/reports", water_report(event_id))[0] == 202
    # The agent sends the work order after the report's row: wait for the order itself.
    order = order_in_topic(hub, event_id)

    listened = listen_until(hub, event_id, "--from-beginning")
    assert "河面漂浮垃圾" in listened

    # A desk sees each work order once. A later order in the same partition marks the point: a desk
    # shown the later one without the first has read on from where it stopped, not from the latest.
    later = id_in_partition(order.partition, len(hub.end_offsets(dispatch_topic("water"))))
    assert hub.post("/v1/reports", water_report(later))[0] == 202
    assert order_in_topic(hub, later).partition == order.partition, "the partitioner put the later order elsewhere"
    again = listen_until(hub, later)
    assert event_id not in again, "a desk sees each work order once"

    photo = tmp_path / "cleaned.png"
    photo.write_bytes(picture("PNG", (0, 90, 200), (32, 32)))
    desk = hub.tokens.desks["water"]
    started = hub.cli("dispatch", "update", event_id, "--status", "in_handling", "--actor", "desk-water", token=desk)
    assert started.returncode == 0, started.stderr
    posted = hub.cli(
        "dispatch",
        "update",
        event_id,
        "--status",
        "handled",
        "--actor",
        "desk-water",
        "--photo",
        str(photo),
        token=desk,
    )
    assert posted.returncode == 0, posted.stderr
    assert "with photo sha256:" in posted.stdout
    wait_until(
        lambda: hub.scalar(f"SELECT status FROM events WHERE event_id = '{event_id}'") == "handled",
        what="the handled status",
    )


def test_dispatch_commands_explain_bad_input(hub: Hub, tmp_path: Path) -> None:
    unknown = hub.cli("dispatch", "listen", "--department", "weather", "--once")
    assert unknown.returncode == 2
    assert "no department 'weather'" in unknown.stderr
    missing = hub.cli(
        "dispatch", "update", "R-1", "--status", "handled", "--actor", "x", "--photo", str(tmp_path / "no.jpg")
    )
    assert missing.returncode == 2
    assert "no such photo" in missing.stderr
    bogus = tmp_path / "fake.jpg"
    bogus.write_text("not really a picture")
    refused = hub.cli("dispatch", "update", "R-1", "--status", "handled", "--actor", "x", "--photo", str(bogus))
    assert refused.returncode == 2
    assert "not a readable JPEG, PNG or WebP" in refused.stderr
