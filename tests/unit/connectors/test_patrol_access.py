"""The gateway takes who acts, and in which role, from the token: never from the body."""

from __future__ import annotations

import pytest

from connectors.http_guard import RequestRefused
from connectors.patrol_access import desk_department, stamp_report, stamp_tracks, stamp_update
from connectors.work_orders import format_cursor, parse_cursor
from foundation.access import Caller, Forbidden

PHONE = Caller("phone-GW001", "device", worker="GW001")
DESK = Caller("desk-water", "desk", department="water")
CENTRE = Caller("command-centre", "commander")


def test_a_phone_reports_as_its_own_worker_and_never_as_another() -> None:
    payload = {"category": "0102"}
    stamp_report(PHONE, payload)
    assert payload["reporter_id"] == "GW001"
    with pytest.raises(Forbidden, match="phone of GW001; it cannot send a report as 'GW002'"):
        stamp_report(PHONE, {"reporter_id": "GW002"})


def test_the_command_centre_files_a_report_for_whoever_it_names() -> None:
    payload = {"reporter_id": "hotline-12345"}
    stamp_report(CENTRE, payload)
    assert payload["reporter_id"] == "hotline-12345"


@pytest.mark.parametrize(
    ("caller", "body", "actor", "role"),
    [
        (PHONE, {}, "GW001", "grid_worker"),
        (PHONE, {"actor": "GW001", "actor_role": "command_centre"}, "GW001", "grid_worker"),
        (DESK, {"actor": "王工", "actor_role": "command_centre"}, "王工", "desk"),
        (DESK, {}, "desk-water", "desk"),
        (CENTRE, {"actor": "anyone"}, "anyone", "command_centre"),
    ],
)
def test_an_update_acts_in_the_role_of_its_token_whatever_the_body_claims(
    caller: Caller, body: dict, actor: str, role: str
) -> None:
    stamp_update(caller, body)
    assert (body["actor"], body["actor_role"]) == (actor, role)


def test_a_phone_cannot_update_or_patrol_as_another_worker() -> None:
    with pytest.raises(Forbidden):
        stamp_update(PHONE, {"actor": "GW002"})
    stamp_tracks(PHONE, [("GW001|t", {"worker_id": "GW001"})])
    with pytest.raises(Forbidden, match="patrol track"):
        stamp_tracks(PHONE, [("GW001|t", {"worker_id": "GW001"}), ("GW002|t", {"worker_id": "GW002"})])


def test_only_a_desk_is_bound_to_a_department() -> None:
    assert desk_department(DESK) == "water"
    assert desk_department(CENTRE) is None
    assert desk_department(PHONE) is None


def test_a_work_order_cursor_goes_back_as_it_came() -> None:
    assert parse_cursor(format_cursor({1: 5, 0: 12})) == {0: 12, 1: 5}
    assert parse_cursor("") == {}
    for bad in ("0:x", "0-1", "0:-1", "0:1:2"):
        with pytest.raises(RequestRefused) as refused:
            parse_cursor(bad)
        assert refused.value.status == 400
