"""A valid report and update as a phone posts them, for tests of what the gateway keeps and refuses."""

from __future__ import annotations

from typing import Any

REFERENCE = "sha256:" + "ab" * 32
REPORT: dict[str, Any] = {
    "report_id": "R-1",
    "category": "0102",
    "description": "路边暴露垃圾",
    "lat": 31.99,
    "lon": 119.87,
    "reported_at": "2026-11-25T09:15:00+08:00",
    "reporter_id": "GW017",
    "photos": [REFERENCE],
}
UPDATE: dict[str, Any] = {
    "update_id": "U-1",
    "event_id": "R-1",
    "status": "in_handling",
    "at": "2026-11-25T10:40:00+08:00",
    "actor": "desk-sanitation",
}


def gateway_role(actor: str) -> str:
    """The role the gateway stamps on an update of this test actor, as its token would give it.

    Tests of the stream and the case view build the records the gateway publishes, which always
    carry the role of the caller's token: a worker's phone (GW...), a desk (desk-...), else the centre.
    """
    if actor.upper().startswith("GW"):
        return "grid_worker"
    return "desk" if actor.startswith("desk-") else "command_centre"
