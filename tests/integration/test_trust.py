"""Every door asks who is calling, each role gets what it may and no more, and personal data is masked by role."""

from __future__ import annotations

import csv
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from foundation import runfiles
from foundation.access import TokenBook
from gridhub.supervisor import Stack
from tests.integration.test_case_lifecycle import known_to_gateway
from tests.support.hub import Hub, hub_settings, post_json, report, spot, unique, wait_until
from tests.support.identities import FULL_ID, FULL_MOBILE, mobile, resident_id
from warehouse.reader import query
from warehouse.sql_guard import QueryRefused

pytestmark = pytest.mark.integration


def call(url: str, token: str | None = None, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    """GET (or POST ``body`` as JSON) with an optional bearer token; the status and the JSON answer."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {**json.loads(exc.read() or b"{}"), "_headers": dict(exc.headers)}


def sink_url(hub: Hub) -> str:
    return str(runfiles.discover(hub.settings, "sink")["url"])


def a_report(
    reporter: str = "GW001", description: str = "河面漂浮垃圾", category: str = "0105", **extra: Any
) -> dict[str, Any]:
    return report(
        unique("R-TRUST"),
        category=category,
        description=description,
        reported_at="2026-11-25T11:00:00+08:00",
        reporter_id=reporter,
        **{**spot(), **extra},
    )


DOORS = [
    ("patrol", "/v1/reports", {}),
    ("patrol", "/v1/updates", {}),
    ("patrol", "/v1/tracks", {}),
    ("patrol", "/v1/photos/sha256:" + "0" * 64, None),
    ("patrol", "/v1/orders?department=water", None),
    ("sink", "/sql", {"sql": "SELECT 1"}),
    ("sink", "/intake", None),
    ("sink", "/audit", None),
    ("sink", "/whoami", None),
]


@pytest.mark.parametrize(("service", "path", "body"), DOORS, ids=[f"{s}{p.split('?')[0]}" for s, p, _ in DOORS])
def test_every_door_refuses_a_caller_without_a_known_token(hub: Hub, service: str, path: str, body: Any) -> None:
    url = f"{runfiles.discover(hub.settings, service)['url']}{path}"
    for token in (None, "ghb_forged"):
        status, answer = call(url, token, body)
        assert status == 401, answer
        assert answer["error"] == "unauthenticated"
        assert answer["_headers"]["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("service", "path", "body", "who"),
    [
        ("patrol", "/v1/reports", {}, "analyst"),
        ("patrol", "/v1/tracks", {}, "desk"),
        ("patrol", "/v1/orders?department=water", None, "phone"),
        ("sink", "/sql", {"sql": "SELECT 1"}, "phone"),
        ("sink", "/sql", {"sql": "SELECT 1"}, "desk"),
        ("sink", "/audit", None, "analyst"),
        ("sink", "/audit", None, "commander"),
    ],
)
def test_a_door_refuses_a_role_it_does_not_serve_and_says_why(
    hub: Hub, service: str, path: str, body: Any, who: str
) -> None:
    token = {
        "analyst": hub.tokens.analyst,
        "desk": hub.tokens.desks["water"],
        "phone": hub.tokens.phones["GW001"],
        "commander": hub.tokens.commander,
    }[who]
    status, answer = call(f"{runfiles.discover(hub.settings, service)['url']}{path}", token, body)
    assert status == 403, answer
    assert "this needs the role" in answer["reason"]


def test_a_phone_reports_only_as_its_own_worker(hub: Hub) -> None:
    status, answer = hub.post("/v1/reports", a_report("GW002"), token=hub.tokens.phones["GW001"])
    assert (status, answer["error"]) == (403, "forbidden")
    assert "phone of GW001" in answer["reason"]
    own = a_report("GW001")
    assert hub.post("/v1/reports", own, token=hub.tokens.phones["GW001"])[0] == 202
    wait_until(lambda: hub.scalar(f"SELECT reporter_id FROM events WHERE event_id = '{own['report_id']}'"), what="row")
    assert hub.scalar(f"SELECT reporter_id FROM events WHERE event_id = '{own['report_id']}'") == "GW001"


def test_no_body_can_claim_a_role_an_unknown_actor_cannot_cancel_and_a_desk_moves_only_its_cases(hub: Hub) -> None:
    water = a_report("GW050")
    assert hub.post("/v1/reports", water)[0] == 202
    known_to_gateway(hub, water["report_id"])  # the gateway checks roles and desks against its own copy of the case

    def update(status: str, token: str, **extra: Any) -> tuple[int, dict[str, Any]]:
        body = {
            "update_id": unique("U"),
            "event_id": water["report_id"],
            "status": status,
            "at": "2026-11-25T11:30:00+08:00",
        }
        return hub.post("/v1/updates", {**body, **extra}, token=token)

    # The exploit: "actor": "anyone" (and a claimed role) got the command centre's rights.
    cancelled = update("cancelled", hub.tokens.phones["GW050"], actor="GW050", actor_role="command_centre")
    assert cancelled[0] == 409 and cancelled[1]["error"] == "role_not_allowed", cancelled
    assert update("cancelled", hub.tokens.phones["GW050"], actor="anyone")[0] == 403
    assert update("in_handling", "ghb_forged", actor="anyone")[0] == 401
    # A desk of another department cannot move a water case, nor the water desk an enforcement case.
    refused = update("in_handling", hub.tokens.desks["enforcement"])
    assert refused[0] == 403 and "dispatched to water, not to enforcement" in refused[1]["reason"], refused
    shed = a_report("GW050", category="0101", description="私搭乱建")
    assert hub.post("/v1/reports", shed)[0] == 202
    known_to_gateway(hub, shed["report_id"])
    body = {
        "update_id": unique("U"),
        "event_id": shed["report_id"],
        "status": "in_handling",
        "at": "2026-11-25T11:30:00+08:00",
    }
    refused = hub.post("/v1/updates", body, token=hub.tokens.desks["water"])
    assert refused[0] == 403 and "dispatched to enforcement, not to water" in refused[1]["reason"], refused
    assert update("in_handling", hub.tokens.desks["water"])[0] == 202
    wait_until(
        lambda: hub.scalar(f"SELECT status FROM cases WHERE case_id = '{water['report_id']}'") == "in_handling",
        what="the water desk's step",
    )
    actor, role = hub.sql(
        f"SELECT actor, actor_role FROM case_transitions WHERE case_id = '{water['report_id']}' ORDER BY seq DESC"
    )[0]
    assert (actor, role) == ("desk-water", "desk")


def test_a_desk_reads_only_its_own_work_orders_which_carry_no_identity_numbers(hub: Hub) -> None:
    subject = resident_id()
    water = a_report("GW050", subject_id_number=subject)
    assert hub.post("/v1/reports", water)[0] == 202
    orders = wait_until(lambda: hub.work_orders("water", water["report_id"]), what="the work order")
    work = orders[0]["work_order"]
    assert "reporter_id" not in work and "subject_id_number" not in work
    assert subject not in json.dumps(orders[0]) and "GW050" not in json.dumps(orders[0])

    mine = hub.cli("dispatch", "listen", "--once", "--from-beginning", token=hub.tokens.desks["water"])
    assert mine.returncode == 0, mine.stderr
    theirs = hub.cli("dispatch", "listen", "--department", "police", "--once", token=hub.tokens.desks["water"])
    assert theirs.returncode == 2
    assert "cannot read the orders of police" in theirs.stderr


def test_a_publisher_publishes_only_as_its_own_source(hub: Hub, tmp_path: Path) -> None:
    book = TokenBook(hub.settings.tokens_file)
    civil = book.add(unique("civil-affairs-system"), "publisher", source="civil-affairs")
    export = tmp_path / "people.csv"
    export.write_text("姓名,公民身份号码\n王五," + resident_id() + "\n", encoding="utf-8")
    as_police = hub.cli("ingest", str(export), "--source", "police", "--entity", "person", token=civil)
    assert as_police.returncode == 2
    assert "cannot publish as police" in as_police.stderr
    as_itself = hub.cli("ingest", str(export), "--source", "civil-affairs", "--entity", "person", "--wait", token=civil)
    assert as_itself.returncode == 0, as_itself.stderr


def test_a_revoked_token_stops_working_at_every_door_without_a_restart(hub: Hub) -> None:
    name = unique("phone-GW003")
    made = hub.cli("tokens", "add", name, "--role", "device", "--worker", "GW003", token=hub.admin)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("ghb_")
    assert hub.post("/v1/reports", a_report("GW003"), token=token)[0] == 202
    listed = hub.cli("tokens", "list", "-o", "json", token=hub.admin)
    [entry] = [entry for entry in json.loads(listed.stdout) if entry["name"] == name]
    assert (entry["role"], entry["bound_to"], entry["revoked_at"]) == ("device", "GW003", None)
    assert token not in listed.stdout

    assert hub.cli("tokens", "revoke", name, token=hub.admin).returncode == 0
    wait_until(
        lambda: hub.post("/v1/reports", a_report("GW003"), token=token)[0] == 401, timeout_s=10, what="the refusal"
    )
    not_admin = hub.cli("tokens", "add", "x", "--role", "admin", token=hub.tokens.commander)
    assert not_admin.returncode == 2 and "needs the role admin" in not_admin.stderr


@pytest.fixture
def limited_gateway(hub: Hub, tmp_path: Path) -> Iterator[str]:
    """A second gateway on the session's broker and token book, allowing 10 calls a minute per token."""
    settings = hub_settings(
        tmp_path, kafka_bootstrap=hub.stack.bootstrap, tokens_path=hub.settings.tokens_file, rate_limit="10/minute"
    )
    with Stack(settings, services=("patrol",)) as stack:
        yield stack.url("patrol")


def test_a_flood_from_one_token_gets_429_while_another_tokens_requests_pass(hub: Hub, limited_gateway: str) -> None:
    flooder, other = hub.tokens.phones["GW010"], hub.tokens.phones["GW011"]
    answers = [post_json(f"{limited_gateway}/v1/reports", a_report("GW010"), token=flooder)[0] for _ in range(12)]
    assert answers[:10] == [202] * 10
    assert answers[10:] == [429, 429]
    status, _ = post_json(f"{limited_gateway}/v1/reports", a_report("GW011"), token=other)
    assert status == 202
    request = urllib.request.Request(
        f"{limited_gateway}/v1/reports",
        data=json.dumps(a_report("GW010")).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {flooder}"},
    )
    with pytest.raises(urllib.error.HTTPError) as limited:
        urllib.request.urlopen(request, timeout=30)
    assert limited.value.code == 429
    assert int(limited.value.headers["Retry-After"]) >= 1


def people_register(path: Path, rows: int) -> list[tuple[str, str]]:
    """A civil-affairs register of ``rows`` people with resident IDs and mobiles; returns (id, phone) pairs."""
    people = [(resident_id(), mobile()) for _ in range(rows)]
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["姓名", "公民身份号码", "联系电话", "住址"])
        for number, (id_number, phone) in enumerate(people):
            writer.writerow([f"王{'小大'[number % 2]}明", id_number, phone, f"孟河镇通江路{number}号"])
    return people


