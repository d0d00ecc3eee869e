"""The enforcement bureau's file and the checks it puts on every enforcement case file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.enforcement import Bureau, BureauFileError, CaseFileRefused, load_bureau
from schemas.grid import SQUADS
from schemas.records import EnforcementCase


@pytest.fixture(scope="module")
def bureau() -> Bureau:
    return load_bureau()


def case_file(**changes: Any) -> EnforcementCase:
    fields: dict[str, Any] = {
        "case_no": "ZF20261125-0001",
        "grid_case_id": "R20261125-000012",
        "power_code": "ZF-CG-005",
        "party_name": "王建国",
        "officer_id": "ZF03",
        "filed_at": "2026-11-25T09:45:00+08:00",
        "investigated_at": "2026-11-25T09:50:00+08:00",
        "notified_at": "2026-11-25T10:00:00+08:00",
        "decided_at": "2026-11-25T10:10:00+08:00",
    }
    fields.update(changes)
    return EnforcementCase.model_validate({key: value for key, value in fields.items() if value is not None})


def test_the_bureau_has_the_articles_shape_a_legal_section_three_squads_44_officers_78_powers(bureau: Bureau) -> None:
    units = bureau.file.units
    assert Counter(unit.kind for unit in units.values()) == {"section": 1, "squad": 3}
    assert {key for key, unit in units.items() if unit.kind == "squad"} == set(SQUADS)
    assert {unit.name for unit in units.values() if unit.kind == "squad"} == {"万绥中队", "孟城中队", "小河中队"}
    assert len(bureau.officers) == 44
    assert len(bureau.powers) == 78
    assert {power.department for power in bureau.powers.values()} == {"urban", "labour"}


def test_every_officer_inspects_basic_cells_of_their_own_squad(bureau: Bureau) -> None:
    from foundation.packaged import MENGHE_GRID
    from schemas.grid import Grid

    grid = Grid.load(MENGHE_GRID)
    covered = set()
    for officer in bureau.officers.values():
        assert officer.cells, officer.id
        for code in officer.cells:
            assert grid.cells[code].squad == officer.unit, (officer.id, code)
            covered.add(code)
    basic = {code for code, cell in grid.cells.items() if cell.kind == "basic"}
    assert covered == basic


def test_the_file_says_it_is_a_synthetic_stand_in(bureau: Bureau) -> None:
    assert "SYNTHETIC STAND-IN" in bureau.path.read_text(encoding="utf-8").split("department:")[0]


def test_a_complete_case_gets_its_status_squad_and_power_name(bureau: Bureau) -> None:
    checked = bureau.check(case_file(executed_at="2026-11-25T11:10:00+08:00", closed_at="2026-11-25T11:30:00+08:00"))
    assert checked.status == "closing"
    assert checked.squad == "wansui"
    assert checked.power_name == bureau.powers["ZF-CG-005"].name


def test_a_case_dropped_after_investigation_may_close_without_notice_or_decision(bureau: Bureau) -> None:
    checked = bureau.check(case_file(notified_at=None, decided_at=None, closed_at="2026-11-25T10:30:00+08:00"))
    assert checked.status == "closing"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"power_code": "ZF-XX-999"}, "unknown_power"),
        ({"officer_id": "ZF99"}, "unknown_officer"),
        ({"filed_at": None}, "not_filed"),
        ({"notified_at": None}, "stage_skipped"),
        ({"investigated_at": None}, "stage_skipped"),
        ({"notified_at": "2026-11-25T09:40:00+08:00"}, "stage_out_of_order"),
        ({"executed_at": "2026-11-25T11:00:00+08:00", "decided_at": None}, "stage_skipped"),
    ],
)
def test_a_case_file_that_breaks_the_bureaus_rules_is_refused_with_its_reason(
    bureau: Bureau, changes: dict[str, Any], code: str
) -> None:
    with pytest.raises(CaseFileRefused) as refused:
        bureau.check(case_file(**changes))
    assert refused.value.reason_code == code
    assert "ZF20261125-0001" in str(refused.value) or code in ("unknown_power", "unknown_officer")


def test_a_case_needs_a_party() -> None:
    with pytest.raises(ValueError, match="needs its party"):
        case_file(party_name=None)


def _write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "bureau.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda d: d["officers"].append(dict(d["officers"][0])), "officer id ZF01 appears twice"),
        (lambda d: d["officers"][0].update(unit="nowhere"), "unit 'nowhere'"),
        (lambda d: d["powers"][0].update(department="police"), "department 'police'"),
        (lambda d: d["flow"]["moves"].append({"from": "filing", "to": "appeal"}), "stage 'appeal'"),
        (lambda d: d["flow"]["stages"].update(appeal={"zh": "复议", "en": "appeal"}), "not case-file stages"),
        (lambda d: d["units"].pop("xiaohe"), "must be the grid's squads"),
    ],
)
def test_a_wrong_bureau_file_stops_the_hub_with_one_line_naming_the_problem(
    tmp_path: Path, bureau: Bureau, spoil: Any, message: str
) -> None:
    document = yaml.safe_load(bureau.path.read_text(encoding="utf-8"))
    spoil(document)
    with pytest.raises(BureauFileError, match=message):
        load_bureau(_write(tmp_path, document))
