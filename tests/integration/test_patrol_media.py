"""Photos uploaded with reports and updates, and patrol tracks, through the real gateway."""

from __future__ import annotations

import hashlib
import urllib.request
import uuid

from tests.support import hub as support
from tests.support.files import picture
from tests.support.hub import Hub, unique, wait_until


def jpeg(colour: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (64, 48)) -> bytes:
    return picture("JPEG", colour, size)


def report(report_id: str) -> dict[str, object]:
    return support.report(
        report_id, category="0103", description="渣土堆积", reported_at="2026-11-25T10:15:00+08:00", reporter_id="GW031"
    )


def test_report_with_photos_stores_them_by_content_and_carries_the_references(hub: Hub) -> None:
    event_id = unique("R")
    photo = jpeg()
    status, answer = hub.post_form("/v1/reports", "report", report(event_id), [photo, photo])
    assert status == 202, answer
    expected = f"sha256:{hashlib.sha256(photo).hexdigest()}"
    assert answer["photos"] == [expected, expected]
    stored = list((hub.settings.photo_store).rglob(f"{expected[7:]}.jpg"))
    assert len(stored) == 1 and stored[0].read_bytes() == photo
    refs = wait_until(
        lambda: hub.sql(f"SELECT photo_refs FROM events WHERE event_id = '{event_id}'"), what="the event row"
    )
    assert refs == [[[expected, expected]]]


def test_photo_is_served_back_by_reference(hub: Hub) -> None:
    photo = jpeg((10, 120, 10))
    reference = hub.post_form("/v1/reports", "report", report(unique("R")), [photo])[1]["photos"][0]
    request = urllib.request.Request(
        f"{hub.stack.url('patrol')}/v1/photos/{reference}", headers={"Authorization": f"Bearer {hub.tokens.commander}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.read() == photo
    assert hub.post("/v1/reports", b"{}")[0] == 422


def test_bad_photos_are_refused_with_reasons(hub: Hub) -> None:
    status, answer = hub.post_form("/v1/reports", "report", report(unique("R")), [b"%PDF-1.4 not a picture"])
    assert (status, answer["error"]) == (415, "not_an_image")

    huge = jpeg(size=(4000, 4000)) + b"\0" * hub.settings.max_photo_bytes
    status, answer = hub.post_form("/v1/reports", "report", report(unique("R")), [huge])
    assert (status, answer["error"]) == (413, "photo_too_large")

    status, answer = hub.post_form("/v1/reports", "note", report(unique("R")))
    assert (status, answer["error"]) == (400, "bad_multipart")


def test_update_with_a_photo_carries_its_reference(hub: Hub) -> None:
    event_id = unique("R")
    assert hub.post("/v1/reports", report(event_id))[0] == 202
    photo = jpeg((0, 0, 200))
    started = {
        "event_id": event_id,
        "status": "in_handling",
        "at": "2026-11-25T10:40:00+08:00",
        "actor": "desk-sanitation",
    }
    assert hub.post("/v1/updates", started)[0] == 202
    update = {"event_id": event_id, "status": "handled", "at": "2026-11-25T11:00:00+08:00", "actor": "desk-sanitation"}
    status, answer = hub.post_form("/v1/updates", "update", update, [photo])
    assert status == 202, answer
    wait_until(
        lambda: (
            hub.sql(f"SELECT photo_ref FROM event_updates WHERE event_id = '{event_id}' AND status = 'handled'")
            == [[answer["photos"][0]]]
        ),
        what="the update row with its photo",
    )


def test_patrol_track_batch_lands_point_by_point_and_a_bad_batch_is_refused_whole(hub: Hub) -> None:
    worker = f"GW-{uuid.uuid4().hex[:6]}"
    points = [{"at": f"2026-11-25T08:{minute:02d}:00+08:00", "lat": 31.99, "lon": 119.87} for minute in range(30)]
    status, answer = hub.post("/v1/tracks", {"worker_id": worker, "points": points})
    assert (status, answer["points"]) == (202, 30)
    wait_until(
        lambda: hub.scalar(f"SELECT count(*) FROM patrol_tracks WHERE worker_id = '{worker}'") == 30,
        what="30 track points",
    )
    cells = hub.sql(f"SELECT DISTINCT grid_code FROM patrol_tracks WHERE worker_id = '{worker}'")
    assert len(cells) == 1 and cells[0][0] is not None and cells[0][0].startswith("320411101")
    bad = [*points[:3], {"at": "2026-11-25T09:00:00+08:00", "lat": 95.0, "lon": 119.87}]
    status, answer = hub.post("/v1/tracks", {"worker_id": worker + "x", "points": bad})
    assert (status, answer["error"]) == (422, "invalid_lat")
    assert answer["reason"].startswith("point 3:")
    status, answer = hub.post("/v1/tracks", {"worker_id": worker, "points": []})
    assert (status, answer["error"]) == (422, "invalid_points")
    hub.settled()  # a point of the refused batch, had one been sent, would be in the warehouse now
    assert hub.scalar(f"SELECT count(*) FROM patrol_tracks WHERE worker_id = '{worker}x'") == 0