def test_an_analyst_never_sees_a_full_id_or_phone_on_any_path_and_the_commander_sees_them_audited(
    hub: Hub, tmp_path: Path
) -> None:
    people = people_register(tmp_path / "people.csv", 5)
    assert hub.ingest(tmp_path / "people.csv", "civil-affairs", "person", "--wait").returncode == 0
    someone, phone = people[0]
    noisy = a_report("GW020", subject_id_number=someone, description=f"住户{someone}报修，电话{phone}")
    assert hub.post("/v1/reports", noisy)[0] == 202
    wait_until(lambda: hub.scalar(f"SELECT count(*) FROM events WHERE event_id = '{noisy['report_id']}'"), what="row")

    analyst = hub.as_caller(hub.tokens.analyst)
    status, catalogue = call(f"{sink_url(hub)}/relations", hub.tokens.analyst)
    assert status == 200, catalogue
    relations = catalogue["relations"]
    assert {"people", "events", "cases", "person_sources", "rejects", "field_lineage"} <= set(relations)
    seen = 0
    for relation in relations:
        answer = query(analyst, f"SELECT * FROM {relation}")
        text = json.dumps(answer["rows"], ensure_ascii=False, default=str)
        seen += len(answer["rows"])
        assert not FULL_ID.search(text), f"{relation} shows a full resident ID to an analyst"
        assert not FULL_MOBILE.search(text), f"{relation} shows a full mobile number to an analyst"
    assert seen

    masked = query(
        analyst, "SELECT id_number, phone, name FROM people WHERE phone IS NOT NULL AND id_number IS NOT NULL"
    )
    assert masked["masked"] is True
    assert len(masked["rows"]) >= len(people)
    assert all("*" in id_number and "*" in phone and "*" in name for id_number, phone, name in masked["rows"])
    # An analyst knows a person by the pseudonymous key of the masked views, not by the resident ID.
    key = query(analyst, "SELECT person_key FROM people WHERE phone IS NOT NULL AND id_number IS NOT NULL LIMIT 1")
    key = key["rows"][0][0]
    assert not FULL_ID.search(key)
    for args in (("show", "person", key), ("review", "list"), ("kpi", "--by", "worker")):
        shown = hub.cli(*args, token=hub.tokens.analyst)
        assert shown.returncode == 0, (args, shown.stderr)
        assert not FULL_ID.search(shown.stdout + shown.stderr), args
        assert not FULL_MOBILE.search(shown.stdout + shown.stderr), args

    whole = hub.cli("sql", f"SELECT phone FROM people WHERE id_number = '{someone}'", "-o", "json")
    assert json.loads(whole.stdout) == [{"phone": f"+86{phone}"}]
    audit = hub.cli("audit", "--caller", "command-centre", "-o", "json", token=hub.admin)
    assert audit.returncode == 0, audit.stderr
    entries = json.loads(audit.stdout)
    assert any(entry["personal"] and someone in entry["statement"] and entry["rows"] == 1 for entry in entries)
    analyst_entries = json.loads(hub.cli("audit", "--caller", "analyst", "-o", "json", token=hub.admin).stdout)
    assert analyst_entries and not any(entry["personal"] for entry in analyst_entries)


def test_an_analyst_cannot_name_the_unmasked_tables(hub: Hub) -> None:
    analyst = hub.as_caller(hub.tokens.analyst)
    for sql in ("SELECT * FROM main.people", "SELECT * FROM memory.main.people", "SELECT * FROM audit_log"):
        with pytest.raises(QueryRefused) as refused:
            query(analyst, sql)
        assert refused.value.reason_code == "relation", sql


def test_only_command_centre_staff_decide_a_review(hub: Hub) -> None:
    for who in (hub.tokens.analyst, hub.admin, hub.tokens.desks["water"]):
        decided = hub.cli("review", "separate", "person", "civil-affairs", "no-such-row", token=who)
        assert decided.returncode == 2
        assert "needs the role commander" in decided.stderr
    by_staff = hub.cli("review", "separate", "person", "civil-affairs", "no-such-row")
    assert by_staff.returncode == 2
    assert "no person copy civil-affairs/no-such-row" in by_staff.stderr
