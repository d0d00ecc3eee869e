"""The case flow file: the packaged flow, and flow files that must be refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.records import EVENT_STATUSES
from streams.case_flow import ROLES, FlowError, load_flow
from streams.case_machine import apply
from tests.support.cases import FLOW, FLOW_FILE, at_status, command, flow_from, refusal

# The packaged flow ---------------------------------------------------------------------------------------

EXPECTED_EDGES = {
    ("reported", "accepted"): ("accept", {"command_centre", "system", "grid_worker"}, False),
    ("reported", "rejected"): ("reject", {"command_centre"}, False),
    ("accepted", "dispatched"): ("dispatch", {"command_centre", "system"}, False),
    ("dispatched", "in_handling"): ("start", {"desk"}, False),
    ("dispatched", "returned"): ("decline", {"desk"}, False),
    ("returned", "dispatched"): ("redispatch", {"command_centre", "system"}, False),
    ("returned", "in_handling"): ("restart", {"desk"}, False),
    ("returned", "rejected"): ("reject", {"command_centre"}, False),
    ("in_handling", "handled"): ("handle", {"desk"}, True),
    ("handled", "verified"): ("verify", {"grid_worker"}, True),
    ("handled", "returned"): ("rework", {"grid_worker", "command_centre"}, False),
    ("verified", "closed"): ("close", {"command_centre", "system"}, False),
    ("dispatched", "extended"): ("extend", {"command_centre"}, False),
    ("in_handling", "extended"): ("extend", {"command_centre"}, False),
    ("extended", "in_handling"): ("resume", {"desk"}, False),
    ("extended", "handled"): ("handle", {"desk"}, True),
    **{
        (source, "cancelled"): ("cancel", {"command_centre"}, False)
        for source in ("reported", "accepted", "dispatched", "returned", "in_handling", "extended", "parked")
    },
    **{
        (source, "parked"): ("park", {"command_centre"}, False)
        for source in ("dispatched", "in_handling", "extended", "returned")
    },
    ("parked", "in_handling"): ("unpark", {"command_centre"}, False),
    ("parked", "dispatched"): ("unpark", {"command_centre"}, False),
}


def test_packaged_flow_has_exactly_the_agreed_edges() -> None:
    actual = {pair: (e.action, set(e.roles), e.photo_required) for pair, e in FLOW.edges.items()}
    assert actual == EXPECTED_EDGES
    assert all((e.source, e.target) == pair for pair, e in FLOW.edges.items())


def test_packaged_flow_speaks_the_canonical_event_statuses_and_roles() -> None:
    assert set(FLOW.statuses) == set(EVENT_STATUSES)
    assert set(FLOW.roles) == set(ROLES)
    assert FLOW.terminals == {"closed", "rejected", "cancelled"}
    assert FLOW.terminal("closed") and FLOW.terminal("rejected") and not FLOW.terminal("handled")


def test_default_path_is_the_packaged_file() -> None:
    assert load_flow() == load_flow(FLOW_FILE) == FLOW


def test_allowed_from_keeps_file_order_and_terminals_have_none() -> None:
    assert [e.target for e in FLOW.allowed_from("returned")] == [
        "dispatched",
        "in_handling",
        "rejected",
        "cancelled",
        "parked",
    ]
    assert FLOW.allowed_from("closed") == [] and FLOW.allowed_from("rejected") == []


# Broken flow files --------------------------------------------------------------------------------------


def packaged() -> dict[str, Any]:
    return yaml.safe_load(FLOW_FILE.read_text(encoding="utf-8"))


def edge(source: str, target: str, roles: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    return {"from": source, "to": target, "action": "move", "roles": roles or ["command_centre"], **kw}


def with_transitions(*extra: dict[str, Any]) -> dict[str, Any]:
    document = packaged()
    document["transitions"].extend(extra)
    return document


def without_status(status: str) -> dict[str, Any]:
    document = packaged()
    document["statuses"].pop(status)
    return document


def unreachable_verified() -> dict[str, Any]:
    document = packaged()
    document["transitions"] = [t for t in document["transitions"] if t["to"] != "verified"]
    document["transitions"].append(edge("handled", "closed"))
    return document


def dead_end() -> dict[str, Any]:
    document = packaged()
    document["transitions"] = [t for t in document["transitions"] if t["from"] != "verified"]
    return document


def mutated(key: str, value: Any) -> dict[str, Any]:
    document = packaged()
    document[key] = value
    return document


def no_handle_action() -> dict[str, Any]:
    """The packaged flow with its handling edges renamed: verification would bar the actors of nothing."""
    document = packaged()
    for transition in document["transitions"]:
        if transition["action"] == "handle":
            transition["action"] = "finish"
    return document


def first_edge(**changes: Any) -> dict[str, Any]:
    document = packaged()
    document["transitions"][0] = {**document["transitions"][0], **changes}
    return document


BROKEN: dict[str, tuple[Any, str]] = {
    "edge to unknown status": (with_transitions(edge("handled", "fixed")), "unknown status 'fixed'"),
    "status not canonical": (mutated("statuses", [*EVENT_STATUSES, "archived"]), "unknown status 'archived'"),
    "terminal not declared": (mutated("terminal", ["closed", "archived"]), "unknown status 'archived'"),
    "edge names unknown role": (with_transitions(edge("handled", "closed", ["mayor"])), "unknown role 'mayor'"),
    "declared role unknown": (mutated("roles", [*ROLES, "mayor"]), "unknown role 'mayor'"),
    "duplicate edge": (with_transitions(edge("reported", "accepted")), "duplicate edge"),
    "terminal with outgoing edge": (with_transitions(edge("closed", "reported")), "terminal status closed"),
    "status with no way out": (dead_end(), "status verified is not terminal but no edge leaves it"),
    "unreachable status": (unreachable_verified(), "no case can reach verified"),
    "reported missing": (without_status("reported"), "'reported' must be declared"),
    "no terminal": (mutated("terminal", []), "no terminal status"),
    "section missing": ({k: v for k, v in packaged().items() if k != "roles"}, "sections"),
    "not a mapping": (["reported"], "sections"),
    "photo not boolean": (first_edge(photo="sometimes"), "photo must be true or false"),
    "edge without roles": (first_edge(roles=[]), "at least one role"),
    "edge without action": ({**packaged(), "transitions": [{"from": "reported", "to": "accepted"}]}, "lacks action"),
    "role listed twice": (mutated("roles", ["desk", "desk"]), "more than once"),
    "not_by names an action a case does not remember": (first_edge(not_by=["verify"]), "not_by must list actions"),
    "not_by not a list": (first_edge(not_by="handle"), "not_by must list actions"),
    "not_by an action no edge takes": (no_handle_action(), "no transition has action handle"),
}


@pytest.mark.parametrize(("document", "message"), BROKEN.values(), ids=BROKEN.keys())
def test_broken_flow_files_raise_flow_error_naming_the_problem(document: Any, message: str, tmp_path: Path) -> None:
    with pytest.raises(FlowError, match=message.replace("(", r"\(")):
        flow_from(document, tmp_path)


def test_unreadable_and_malformed_files_raise_flow_error(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match="cannot read"):
        load_flow(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("statuses: [reported\n", encoding="utf-8")
    with pytest.raises(FlowError, match="cannot read"):
        load_flow(bad)


def test_a_town_can_change_the_flow_as_data(tmp_path: Path) -> None:
    """Letting the desk verify and dropping the photo there is a YAML edit, not a release."""
    document = packaged()
    for transition in document["transitions"]:
        if transition["to"] == "verified":
            transition.update(roles=["grid_worker", "desk"], photo=False)
    flow = flow_from(document, tmp_path)
    case = at_status("handled")
    moved, _ = apply(flow, case, command(case, "verified", "desk", actor="desk-2"))  # not desk-1, who handled it
    assert moved.status == "verified"
    assert refusal(case, command(case, "verified", "desk")).code == "role_not_allowed"  # the packaged flow still


def test_the_packaged_flow_keeps_the_hands_that_handled_a_case_from_verifying_it() -> None:
    """巡办分离 is data on the verify edge, and only there."""
    flow = load_flow()
    barred = {(edge.source, edge.target): edge.not_by for edge in flow.edges.values() if edge.not_by}
    assert barred == {("handled", "verified"): frozenset({"handle"})}
