"""Category routing rules: the packaged table, lookups, and rule files the worker must refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from foundation.errors import ConfigurationError
from foundation.packaged import CATEGORIES
from streams.routing import Category, RoutingError, RoutingRules, load_rules

RULES_FILE = CATEGORIES


@pytest.fixture(scope="module")
def rules() -> RoutingRules:
    return load_rules(RULES_FILE)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# The packaged table ------------------------------------------------------------------------------------


def test_packaged_rules_load_with_every_category_on_a_declared_department(rules: RoutingRules) -> None:
    assert len(rules.categories) >= 20
    assert {item.department for item in rules.categories.values()} <= set(rules.departments)


def test_packaged_category_codes_are_four_digit_strings(rules: RoutingRules) -> None:
    """Codes like 0101 must survive YAML as text, not be read as numbers."""
    assert all(len(code) == 4 and code.isdigit() for code in rules.categories)
    assert all(item.code == code for code, item in rules.categories.items())


def test_resolve_by_code(rules: RoutingRules) -> None:
    assert rules.resolve("0509") == Category(
        code="0509", name="机动车乱停放", name_en="illegal parking", department="police", limit_hours=4.0
    )


def test_resolve_by_chinese_name(rules: RoutingRules) -> None:
    found = rules.resolve("河道违法排污")
    assert found is not None
    assert (found.code, found.department, found.limit_hours) == ("0602", "environment", 24.0)


def test_resolve_by_english_name(rules: RoutingRules) -> None:
    found = rules.resolve("exposed rubbish")
    assert found is not None
    assert (found.code, found.department) == ("0102", "sanitation")


def test_code_chinese_and_english_names_resolve_to_the_same_category(rules: RoutingRules) -> None:
    for item in rules.categories.values():
        assert rules.resolve(item.code) is rules.resolve(item.name) is rules.resolve(item.name_en) is item


def test_surrounding_whitespace_is_ignored_when_resolving(rules: RoutingRules) -> None:
    assert rules.resolve("  0102\n") is rules.resolve("\t暴露垃圾 ") is rules.categories["0102"]


@pytest.mark.parametrize("unknown", ["9999", "", "垃圾", "0102 0103", "102"])
def test_unknown_category_resolves_to_none(rules: RoutingRules, unknown: str) -> None:
    assert rules.resolve(unknown) is None


def test_known_codes_lists_every_code_sorted(rules: RoutingRules) -> None:
    listed = rules.known_codes().split(", ")
    assert listed == sorted(rules.categories)
    assert "0102" in listed


# Dispatch by squad (一支队伍管执法) ----------------------------------------------------------------------


def test_enforcement_cases_go_to_the_squad_desk_of_their_area(rules: RoutingRules) -> None:
    assert rules.dispatch_by_squad == frozenset({"enforcement"})
    assert rules.desk_of("enforcement", "wansui") == "enforcement.wansui"
    assert rules.desk_of("enforcement", None) == "enforcement", "no squad: the bureau's own desk"
    assert rules.desk_of("sanitation", "wansui") == "sanitation", "other departments keep one desk"


def test_desk_units_are_every_department_and_the_squads_of_the_bureau(rules: RoutingRules) -> None:
    units = rules.desk_units()
    assert set(units) == {*rules.departments, "enforcement.wansui", "enforcement.mengcheng", "enforcement.xiaohe"}
    assert len(units) == len(set(units))


def test_a_table_without_dispatch_by_squad_dispatches_by_department(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, "departments: {a: A}\ncategories:\n  - {code: '01', name: x, department: a}\n"))
    assert (rules.dispatch_by_squad, rules.desk_units(), rules.desk_of("a", "wansui")) == (frozenset(), ("a",), "a")


# Defaults ----------------------------------------------------------------------------------------------


def test_english_name_defaults_to_the_chinese_name_and_limit_to_24_hours(tmp_path: Path) -> None:
    rules = load_rules(
        write(tmp_path, "departments: {a: A}\ncategories:\n  - {code: '01', name: 垃圾, department: a}\n")
    )
    assert rules.categories["01"] == Category(code="01", name="垃圾", name_en="垃圾", department="a", limit_hours=24.0)


def test_a_table_with_no_categories_is_refused_since_every_event_would_be_rejected(tmp_path: Path) -> None:
    with pytest.raises(RoutingError, match="'categories' must be a list"):
        load_rules(write(tmp_path, "departments: {a: A}\ncategories: []\n"))


# Broken rule files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "must have 'departments' and 'categories' sections"),
        ("categories: []\n", "must have 'departments' and 'categories' sections"),
        ("departments: {a: A}\n", "must have 'departments' and 'categories' sections"),
        ("- just\n- a list\n", "must have 'departments' and 'categories' sections"),
        (
            "departments: {a: A}\ncategories:\n  - {code: '01', name: x, department: b}\n",
            "category 01 names unknown department b",
        ),
        (
            "departments: {a: A}\ncategories:\n  - {code: '01', name: x, department: a}\n"
            "  - {code: '01', name: y, department: a}\n",
            "category code 01 appears twice",
        ),
        ("departments: {a: A}\ncategories:\n  - {name: x, department: a}\n", "is incomplete"),
        ("departments: {a: A}\ncategories:\n  - {code: '01', department: a}\n", "is incomplete"),
        ("departments: {a: A}\ncategories:\n  - {code: '01', name: x}\n", "is incomplete"),
        (
            "departments: {a: A}\ncategories:\n  - {code: '01', name: x, department: a, limit_hours: soon}\n",
            "is incomplete .*could not convert string to float: 'soon'",
        ),
        ("departments: {a: A}\ncategories: [just-a-word]\n", "category entry 'just-a-word' is incomplete"),
        (
            "departments: {a: A}\ndispatch_by_squad: [b]\ncategories:\n  - {code: '01', name: x, department: a}\n",
            "dispatch_by_squad names unknown department b",
        ),
        (
            "departments: {a: A}\ndispatch_by_squad: a\ncategories:\n  - {code: '01', name: x, department: a}\n",
            "'dispatch_by_squad' must be a list",
        ),
        ("departments: [unclosed\n", "is not valid YAML"),
        ("departments: {a: A}\n\tcategories: []\n", "is not valid YAML"),
    ],
)
def test_broken_rule_files_are_refused_with_the_problem(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RoutingError, match=fragment) as excinfo:
        load_rules(path)
    assert str(path) in str(excinfo.value)


def test_missing_rules_file_is_refused_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(RoutingError, match="cannot read routing rules") as excinfo:
        load_rules(path)
    assert str(path) in str(excinfo.value)


def test_a_broken_rules_file_stops_the_hub_as_a_configuration_error() -> None:
    assert issubclass(RoutingError, ConfigurationError)


@pytest.mark.parametrize(
    "text",
    [
        "departments: [a, b]\ncategories: []\n",
        "departments:\ncategories: []\n",
        "departments: {a: A}\ncategories:\n",
        "departments: {a: A}\ncategories: 5\n",
    ],
)
def test_sections_of_the_wrong_shape_are_refused_as_routing_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(RoutingError):
        load_rules(write(tmp_path, text))
