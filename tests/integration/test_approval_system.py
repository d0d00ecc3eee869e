"""The service centre's approval database, read incrementally by the approvals connector."""

from __future__ import annotations

import json
import signal

import sqlalchemy as sa

from schemas.topics import APPLICATION_ALERTS, APPLICATION_CHANGES
from simulation.demo import APPROVALS_DDL
from tests.support.hub import Hub, unique, wait_until
from tests.support.identities import resident_id, uscc


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
    engine = sa.create_engine(hub.settings.approvals_url)
    with engine.connect() as connection:
        newest = connection.exec_driver_sql("SELECT max(change_seq) FROM applications").scalar()
    engine.dispose()
    cursor_file = hub.settings.state_dir / "approvals.cursor.json"

    def saved_cursor() -> dict | None:
        # Saved only after Kafka acknowledged the rows, which may be after the warehouse shows them.
        cursor = json.loads(cursor_file.read_text()) if cursor_file.exists() else None  # written atomically
        return cursor if cursor and cursor["position"] >= newest else None

    saved = wait_until(saved_cursor, what=f"the saved cursor to reach change {newest}")
    assert saved["position"] == newest
    from gridhub.broker import topic_ids

    assert saved["topic_id"] == topic_ids(hub.stack.bootstrap, ["raw.approvals"])["raw.approvals"]


def test_application_for_an_item_outside_the_catalogue_is_rejected(hub: Hub) -> None:
    stray = unique("A")
    add_rows(hub, [{**application(stray, "submitted", person=resident_id()), "item_code": "320411-ZZ-404"}])
    reason = wait_until(
        lambda: hub.sql(f"SELECT stage, reason_code, reason FROM rejects WHERE source_record_id = '{stray}'"),
        what="the reject",
    )
    assert reason[0][:2] == ["route", "unknown_item"]
    assert "320411-ZZ-404" in reason[0][2]


def test_catalogue_is_in_the_warehouse(hub: Hub) -> None:
    assert hub.sql("SELECT level, count(*) FROM approval_items GROUP BY 1 ORDER BY 1") == [
        ["municipal", 76],
        ["provincial", 58],
    ]
    assert hub.sql("SELECT count(*), min(window_no), max(window_no) FROM service_windows") == [[34, 1, 34]]


def test_window_and_channel_land_with_the_application_and_an_unknown_window_is_rejected(hub: Hub) -> None:
    at_window, online, stray = unique("A"), unique("A"), unique("A")
    person = resident_id()
    add_rows(
        hub,
        [
            {**application(at_window, "submitted", person=person), "window_no": 5, "channel": "window"},
            {**application(online, "submitted", person=person), "window_no": None, "channel": "online"},
            {**application(stray, "submitted", person=person), "window_no": 35, "channel": "window"},
        ],
    )
    both = f"SELECT count(*) FROM application_facts WHERE application_id IN ('{at_window}', '{online}')"
    wait_until(lambda: hub.scalar(both) == 2, what="both applications as facts")
    assert hub.sql(
        "SELECT window_no, channel, window_department FROM application_facts "
        f"WHERE application_id IN ('{at_window}', '{online}') ORDER BY application_id = '{online}'"
    ) == [[5, "window", "tax"], [None, "online", None]]
    reason = wait_until(
        lambda: hub.sql(f"SELECT stage, reason_code, reason FROM rejects WHERE source_record_id = '{stray}'"),
        what="the reject",
    )
    assert reason[0][:2] == ["route", "unknown_window"]
    assert "window 35" in reason[0][2]


def alerts_for(hub: Hub, *application_ids: str) -> list[str]:
    return [
        alert["application"]["application_id"]
        for alert in hub.read_topic(APPLICATION_ALERTS)
        if alert["application"]["application_id"] in application_ids
    ]


DESK_CHANGELOG = "gridhub-streams-applications-changelog"
"""Where Faust keeps the application desk's table: the desk notes an alert there after sending it."""


def desk_noted_alert(hub: Hub, application_id: str) -> bool:
    """Whether the desk's table, as a restarted worker restores it, remembers the alert for the application."""
    noted = [
        json.loads(message.value)["overdue_alerted"]
        for message in hub.messages(DESK_CHANGELOG)
        if message.key is not None and json.loads(message.key) == application_id
    ]
    return bool(noted) and noted[-1]


def long_ago(application_id: str, status: str, updated_at: str, **applicant: str | None) -> dict[str, object]:
    """An application for 320411-XK-001 (a 3-day limit) filed on 1 January 2020."""
    return {
        **application(application_id, status, **applicant),
        "submitted_at": "2020-01-01T09:00:00+08:00",
        "updated_at": updated_at,
    }


def test_overdue_application_raises_one_alert_also_after_a_worker_restart(hub: Hub) -> None:
    late, in_time = unique("A"), unique("A")
    person, company = resident_id(), uscc()
    add_rows(
        hub,
        [
            long_ago(late, "submitted", "2020-01-01T09:00:00+08:00", person=person),
            long_ago(in_time, "submitted", "2020-01-01T09:00:00+08:00", organisation=company),
            long_ago(late, "accepted", "2020-01-01T10:00:00+08:00", person=person),
            long_ago(in_time, "approved", "2020-01-03T09:00:00+08:00", organisation=company),
        ],
    )
    wait_until(lambda: alerts_for(hub, late), what="the overdue alert")

    def facts() -> list[list[object]]:
        return hub.sql(
            "SELECT application_id, status, finished, overdue, applicant_kind, "
            "strftime(timezone('Asia/Shanghai', due_at), '%Y-%m-%d %H:%M') FROM application_facts "
            f"WHERE application_id IN ('{late}', '{in_time}') ORDER BY application_id = '{in_time}'"
        )

    wait_until(lambda: [row[1] for row in facts()] == ["accepted", "approved"], what="both applications as facts")
    assert facts() == [
        [late, "accepted", False, True, "person", "2020-01-04 09:00"],
        [in_time, "approved", True, False, "organisation", "2020-01-04 09:00"],
    ]

    # The alert is sent before the desk notes it, so a kill between the two would repeat it (at least once).
    wait_until(lambda: desk_noted_alert(hub, late), what="the desk to note the alert in its table")
    hub.stack.processes["worker"].send_signal(signal.SIGKILL)
    hub.stack.processes["worker"].wait()
    hub.stack.restart("worker")
    after = unique("A")
    add_rows(hub, [long_ago(after, "in_review", "2020-01-02T09:00:00+08:00", person=resident_id())])
    wait_until(lambda: alerts_for(hub, after), what="the clock to tick again after the restart")
    # An application found overdue at two checks in a row is alerted: once two more checks have run, a
    # repeated alert for the late one, or an alert for the one finished in time, would be on the topic.
    hub.worker_done(APPLICATION_CHANGES, ticks=2)
    assert sorted(alerts_for(hub, late, in_time, after)) == sorted([late, after])
