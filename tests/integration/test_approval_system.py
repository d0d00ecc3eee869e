"""The service centre's approval database, read incrementally by the approvals connector."""

from __future__ import annotations

import sqlalchemy as sa
from support import Hub, resident_id, unique, uscc, wait_until

from gridhub.demo import APPROVALS_DDL


def add_rows(hub: Hub, rows: list[dict[str, object]]) -> None:
    engine = sa.create_engine(hub.settings.approvals_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(APPROVALS_DDL)
        table = sa.Table("applications", sa.MetaData(), autoload_with=connection)
        connection.execute(sa.insert(table), rows)
    engine.dispose()


def application(application_id: str, status: str, **applicant: str | None) -> dict[str, object]:
    return {
        "application_id": application_id,
        "item_code": "320411-XK-001",
        "item_name": "个体工商户营业执照",
        "applicant_id_number": applicant.get("person"),
        "applicant_uscc": applicant.get("organisation"),
        "status": status,
        "submitted_at": "2026-11-25T09:00:00+08:00",
        "updated_at": "2026-11-25T10:00:00+08:00",
    }


def test_new_applications_and_status_changes_reach_the_warehouse(hub: Hub) -> None:
    first, second = unique("A"), unique("A")
    person, company = resident_id(), uscc()
    add_rows(
        hub, [application(first, "submitted", person=person), application(second, "submitted", organisation=company)]
    )
    wait_until(
        lambda: hub.scalar(f"SELECT count(*) FROM applications WHERE application_id IN ('{first}', '{second}')") == 2,
        what="both applications",
    )
    add_rows(hub, [application(first, "approved", person=person)])
    wait_until(
        lambda: hub.scalar(f"SELECT status FROM applications WHERE application_id = '{first}'") == "approved",
        what="status change",
    )
    assert hub.sql(
        f"SELECT applicant_id_number, applicant_uscc FROM applications WHERE application_id = '{second}'"
    ) == [[None, company]]
    assert hub.sql(f"SELECT outcome FROM intake WHERE source_record_id = '{first}' ORDER BY received_at") == [
        ["new"],
        ["update"],
    ]


def test_application_with_bad_applicant_id_is_rejected_with_reason(hub: Hub) -> None:
    bad = unique("A")
    person = resident_id()
    broken = person[:17] + ("1" if person[17] != "1" else "2")
    add_rows(hub, [application(bad, "submitted", person=broken)])
    reason = wait_until(
        lambda: hub.sql(f"SELECT reason_code, reason FROM rejects WHERE source_record_id = '{bad}'"),
        what="the reject",
    )
    assert reason[0][0] == "invalid_applicant_id_number"
    assert "check character" in reason[0][1]
    assert hub.scalar(f"SELECT count(*) FROM applications WHERE application_id = '{bad}'") == 0


def test_connector_cursor_is_persisted_with_the_topic_it_was_sent_to(hub: Hub) -> None:
    import json

    app_id = unique("A")
    add_rows(hub, [application(app_id, "submitted", person=resident_id())])
    wait_until(lambda: hub.scalar(f"SELECT count(*) FROM applications WHERE application_id = '{app_id}'"), what="row")
    saved = json.loads((hub.settings.state_dir / "approvals.cursor.json").read_text())
    engine = sa.create_engine(hub.settings.approvals_url)
    with engine.connect() as connection:
        newest = connection.exec_driver_sql("SELECT max(change_seq) FROM applications").scalar()
    engine.dispose()
    assert saved["position"] == newest
    from gridhub.broker import topic_ids

    assert saved["topic_id"] == topic_ids(hub.stack.bootstrap, ["raw.approvals"])["raw.approvals"]
