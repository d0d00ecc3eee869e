"""The catalogue of approval items: its shape, its checks, and the warehouse facts built on it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import duckdb
import pytest

from schemas.approvals import ApprovalCatalogue, CatalogueError, NotInCatalogue, load_catalogue
from schemas.records import Application
from simulation.day import APPROVAL_ITEMS
from warehouse.approvals import replace_approval_items
from warehouse.writer import SCHEMA_FILES

WAREHOUSE = Path(__file__).resolve().parents[3] / "warehouse"


@pytest.fixture(scope="module")
def catalogue() -> ApprovalCatalogue:
    return load_catalogue()


def test_catalogue_has_134_items_58_provincial_76_municipal_15_fully_online(catalogue: ApprovalCatalogue) -> None:
    items = list(catalogue.items.values())
    assert len(items) == 134
    assert Counter(item.level for item in items) == {"provincial": 58, "municipal": 76}
    assert sum(item.fully_online for item in items) == 15


def test_the_articles_fully_online_examples_and_the_tax_department_are_in_the_catalogue(
    catalogue: ApprovalCatalogue,
) -> None:
    online = {item.name: item.department for item in catalogue.items.values() if item.fully_online}
    assert online["企业代开增值税专用发票和普通发票"] == "tax"  # 企业代开专普票
    assert online["生育服务卡领取(生育登记)"] == "health"  # 认领生育服务卡
    assert {item.department_name for item in catalogue.items.values() if item.department == "tax"} == {
        "国家税务总局常州市新北区税务局"
    }


def test_every_item_has_a_positive_time_limit_a_name_and_a_named_department(catalogue: ApprovalCatalogue) -> None:
    for item in catalogue.items.values():
        assert item.time_limit_days > 0, item.code
        assert item.name.strip() and item.department_name.strip(), item.code


def test_the_simulated_days_items_are_in_the_catalogue_under_the_same_names(catalogue: ApprovalCatalogue) -> None:
    for code, name, _ in APPROVAL_ITEMS:
        item = catalogue.get(code)
        assert item is not None and item.name == name, code


def test_file_header_says_it_is_a_synthetic_stand_in_counted_in_calendar_days(catalogue: ApprovalCatalogue) -> None:
    header = catalogue.path.read_text(encoding="utf-8").split("departments:")[0]
    assert "SYNTHETIC STAND-IN" in header
    assert "CALENDAR days" in header


ITEM = "{code: X-1, name: 测试事项, level: municipal, department: market, fully_online: false, time_limit_days: 5}"


@pytest.mark.parametrize(
    ("item", "complaint"),
    [
        (ITEM.replace("municipal", "county"), "level 'county'"),
        (ITEM.replace("market", "bank"), "department 'bank'"),
        (ITEM.replace("time_limit_days: 5", "time_limit_days: 0"), "positive time_limit_days"),
        (ITEM.replace("time_limit_days: 5", "time_limit_days: 2.5"), "positive time_limit_days"),
        (ITEM.replace("fully_online: false", "fully_online: maybe"), "fully_online"),
        (ITEM.replace(", time_limit_days: 5", ""), "lacks 'time_limit_days'"),
        (f"{ITEM}\n  - {ITEM}", "appears twice"),
    ],
)
def test_a_wrong_catalogue_is_one_error_naming_the_file_and_the_item(tmp_path: Path, item: str, complaint: str) -> None:
    path = tmp_path / "items.yaml"
    path.write_text(f"departments:\n  market: 市场监管局\nitems:\n  - {item}\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match=complaint) as caught:
        load_catalogue(path)
    assert str(path) in str(caught.value)


def test_a_missing_catalogue_file_is_one_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="cannot read the approval catalogue"):
        load_catalogue(tmp_path / "absent.yaml")


def application(item_code: str, **fields: str) -> Application:
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


def test_check_fills_the_item_name_from_the_catalogue_and_keeps_a_given_one(catalogue: ApprovalCatalogue) -> None:
    checked = catalogue.check(application(" 320411-XK-001 "))
    assert isinstance(checked, Application)
    assert (checked.item_code, checked.item_name) == ("320411-XK-001", "个体工商户设立登记")
    kept = catalogue.check(application("320411-XK-001", item_name="个体户开业"))
    assert isinstance(kept, Application) and kept.item_name == "个体户开业"


def test_check_explains_an_unknown_item(catalogue: ApprovalCatalogue) -> None:
    with pytest.raises(NotInCatalogue, match=r"'320411-XK-999' is not in the catalogue approval_items\.yaml") as caught:
        catalogue.check(application("320411-XK-999"))
    assert caught.value.reason_code == "unknown_item"


@pytest.fixture
def warehouse(catalogue: ApprovalCatalogue) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    for schema in (WAREHOUSE / "schema.sql", WAREHOUSE / "approvals.sql"):
        connection.execute(schema.read_text())
    replace_approval_items(connection, catalogue)
    return connection


def test_approvals_schema_is_installed_with_the_warehouse() -> None:
    assert WAREHOUSE / "approvals.sql" in SCHEMA_FILES


def test_loading_the_catalogue_twice_leaves_exactly_the_catalogue(
    warehouse: duckdb.DuckDBPyConnection, catalogue: ApprovalCatalogue
) -> None:
    replace_approval_items(warehouse, catalogue)
    rows = warehouse.execute(
        "SELECT level, count(*), count(*) FILTER (fully_online), min(time_limit_days) FROM approval_items GROUP BY 1"
    ).fetchall()
    assert sorted(rows) == [("municipal", 76, 9, 1), ("provincial", 58, 6, 1)]


def test_application_facts_compute_deadline_finish_overdue_and_applicant_kind(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    # 320411-XK-001 has a 3-day limit: due 2020-01-04 09:00 +08:00.
    warehouse.execute(
        "INSERT INTO applications (application_id, item_code, applicant_id_number, applicant_uscc, status, "
        "submitted_at, updated_at) VALUES "
        "('open-late', '320411-XK-001', '11010519491231002X', NULL, 'accepted', "
        "  '2020-01-01 09:00+08', '2020-01-01 10:00+08'),"
        "('done-in-time', '320411-XK-001', NULL, '91350100M000100Y43', 'approved', "
        "  '2020-01-01 09:00+08', '2020-01-04 09:00+08'),"
        "('done-late', '320411-XK-001', '11010519491231002X', NULL, 'refused', "
        "  '2020-01-01 09:00+08', '2020-01-04 09:01+08'),"
        "('open-in-time', '320411-XK-001', '11010519491231002X', NULL, 'in_review', "
        "  now() - INTERVAL 1 HOUR, now())"
    )
    rows = warehouse.execute(
        "SELECT application_id, item_name, strftime(timezone('Asia/Shanghai', due_at), '%Y-%m-%d %H:%M'), "
        "finished, overdue, applicant_kind FROM application_facts ORDER BY application_id"
    ).fetchall()
    assert rows[:3] == [
        ("done-in-time", "个体工商户设立登记", "2020-01-04 09:00", True, False, "organisation"),
        ("done-late", "个体工商户设立登记", "2020-01-04 09:00", True, True, "person"),
        ("open-in-time", "个体工商户设立登记", rows[2][2], False, False, "person"),
    ]
    assert rows[3] == ("open-late", "个体工商户设立登记", "2020-01-04 09:00", False, True, "person")
