"""The simulated town day: reproducible, valid where it claims to be, faulty where it should be.

The integration tests and ``gridhub demo`` assert the pipeline's outcome against
``TownDay.expected``, so these tests recount everything independently, through the
canonical models and the routing table rather than the generator's own helpers.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from foundation.packaged import CATEGORIES
from schemas.approvals import load_catalogue
from schemas.identity import InvalidCode, normalise_resident_id, normalise_uscc
from schemas.records import Application, Event, EventUpdate, Organisation, Person
from simulation.day import TownDay, simulate_day, write_exports
from simulation.town import (
    GRID_WORKERS,
    ORGANISATION_HEADERS,
    PEOPLE_HEADERS,
    REPORTING,
    UNKNOWN_CATEGORY_CODES,
    reported_categories,
)
from streams.routing import RoutingRules, load_rules

ROOT = Path(__file__).resolve().parents[3]
CST = timezone(timedelta(hours=8))
REPORT_KEYS = {"report_id", "category", "description", "lat", "lon", "reported_at", "reporter_id", "photos"}
PHOTO = re.compile(r"^sha256:[0-9a-f]{64}$")
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


@pytest.fixture(scope="module")
def rules() -> RoutingRules:
    return load_rules(CATEGORIES)


@pytest.fixture(scope="module")
def day() -> TownDay:
    return simulate_day()


def person(row: dict[str, str]) -> Person:
    return Person.model_validate({PEOPLE_HEADERS[key]: value for key, value in row.items()})


def organisation(row: dict[str, str]) -> Organisation:
    return Organisation.model_validate({ORGANISATION_HEADERS[key]: value for key, value in row.items()})


def event(report: dict) -> Event:
    payload = {key: value for key, value in report.items() if key not in ("report_id", "photos")}
    return Event.model_validate({**payload, "event_id": report["report_id"], "photo_refs": report["photos"]})


def recount(day: TownDay, rules: RoutingRules) -> dict[str, int]:
    """Every expected count, derived through the canonical models and the routing table."""
    first: dict[str, dict] = {}
    for body in day.reports:
        first.setdefault(body["report_id"], body)
    unknown = [body for body in first.values() if rules.resolve(body["category"]) is None]

    valid_rows = 0
    application_ids: set[str] = set()
    at_windows: set[str] = set()
    for row in day.applications:
        try:
            Application.model_validate(row)
        except ValidationError:
            continue
        valid_rows += 1
        application_ids.add(row["application_id"])
        if row["window_no"] is not None:
            at_windows.add(row["application_id"])

    people_keys: list[str] = []
    for row in day.people:
        try:
            people_keys.append(person(row).key)
        except ValidationError:
            continue
    organisation_keys: list[str] = []
    for row in day.organisations:
        try:
            organisation_keys.append(organisation(row).key)
        except ValidationError:
            continue

    return {
        "reports_sent": len(day.reports),
        "reports_malformed": len(day.malformed_reports),
        "events": len(first) - len(unknown),
        "report_retries": len(day.reports) - len(first),
        "reports_unknown_category": len(unknown),
        "updates": len(day.updates),
        "application_rows": len(day.applications),
        "applications": len(application_ids),
        "applications_at_windows": len(at_windows),
        "application_rows_invalid": len(day.applications) - valid_rows,
        "people_rows": len(day.people),
        "people": len(set(people_keys)),
        "people_duplicates": len(people_keys) - len(set(people_keys)),
        "people_invalid": len(day.people) - len(people_keys),
        "organisation_rows": len(day.organisations),
        "organisations": len(set(organisation_keys)),
        "organisation_duplicates": len(organisation_keys) - len(set(organisation_keys)),
        "organisations_invalid": len(day.organisations) - len(organisation_keys),
        "patrol_points": sum(len(body["points"]) for body in day.tracks),
        "workers_compliant": patrol_compliant(day.tracks),
    }


def patrol_compliant(tracks: list[dict]) -> int:
    """Workers with at least two patrols of 50 minutes or more, from the raw points."""
    long_patrols = Counter(
        body["worker_id"]
        for body in tracks
        if datetime.fromisoformat(body["points"][-1]["at"]) - datetime.fromisoformat(body["points"][0]["at"])
        >= timedelta(minutes=50)
    )
    return sum(1 for count in long_patrols.values() if count >= 2)


def test_patrol_tracks_are_two_minute_walks_inside_the_town(day: TownDay) -> None:
    workers = Counter(body["worker_id"] for body in day.tracks)
    assert len(workers) == GRID_WORKERS
    assert 0.8 * GRID_WORKERS <= day.expected["workers_compliant"] < GRID_WORKERS
    for body in day.tracks:
        times = [datetime.fromisoformat(point["at"]) for point in body["points"]]
        assert all(later - earlier == timedelta(minutes=2) for earlier, later in itertools.pairwise(times))
        assert all(31.95 <= point["lat"] <= 32.03 and 119.82 <= point["lon"] <= 119.92 for point in body["points"])


# --- reproducibility -----------------------------------------------------------------------


def test_same_seed_gives_the_same_day() -> None:
    assert simulate_day(80, seed=7) == simulate_day(80, seed=7)


def test_another_seed_gives_another_day() -> None:
    one, other = simulate_day(80, seed=7), simulate_day(80, seed=8)
    assert one.reports != other.reports
    assert one.people != other.people


def test_day_does_not_depend_on_hash_randomisation() -> None:
    """A set iterated into the output would differ between interpreter runs; none must."""
    script = (
        "import dataclasses, hashlib, json; from simulation.day import simulate_day; "
        "day = dataclasses.asdict(simulate_day(60, seed=3)); "
        "day['malformed_reports'] = [body.decode() for body in day['malformed_reports']]; "
        "print(hashlib.sha256(json.dumps(day, ensure_ascii=False, default=str).encode()).hexdigest())"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        )
        digests.add(done.stdout.strip())
    assert len(digests) == 1


def test_needs_at_least_one_event() -> None:
    with pytest.raises(ValueError, match="at least one event"):
        simulate_day(0)


# --- expected counts -----------------------------------------------------------------------


@pytest.mark.parametrize(("events", "seed"), [(1, 1), (37, 5), (200, 20261125), (1000, 42)])
def test_expected_counts_match_an_independent_recount(events: int, seed: int, rules: RoutingRules) -> None:
    day = simulate_day(events, seed=seed)
    assert day.expected == recount(day, rules)
    assert day.expected["events"] == events + len(day.corroborating) + 1  # the article's example
    assert day.expected["people_rows"] == max(50, events)
    assert day.expected["organisation_rows"] == max(20, events // 5)
    assert day.expected["applications"] == max(1, events // 2)
    expected = day.expected
    assert (
        expected["reports_sent"]
        == expected["events"] + expected["report_retries"] + expected["reports_unknown_category"]
    )
    assert expected["people_rows"] == expected["people"] + expected["people_duplicates"] + expected["people_invalid"]
    assert expected["organisation_rows"] == (
        expected["organisations"] + expected["organisation_duplicates"] + expected["organisations_invalid"]
    )


def test_fault_proportions_are_roughly_as_briefed(day: TownDay) -> None:
    expected = day.expected
    assert expected["report_retries"] == 10  # 5% of 200
    assert expected["reports_unknown_category"] == 4  # 2% of 200
    assert 2 <= expected["reports_malformed"] <= 3
    assert 1 <= expected["application_rows_invalid"] <= 2
    assert expected["people_duplicates"] == 10
    assert expected["people_invalid"] == 4 + 1  # wrong check characters plus the nameless row
    assert expected["organisations_invalid"] == 1
    assert expected["organisation_duplicates"] >= 1


# --- incident reports ----------------------------------------------------------------------


def test_reports_are_well_formed(day: TownDay, rules: RoutingRules) -> None:
    start = datetime(2026, 11, 25, 8, tzinfo=CST)
    end = datetime(2026, 11, 25, 18, tzinfo=CST)
    for body in day.reports:
        assert set(body) == REPORT_KEYS
        assert re.fullmatch(r"R20261125-(\d{6}(-2)?|A00020)", body["report_id"])
        assert 31.95 <= body["lat"] <= 32.03
        assert 119.82 <= body["lon"] <= 119.92
        assert body["reported_at"].endswith("+08:00")
        assert start <= datetime.fromisoformat(body["reported_at"]) < end
        assert re.fullmatch(r"GW\d{3}", body["reporter_id"])
        assert 1 <= int(body["reporter_id"][2:]) <= GRID_WORKERS
        assert 1 <= len(body["photos"]) <= 3
        assert all(PHOTO.match(photo) for photo in body["photos"])
        assert body["description"].strip()
        if rules.resolve(body["category"]) is not None:
            record = event(body)
            assert record.reported_at.utcoffset() == timedelta(hours=8)


def test_corroborating_reports_repeat_an_open_problem_nearby_soon_after(day: TownDay) -> None:
    from streams.nearby import distance_m

    reports = {body["report_id"]: body for body in day.reports}
    updated = {update["event_id"] for update in day.updates}
    assert len(day.corroborating) == round(200 * 0.04)
    for report_id in day.corroborating:
        second, first = reports[report_id], reports[report_id.removesuffix("-2")]
        assert first["report_id"] not in updated, "the first report's case must still be open"
        assert second["category"] == first["category"]
        assert distance_m(first["lat"], first["lon"], second["lat"], second["lon"]) <= 30
        gap = datetime.fromisoformat(second["reported_at"]) - datetime.fromisoformat(first["reported_at"])
        assert timedelta(0) < gap <= timedelta(minutes=40)


def test_report_categories_resolve_except_the_unknown_ones(day: TownDay, rules: RoutingRules) -> None:
    resolved = [rules.resolve(body["category"]) for body in day.reports]
    unknown = [body["category"] for body, found in zip(day.reports, resolved, strict=True) if found is None]
    assert unknown
    assert all(code.isdigit() and code not in rules.categories for code in unknown)
    by_name = [body for body in day.reports if not body["category"].isdigit()]
    assert 0.03 <= len(by_name) / len(day.reports) <= 0.2
    assert all(rules.resolve(body["category"]) is not None for body in by_name)


def test_retries_are_exact_copies_sent_later(day: TownDay, rules: RoutingRules) -> None:
    first: dict[str, int] = {}
    retries = 0
    for position, body in enumerate(day.reports):
        if body["report_id"] in first:
            retries += 1
            original = day.reports[first[body["report_id"]]]
            assert body == original
            assert body is not original
            assert rules.resolve(body["category"]) is not None
        else:
            first[body["report_id"]] = position
    assert retries == day.expected["report_retries"] > 0


def test_malformed_reports_are_not_json_objects(day: TownDay) -> None:
    for raw in day.malformed_reports:
        assert isinstance(raw, bytes)
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            continue
        assert not isinstance(parsed, dict)


def test_reported_categories_are_named_and_routed_by_the_routing_rules(rules: RoutingRules) -> None:
    categories = reported_categories(rules)
    assert [spec.code for spec in categories] == list(REPORTING)
    for spec in categories:
        category = rules.categories[spec.code]
        assert (category.name, category.department) == (spec.name, spec.department)
        assert all("{place}" in text for text in spec.descriptions)
    assert all(rules.resolve(code) is None for code in UNKNOWN_CATEGORY_CODES)


def test_a_routing_table_without_a_simulated_category_is_refused(rules: RoutingRules) -> None:
    fewer = RoutingRules(rules.departments, {code: c for code, c in rules.categories.items() if code != "0102"})
    with pytest.raises(ValueError, match="lacks the simulated categories 0102"):
        reported_categories(fewer)


# --- lifecycle updates ---------------------------------------------------------------------


SENDER_ROLES = {"GW": "grid_worker", "de": "desk", "ZF": "desk"}
"""The role the gateway gives each simulated sender's token: a worker's phone, a desk (desk-..., or the squad desk
of an enforcement officer ZF..), else the centre."""


def test_updates_follow_the_case_flow(day: TownDay, rules: RoutingRules) -> None:
    """Each event's updates, replayed through the real state machine after the automatic steps, are legal."""
    from schemas.working_time import load_calendar
    from streams.case_flow import load_flow
    from streams.case_machine import apply, auto_advance, open_case
    from streams.case_state import Command

    flow = load_flow()
    calendar = load_calendar()
    reports = {body["report_id"]: body for body in day.reports if rules.resolve(body["category"]) is not None}
    assert len({update["update_id"] for update in day.updates}) == len(day.updates)
    cases = {}
    for update in day.updates:
        EventUpdate.model_validate(update)
        report = reports[update["event_id"]]
        assert update["at"].endswith("+08:00")
        assert datetime.fromisoformat(update["at"]).date() == date(2026, 11, 25)
        if update["event_id"] not in cases:
            category = rules.resolve(report["category"])
            case, _ = open_case(
                case_id=report["report_id"],
                report_id=report["report_id"],
                category=category.code,
                department=category.department,
                squad=None,
                grid_code=None,
                lat=report["lat"],
                lon=report["lon"],
                reporter_id=report["reporter_id"],
                reported_at=datetime.fromisoformat(report["reported_at"]),
                limit_hours=category.limit_hours,
                limit_working_days=category.limit_working_days,
                calendar=calendar,
            )
            cases[update["event_id"]] = auto_advance(flow, case, case.reported_at)[-1][0]
        command = Command(
            case_id=update["event_id"],
            status=update["status"],
            actor=update["actor"],
            actor_role=SENDER_ROLES.get(update["actor"][:2], "command_centre"),
            at=datetime.fromisoformat(update["at"]),
            note=update.get("note"),
            photo_ref=update.get("photo_ref"),
        )
        cases[update["event_id"]] = apply(flow, cases[update["event_id"]], command)[0]
        if update["status"] in ("handled", "verified"):
            assert PHOTO.match(update["photo_ref"])
        if update["status"] == "verified":
            assert update["actor"] == report["reporter_id"]
    share = len(cases) / len(reports)
    assert 0.4 <= share <= 0.7
    statuses = Counter(update["status"] for update in day.updates)
    assert statuses["returned"] >= 1
    reworks = [u for u in day.updates if u["status"] == "returned" and u["actor"].startswith("GW")]
    assert reworks, "some cases fail the on-site check and are reworked"
    finals = Counter(case.status for case in cases.values())
    assert 0.5 <= finals["closed"] / len(cases) < 1


