"""Cases for tests: the packaged flow, a fresh case near Menghe's centre, and commands that walk it along."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from foundation.packaged import PACKAGED_DATA
from streams.case_flow import CaseFlow, load_flow
from streams.case_machine import IllegalTransition, apply, open_case
from streams.case_state import Case, Command, Transition

DATA = PACKAGED_DATA
FLOW_FILE = DATA / "case_flow.yaml"
CST = ZoneInfo("Asia/Shanghai")
T0 = datetime(2024, 5, 6, 9, 0, tzinfo=CST)
LAT, LON = 31.9405, 119.8867  # Menghe town centre, WGS84
PHOTO = "photo://p-1.jpg"
FLOW = load_flow()


def fresh(case_id: str = "C-1", *, limit_hours: float = 24, **overrides: Any) -> Case:
    fields: dict[str, Any] = {
        "case_id": case_id,
        "report_id": f"R-{case_id}",
        "category": "0102",
        "department": "sanitation",
        "squad": None,
        "grid_code": "320411101001001",
        "lat": LAT,
        "lon": LON,
        "reporter_id": "gw-7",
        "reported_at": T0,
        "limit_hours": limit_hours,
    }
    fields.update(overrides)
    return open_case(**fields)[0]


def command(case: Case, status: str, role: str, *, minutes: float = 10, photo: str | None = None, **kw: Any) -> Command:
    """A command dated ``minutes`` after the case's last change."""
    return Command(
        case_id=kw.pop("case_id", case.case_id),
        status=status,
        actor=kw.pop("actor", f"{role}-1"),
        actor_role=role,  # type: ignore[arg-type]
        at=kw.pop("at", case.updated_at + timedelta(minutes=minutes)),
        photo_ref=photo,
        **kw,
    )


def walk(case: Case, *steps: tuple[str, str, str | None]) -> tuple[Case, list[Transition]]:
    """Apply (status, role, photo) steps in order, ten minutes apart."""
    log = []
    for status, role, photo in steps:
        case, transition = apply(FLOW, case, command(case, status, role, photo=photo))
        log.append(transition)
    return case, log


def refusal(case: Case, cmd: Command, flow: CaseFlow = FLOW) -> IllegalTransition:
    with pytest.raises(IllegalTransition) as info:
        apply(flow, case, cmd)
    return info.value


TO_HANDLED = (
    ("accepted", "command_centre", None),
    ("dispatched", "command_centre", None),
    ("in_handling", "desk", None),
    ("handled", "desk", PHOTO),
)
TO_CLOSED = (*TO_HANDLED, ("verified", "grid_worker", PHOTO), ("closed", "command_centre", None))


def at_status(status: str) -> Case:
    """A case brought to ``status`` along the shortest legal path."""
    paths = {
        "reported": (),
        "accepted": TO_HANDLED[:1],
        "dispatched": TO_HANDLED[:2],
        "in_handling": TO_HANDLED[:3],
        "handled": TO_HANDLED,
        "verified": TO_CLOSED[:5],
        "closed": TO_CLOSED,
        "returned": (*TO_HANDLED[:2], ("returned", "desk", None)),
        "rejected": (("rejected", "command_centre", None),),
        "cancelled": (("cancelled", "command_centre", None),),
    }
    case, _ = walk(fresh(), *paths[status])
    assert case.status == status
    return case


def flow_from(document: Any, tmp_path: Path) -> CaseFlow:
    """Load a flow file written from ``document`` (a YAML-able value) in ``tmp_path``."""
    path = tmp_path / f"flow-{abs(hash(json.dumps(document, sort_keys=True, default=str)))}.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return load_flow(path)
