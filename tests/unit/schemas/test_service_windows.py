"""The service centre's windows: the shipped 34, the loader's refusals, the check of an application's window."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import duckdb
import pytest

from schemas.approvals import ApprovalCatalogue, CatalogueError, NotInCatalogue, load_catalogue
from schemas.records import Application
from warehouse.approvals import replace_approval_items
from warehouse.writer import SCHEMA_FILES


@pytest.fixture(scope="module")
def catalogue() -> ApprovalCatalogue:
    return load_catalogue()


def test_the_centre_has_34_windows_numbered_1_to_34_each_taking_every_item(catalogue: ApprovalCatalogue) -> None:
    assert sorted(catalogue.windows) == list(range(1, 35))
    assert all(window.items is None and window.takes("320411-XK-001") for window in catalogue.windows.values())
    assert len({window.clerk_id for window in catalogue.windows.values()}) == 34


def test_police_tax_and_market_supervision_staff_windows_of_their_own(catalogue: ApprovalCatalogue) -> None:
    staffed = Counter(window.department for window in catalogue.windows.values())
    assert {"police", "tax", "market"} <= set(staffed)
    assert catalogue.windows[5].department_name == "国家税务总局常州市新北区税务局"


ITEM = "{code: X-1, name: 测试事项, level: municipal, department: market, fully_online: false, time_limit_days: 5}"
WINDOW = "{number: 1, department: market, clerk_id: C-1, clerk_name: 王丽}"


def catalogue_file(folder: Path, *windows: str) -> Path:
    path = folder / "items.yaml"
    listed = "".join(f"\n  - {window}" for window in windows)
    path.write_text(
        f"departments:\n  market: 市场监管局\nitems:\n  - {ITEM}\n  - {ITEM.replace('X-1', 'X-2')}\nwindows:{listed}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("windows", "complaint"),
    [
        ((WINDOW.replace("market", "bank"),), "window 1 names department 'bank'"),
        ((WINDOW, WINDOW), "window number 1 appears twice"),
        ((WINDOW.replace("}", ", items: [X-1, X-9]}"),), r"window 1 lists item\(s\) X-9"),
        ((WINDOW.replace("}", ", items: []}"),), "items: all or a non-empty list"),
        ((WINDOW.replace("number: 1", "number: 0"),), "window number 0 must be a whole positive number"),
        ((WINDOW.replace(", clerk_name: 王丽", ""),), "window 1 lacks 'clerk_name'"),
        (("seven",), "window entry 'seven' must be a mapping"),
    ],
)
def test_a_wrong_window_is_one_error_naming_the_file(tmp_path: Path, windows: tuple[str, ...], complaint: str) -> None:
    path = catalogue_file(tmp_path, *windows)
    with pytest.raises(CatalogueError, match=complaint) as caught:
        load_catalogue(path)
    assert str(path) in str(caught.value)


def test_a_window_may_take_only_the_items_it_lists(tmp_path: Path) -> None:
    loaded = load_catalogue(catalogue_file(tmp_path, WINDOW.replace("}", ", items: [X-1]}"), WINDOW.replace("1", "2")))
    assert loaded.windows[1].takes("X-1") and not loaded.windows[1].takes("X-2")
    assert loaded.windows[2].items is None and loaded.windows[2].takes("X-2")
    with pytest.raises(NotInCatalogue, match=r"window 1 .* does not take item X-2") as caught:
        loaded.check(application("X-2", window_no=1, channel="window"))
    assert caught.value.reason_code == "item_not_at_window"


def application(item_code: str, **fields: object) -> Application:
    return Application.model_validate(
        {
            "application_id": "A1",
            "item_code": item_code,
            "applicant_uscc": "91350100M000100Y43",
            "status": "submitted",
            "submitted_at": "2026-11-25T09:00:00+08:00",
            "updated_at": "2026-11-25T09:00:00+08:00",
            **fields,
        }
    )


def test_an_application_keeps_its_window_and_channel(catalogue: ApprovalCatalogue) -> None:
    checked = catalogue.check(application("320411-XK-001", window_no="07", channel="window"))
    assert (checked.window_no, checked.channel) == (7, "window")
    online = catalogue.check(application("320411-QT-005", channel="online"))
    assert (online.window_no, online.channel) == (None, "online")


def test_a_fully_online_item_may_still_be_taken_at_a_window(catalogue: ApprovalCatalogue) -> None:
    assert catalogue.check(application("320411-QT-005", window_no=5, channel="window")).window_no == 5


@pytest.mark.parametrize(
    ("fields", "code", "message"),
    [
        ({"window_no": 35, "channel": "window"}, "unknown_window", "window 35 is not among the 34 windows"),
        ({"window_no": 3, "channel": "online"}, "online_with_window", "taken online names window 3"),
    ],
)
def test_an_application_from_no_window_of_the_centre_is_refused_with_its_reason(
    catalogue: ApprovalCatalogue, fields: dict[str, object], code: str, message: str
) -> None:
    with pytest.raises(NotInCatalogue, match=message) as caught:
        catalogue.check(application("320411-XK-001", **fields))
    assert caught.value.reason_code == code


def test_a_channel_is_window_or_online() -> None:
    with pytest.raises(ValueError, match="channel"):
        application("320411-XK-001", channel="phone")
    with pytest.raises(ValueError, match="window_no"):
        application("320411-XK-001", window_no=0)


def test_the_sink_replaces_the_windows_with_the_catalogue_and_facts_name_the_windows_department(
    catalogue: ApprovalCatalogue,
) -> None:
    connection = duckdb.connect()
    for schema in SCHEMA_FILES:
        connection.execute(schema.read_text())
    replace_approval_items(connection, catalogue)
    replace_approval_items(connection, catalogue)
    assert connection.execute(
        "SELECT count(*), count(DISTINCT window_no), bool_and(all_items), count(items) FROM service_windows"
    ).fetchone() == (34, 34, True, 0)
    connection.execute(
        "INSERT INTO applications (application_id, item_code, applicant_uscc, status, submitted_at, updated_at, "
        "window_no, channel) VALUES ('A1', '320411-XK-001', '91350100M000100Y43', 'submitted', now(), now(), 5, "
        "'window'), ('A2', '320411-QT-005', '91350100M000100Y43', 'submitted', now(), now(), NULL, 'online')"
    )
    rows = connection.execute(
        "SELECT application_id, window_no, channel, window_department, window_department_name FROM application_facts "
        "ORDER BY 1"
    ).fetchall()
    assert rows == [("A1", 5, "window", "tax", "国家税务总局常州市新北区税务局"), ("A2", None, "online", None, None)]