def test_updates_are_sent_in_time_order(day: TownDay) -> None:
    times = [datetime.fromisoformat(update["at"]) for update in day.updates]
    assert times == sorted(times)


# --- approvals -----------------------------------------------------------------------------


def test_application_rows_tell_each_application_in_order(day: TownDay) -> None:
    seen: dict[str, dict] = {}
    updated = [datetime.fromisoformat(row["updated_at"]) for row in day.applications]
    assert updated == sorted(updated)
    for row in day.applications:
        assert re.fullmatch(r"A\d+", row["application_id"])
        assert re.fullmatch(r"320411-[A-Z]{2}-\d{3}", row["item_code"])
        assert row["item_name"]
        assert (row["applicant_id_number"] is None) != (row["applicant_uscc"] is None)
        assert row["submitted_at"].endswith("+08:00") and row["updated_at"].endswith("+08:00")
        first = seen.setdefault(row["application_id"], row)
        if first is row:
            assert row["status"] == "submitted"
            assert row["updated_at"] == row["submitted_at"]
        else:
            assert row["status"] in ("accepted", "in_review", "approved", "refused")
            assert row["submitted_at"] == first["submitted_at"]
            assert (row["applicant_id_number"], row["applicant_uscc"]) == (
                first["applicant_id_number"],
                first["applicant_uscc"],
            )
    rows_per_application = Counter(row["application_id"] for row in day.applications)
    assert set(rows_per_application.values()) <= {1, 2, 3}
    assert len({row["item_code"] for row in day.applications}) >= 8


