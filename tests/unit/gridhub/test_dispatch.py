"""The desk's listener shows every readable work order and reports, then passes over, the rest."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gridhub.dispatch import show_or_skip


def message(offset: int, value: bytes) -> dict[str, Any]:
    """A work order as the gateway hands it to a desk: where it sits, and its text."""
    return {"topic": "dispatch.water", "partition": 1, "offset": offset, "value": value.decode("utf-8", "replace")}


def show(order: dict[str, Any]) -> None:
    """As the command line shows an order: it reads the fields it prints."""
    work = order["work_order"]
    print(f"{work['event_id']} at {work['lat']:.5f}, within {order['limit_hours']:g} h")


def test_a_readable_work_order_is_shown() -> None:
    order = {"work_order": {"event_id": "E1", "lat": 31.97}, "limit_hours": 12}
    skipped: list[tuple[str, str]] = []
    assert show_or_skip(message(0, json.dumps(order).encode()), show, lambda *item: skipped.append(item))
    assert skipped == []


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (b"\xff not json", "JSONDecodeError"),
        (b"[1, 2]", "TypeError: a work order is a JSON object, not list"),
        (b'{"department": "water"}', "KeyError: 'work_order'"),
        (b'{"work_order": {"event_id": "E1", "lat": "north"}, "limit_hours": 12}', "ValueError"),
    ],
    ids=["not-json", "array", "no-order", "latitude-as-text"],
)
def test_an_unreadable_work_order_is_reported_with_its_place_and_passed_over(value: bytes, error: str) -> None:
    skipped: list[tuple[str, str]] = []
    assert not show_or_skip(message(5, value), show, lambda *item: skipped.append(item))
    ((where, reported),) = skipped
    assert where == "dispatch.water[1]@5"
    assert reported.startswith(error)