def test_applications_come_online_or_to_a_window_mostly_of_their_items_department(day: TownDay) -> None:
    catalogue = load_catalogue()
    seats = {(row["application_id"], row["item_code"], row["window_no"], row["channel"]) for row in day.applications}
    assert len(seats) == len({row["application_id"] for row in day.applications}), "all changes share the seat"
    staffed_by_own = 0
    for application_id, code, window_no, channel in seats:
        item = catalogue.items[code]
        assert (channel == "online") == (window_no is None)
        if item.fully_online:
            assert channel == "online", application_id
        elif window_no is not None:
            staffed_by_own += catalogue.windows[window_no].department == item.department
    at_windows = sum(1 for _, _, window_no, _ in seats if window_no is not None)
    assert at_windows > len(seats) / 2
    assert staffed_by_own > at_windows / 2


def test_invalid_applications_fail_on_the_check_character(day: TownDay) -> None:
    failures = []
    for row in day.applications:
        try:
            Application.model_validate(row)
        except ValidationError as exc:
            failures.append(str(exc))
    assert 1 <= len(failures) <= 2
    assert all("check character" in failure and "applicant_id_number" in failure for failure in failures)


# --- household register --------------------------------------------------------------------


def test_people_rows_carry_exactly_the_register_headers(day: TownDay) -> None:
    assert all(list(row) == list(PEOPLE_HEADERS) for row in day.people)
    assert all(re.fullmatch(r"1\d{10}", row["联系电话"]) for row in day.people)
    assert all("孟河镇" in row["住址"] and row["住址"].endswith("号") for row in day.people)


def test_people_gender_and_birth_date_agree_with_the_id(day: TownDay) -> None:
    divisions = Counter()
    for row in day.people:
        code = row["公民身份号码"]
        divisions[code[:6]] += 1
        assert row["性别"] == ("男" if int(code[16]) % 2 else "女")
        assert row["出生日期"] == f"{code[6:10]}-{code[10:12]}-{code[12:14]}"
    assert divisions.most_common(1)[0][0] == "320411"
    assert len(divisions) >= 3


def test_valid_people_normalise_and_invalid_ones_fail(day: TownDay) -> None:
    lower_x = 0
    failures: list[str] = []
    for row in day.people:
        try:
            record = person(row)
        except ValidationError as exc:
            failures.append(str(exc))
            continue
        assert normalise_resident_id(row["公民身份号码"]) == record.id_number
        if row["公民身份号码"].endswith("x"):
            lower_x += 1
            assert record.id_number.endswith("X")
    assert lower_x >= 1
    assert len(failures) == day.expected["people_invalid"]
    assert sum("check character" in failure for failure in failures) == len(failures) - 1
    assert sum("name" in failure and "Field required" in failure for failure in failures) == 1


def test_people_duplicates_are_exact_copies(day: TownDay) -> None:
    rows = Counter(json.dumps(row, ensure_ascii=False, sort_keys=True) for row in day.people)
    assert sum(count - 1 for count in rows.values()) == day.expected["people_duplicates"]
    ids = Counter(row["公民身份号码"].upper() for row in day.people)
    assert sum(count - 1 for count in ids.values()) == day.expected["people_duplicates"]


# --- enterprise register -------------------------------------------------------------------


def _gb11714_check(body: str) -> str:
    total = sum(
        (int(char) if char.isdigit() else ord(char) - 55) * weight
        for char, weight in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)
    )
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def test_gb11714_check_matches_the_reference_example() -> None:
    assert _gb11714_check("60003734") == "1"


def test_organisations_have_structured_codes(day: TownDay) -> None:
    invalid = 0
    for row in day.organisations:
        assert list(row) == list(ORGANISATION_HEADERS)
        code = row["统一社会信用代码"]
        assert code[0] == "9" and code[1] in "123" and code[2:8] == "320411"
        assert all(char in USCC_ALPHABET for char in code)
        assert _gb11714_check(code[8:16]) == code[16]
        try:
            assert normalise_uscc(code) == code
        except InvalidCode:
            invalid += 1
            with pytest.raises(ValidationError, match="check character"):
                organisation(row)
        else:
            assert organisation(row).name == row["单位名称"]
    assert invalid == day.expected["organisations_invalid"] == 1


def test_applicants_link_to_the_registers(day: TownDay) -> None:
    people = {person(row).id_number for row in day.people if row["姓名"] and _valid_id(row["公民身份号码"])}
    applicants = {row["applicant_id_number"] for row in day.applications if row["applicant_id_number"]}
    assert len(applicants & people) >= len(applicants) // 2


def _valid_id(code: str) -> bool:
    try:
        normalise_resident_id(code)
    except InvalidCode:
        return False
    return True


# --- export files --------------------------------------------------------------------------


def test_write_exports_round_trips(day: TownDay, tmp_path: Path) -> None:
    people_path, organisations_path = write_exports(day, tmp_path / "exports")
    assert (people_path.name, organisations_path.name) == ("people.csv", "organisations.jsonl")
    raw = people_path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    with people_path.open(encoding="utf-8", newline="") as handle:
        assert list(csv.DictReader(handle)) == day.people
    lines = organisations_path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == day.organisations
