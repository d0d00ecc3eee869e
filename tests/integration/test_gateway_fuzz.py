"""The real patrol gateway under fuzzed and hostile input: every answer is a 202 or a 4xx JSON error, never a 5xx.

Hypothesis sends a few thousand generated requests (JSON of any shape and depth, mutated valid
records, wrong types, huge numbers, lone surrogates, random bytes, random content types,
multipart forms with random photo bytes) to the gateway of a running hub. Then each defect
found on the old gateway is pinned by its own regression test.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.topics import RAW_PATROL
from tests.support import hub as support
from tests.support.files import picture, png_claiming
from tests.support.hub import Hub, hub_settings, unique, wait_until

FUZZ_EXAMPLES = 2500
PHOTO = picture("JPEG", (180, 60, 20), (48, 36))


def report(report_id: str, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "category": "0102",
        "description": "路边暴露垃圾",
        "reported_at": "2026-11-25T09:15:00+08:00",
        "reporter_id": "GW017",
        **changes,
    }
    return support.report(report_id, **fields)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """One keep-alive connection to the gateway, opened again when the gateway closes it between requests."""

    def __init__(self, url: str, token: str) -> None:
        self.token = token
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self._connection: http.client.HTTPConnection | None = None

    def send(self, method: str, path: str, body: bytes = b"", content_type: str = "application/json") -> Answer:
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                headers = {"Content-Type": content_type, "Authorization": f"Bearer {self.token}"}
                self._connection.request(method, path, body, headers)
                response = self._connection.getresponse()
                answer = Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
            except (http.client.RemoteDisconnected, ConnectionError):
                self.close()  # the keep-alive connection was closed while idle: once more on a new one
                if attempt == 2:
                    raise
                continue
            if response.will_close:
                self.close()
            return answer
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@pytest.fixture(scope="module")
def client(hub: Hub) -> Iterator[Client]:
    connection = Client(hub.stack.url("patrol"), hub.tokens.phones["GW017"])
    yield connection
    connection.close()


def assert_answer_is_well_formed(answer: Answer) -> None:
    """202 with the acknowledgement, or 4xx with exactly ``{"error": code, "reason": sentence}``."""
    assert answer.status < 500, (answer.status, answer.body[:300])
    assert answer.headers.get("content-type", "").startswith("application/json"), answer.headers
    body = answer.json()
    if answer.status >= 400:
        assert set(body) == {"error", "reason"}, body
        assert isinstance(body["error"], str) and body["error"]
        assert isinstance(body["reason"], str) and body["reason"]
        assert len(body["reason"]) < 2000
    else:
        assert answer.status in (200, 202) and body["status"] in ("accepted", "ok"), body


# --- what hypothesis sends ------------------------------------------------------------------------------

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats()  # NaN and infinities included: json.dumps writes them as NaN and Infinity
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
raw_tokens = st.sampled_from(
    [
        "9" * 5000,
        "-" + "1" * 60,
        "0." + "3" * 800,
        "1e999",
        "-1e400",
        "NaN",
        "Infinity",
        '"\\ud800"',
        '"\\udfff tail"',
        '"\\ud83d\\ude00 ok"',
        '"\\u0000"',
        '"2026-11-25T09:15:00+08:00"',
        "1764034800",
        '"sha256:abc"',
        "[]",
        "{}",
        '"' + "x" * 3000 + '"',
    ]
) | st.integers(min_value=1, max_value=120_000).map(lambda depth: "[" * depth + "]" * depth)

FIELDS = {
    "/v1/reports": ["report_id", "category", "description", "lat", "lon", "reported_at", "reporter_id", "photos"],
    "/v1/updates": ["update_id", "event_id", "status", "at", "actor", "note", "photo_ref", "due_at"],
    "/v1/tracks": ["worker_id", "points"],
}
JSON_PARTS = {"/v1/reports": "report", "/v1/updates": "update", "/v1/tracks": "track"}


def valid_record(path: str, number: int) -> dict[str, Any]:
    """A record the endpoint accepts (a report at its own spot, an update of an unknown case, a track)."""
    if path == "/v1/reports":  # at a spot of its own, from its number: what hypothesis draws must not vary
        spot = {"lat": round(31.96 + number % 50 * 0.001, 6), "lon": round(119.83 + number // 50 % 50 * 0.001, 6)}
        return report(f"FUZZ-{number}", photos=["sha256:" + "cd" * 32], **spot)
    if path == "/v1/updates":
        return {"update_id": f"FU-{number}", "event_id": "FUZZ-0", "status": "in_handling", "at": "2026-11-25T10:00:00"}
    return {
        "worker_id": "GW017",  # the phone of the fuzzing client (its token), so valid tracks pass
        "points": [{"at": "2026-11-25T08:00:00+08:00", "lat": 31.99, "lon": 119.87}],
    }


@st.composite
def mutated_records(draw: st.DrawFn, path: str) -> bytes:
    """A valid record with fields dropped, set to any JSON value or to a raw token, and unknown fields added."""
    record = valid_record(path, draw(st.integers(min_value=0, max_value=10**6)))
    for name in draw(st.sets(st.sampled_from(FIELDS[path]), max_size=2)):
        record.pop(name, None)
    record.update(draw(st.dictionaries(st.sampled_from([*FIELDS[path], "extra"]), json_values, max_size=3)))
    text = json.dumps(record, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):
        field = draw(st.sampled_from(FIELDS[path]))
        text = text[:-1] + f', "{field}": {draw(raw_tokens)}' + "}"  # a later duplicate key wins
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        text = text[: draw(st.integers(min_value=0, max_value=len(text)))]  # cut off mid-upload
    return text.encode("utf-8", "surrogatepass")


photo_bytes = (
    st.sampled_from([PHOTO, picture("PNG"), png_claiming(30_000, 30_000), png_claiming(9_000, 9_000), b""])
    | st.binary(max_size=600)
    | st.integers(min_value=0, max_value=len(PHOTO)).map(lambda cut: PHOTO[:cut])
)


@st.composite
def forms(draw: st.DrawFn, path: str) -> tuple[bytes, str]:
    """A multipart form as a phone sends it (the record, then photos of any bytes), or one broken in its structure."""
    record = json.dumps(valid_record(path, draw(st.integers(min_value=0, max_value=10**6)))).encode()
    parts = [(JSON_PARTS[path], draw(st.just(record) | mutated_records(path) | st.binary(max_size=200)))]
    parts += [("photo", photo) for photo in draw(st.lists(photo_bytes, max_size=6))]
    boundary = "b0undary"
    if draw(st.sampled_from([False, False, False, True])):  # broken: odd names, order, boundaries
        strays = draw(st.lists(st.tuples(st.sampled_from(["note", "report", ""]), photo_bytes), max_size=2))
        parts = draw(st.permutations([*parts, *strays]))
        boundary = draw(st.sampled_from(["b0undary", "x" * 70, "with space", "-"]))
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + data + b"\r\n"
        for name, data in parts
    )
    body += f"--{boundary}--\r\n".encode() if draw(st.sampled_from([True] * 7 + [False])) else b""
    declared = draw(st.sampled_from([boundary] * 7 + ["other", ""]))
    return body, f"multipart/form-data; boundary={declared}" if declared else "multipart/form-data"


content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/json; charset=utf-16",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "application/octet-stream",
        "",
    ]
) | st.from_regex(r"\A[a-z]{1,8}/[a-z0-9.+-]{1,12}(; charset=[a-z0-9-]{1,8})?\Z")


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes, str, str]:
    """(method, path, body, content type, family) of one fuzzed request."""
    path = draw(st.sampled_from(list(FIELDS)))
    family = draw(st.sampled_from(["json_any", "mutated", "tokens", "bytes", "content_type", "multipart", "photo_get"]))
    if family == "json_any":
        return "POST", path, json.dumps(draw(json_values)).encode("utf-8", "surrogatepass"), "application/json", family
    if family == "mutated":
        return "POST", path, draw(mutated_records(path)), "application/json", family
    if family == "tokens":
        return "POST", path, ('{"a": ' + draw(raw_tokens) + "}").encode(), "application/json", family
    if family == "bytes":
        return "POST", path, draw(st.binary(max_size=2000)), "application/json", family
    if family == "content_type":
        body = draw(mutated_records(path) | st.binary(max_size=300))
        return "POST", path, body, draw(content_types), family
    if family == "multipart":
        body, content_type = draw(forms(path))
        return "POST", path, body, content_type, family
    reference = urllib.parse.quote(draw(st.text(min_size=1, max_size=80)), safe="")
    return "GET", f"/v1/photos/{reference}", b"", "", family


def test_fuzzed_requests_get_a_202_or_a_4xx_json_error_and_never_a_5xx(hub: Hub, client: Client) -> None:
    log = hub.stack.log_dir / "patrol.log"
    log_before = log.stat().st_size if log.exists() else 0
    tally: Counter[tuple[str, int]] = Counter()
    started = time.monotonic()

    @settings(
        max_examples=FUZZ_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(requests())
    def fuzz(request: tuple[str, str, bytes, str, str]) -> None:
        method, path, body, content_type, family = request
        answer = client.send(method, path, body, content_type)
        tally[family, answer.status] += 1
        assert_answer_is_well_formed(answer)

    fuzz()
    elapsed = time.monotonic() - started
    total = sum(tally.values())
    print(f"\n{total} fuzzed requests in {elapsed:.1f}s: {dict(sorted(tally.items()))}")
    assert total >= 2000
    assert client.send("GET", "/healthz").status == 200
    assert {status for _, status in tally} >= {202, 400, 404, 413, 415, 422}
    grown = (log.stat().st_size if log.exists() else 0) - log_before
    assert grown < 200_000, f"the gateway wrote {grown} bytes of log during the fuzz"
    assert hub.stack.processes["patrol"].poll() is None


# --- regressions: each defect the old gateway had ------------------------------------------------------


def post_json(client: Client, path: str, body: bytes | dict[str, Any]) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    answer = client.send("POST", path, data)
    assert_answer_is_well_formed(answer)
    return answer.status, answer.json()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "too_deep"),
        (b'{"report_id": "R-digits", "lat": ' + b"7" * 5000 + b"}", 400, "bad_number"),
        (b'{"report_id": "R-nan", "lat": NaN}', 400, "bad_number"),
        (json.dumps(report("R-photos", photos=5)).encode(), 422, "invalid_photos"),
        (json.dumps(report("R-photo-string", photos="sha256:abc")).encode(), 422, "invalid_photos"),
        (json.dumps(report("R-surrogate", description="坏\ud800")).encode(), 422, "invalid_description"),
        (json.dumps(report("R-epoch", reported_at=123)).encode(), 422, "invalid_reported_at"),
        (json.dumps(report(7)).encode(), 422, "invalid_report_id"),  # type: ignore[arg-type]
        (json.dumps(report("R-lat", lat="31.99")).encode(), 422, "invalid_lat"),
    ],
    ids=["100000-deep", "5000-digits", "nan", "photos-5", "photos-string", "surrogate", "epoch", "id-number", "lat"],
)
def test_inputs_that_made_500s_or_wrong_records_are_refused(
    client: Client, body: bytes, status: int, code: str
) -> None:
    answer = post_json(client, "/v1/reports", body)
    assert (answer[0], answer[1]["error"]) == (status, code)


def test_a_report_nested_250_deep_is_refused_at_the_door_not_downstream(hub: Hub, client: Client) -> None:
    """It used to be answered 202, then rejected by the stream without its report id."""
    report_id = unique("R")
    nested = json.dumps(report(report_id))[:-1] + ', "device": ' + "[" * 250 + "]" * 250 + "}"
    status, answer = post_json(client, "/v1/reports", nested.encode())
    assert (status, answer["error"]) == (400, "too_deep")


def test_an_800_deep_body_is_answered_at_once_and_the_gateway_keeps_serving(hub: Hub, client: Client) -> None:
    """A 1.8 KB body nested 800 deep blocked the gateway (and /healthz) for 61 s and wrote 47 MB of log."""
    log = hub.stack.log_dir / "patrol.log"
    before = log.stat().st_size if log.exists() else 0
    body = b'{"description": ' + b"[" * 800 + b"]" * 800 + b"}"
    answers: list[int] = []

    def post_deep_bodies() -> None:
        deep = Client(hub.stack.url("patrol"), hub.tokens.phones["GW017"])
        answers.extend(deep.send("POST", "/v1/reports", body).status for _ in range(10))
        deep.close()

    posting = threading.Thread(target=post_deep_bodies)
    started = time.monotonic()
    posting.start()
    assert client.send("GET", "/healthz").status == 200
    posting.join(timeout=60)
    assert answers == [400] * 10
    assert time.monotonic() - started < 10
    assert (log.stat().st_size if log.exists() else 0) - before < 10_000


def test_fields_the_contract_does_not_know_never_reach_kafka(hub: Hub, client: Client) -> None:
    """1,000 reports with a 900 kB ignored field grew the broker by 1.8 GB."""
    report_id = unique("R")
    status, answer = post_json(client, "/v1/reports", report(report_id, padding="x" * 900_000, status="closed"))
    assert status == 202, answer
    row = wait_until(
        lambda: hub.sql(f"SELECT status, reporter_id FROM events WHERE event_id = '{report_id}'"), what="the report"
    )
    assert row == [["dispatched", "GW017"]]
    [message] = [m for m in hub.messages(RAW_PATROL) if m.json()["record_uid"] == answer["record_uid"]]
    assert len(message.value) < 2000
    payload = message.json()["payload"]
    assert "padding" not in payload and "status" not in payload
    assert payload["event_id"] == report_id


def test_a_refused_report_leaves_no_photo_on_disk(hub: Hub) -> None:
    """Photos were stored before the record was checked, so a refused report kept its pictures."""
    photo = picture("JPEG", (1, 2, 3), (40, 30))
    digest = hashlib.sha256(photo).hexdigest()
    for record in (report(unique("R"), category="9999"), report(unique("R"), reported_at=123)):
        status, answer = hub.post_form("/v1/reports", "report", record, [photo])
        assert status == 422, answer
    assert list(hub.settings.photo_store.rglob(f"{digest}.*")) == []

    status, answer = hub.post_form("/v1/reports", "report", report(unique("R")), [photo])
    assert status == 202 and answer["photos"] == [f"sha256:{digest}"]
    assert len(list(hub.settings.photo_store.rglob(f"{digest}.*"))) == 1


def test_a_decompression_bomb_is_refused_from_its_header(hub: Hub) -> None:
    """A PNG claiming 30,000 x 30,000 pixels made PIL raise DecompressionBombError: a 500."""
    for side in (30_000, 10_000, 9_000):  # past PIL's error, past PIL's warning, past the gateway's limit
        bomb = png_claiming(side, side)
        status, answer = hub.post_form("/v1/reports", "report", report(unique("R")), [bomb])
        assert (status, answer["error"]) == (413, "photo_too_many_pixels"), answer
        assert list(hub.settings.photo_store.rglob(f"{hashlib.sha256(bomb).hexdigest()}.*")) == []


def test_connections_beyond_the_cap_get_503_with_retry_after(hub: Hub, tmp_path: Path) -> None:
    """20,000 idle keep-alive connections exhausted the gateway's file descriptors; the cap comes from the settings."""
    from gridhub.services import build_patrol

    settings = hub_settings(
        tmp_path, http_max_connections=20, http_keepalive_s=60, tokens_path=hub.settings.tokens_file
    )
    gateway = build_patrol(settings, hub.stack.bootstrap)
    url = gateway.prepare()["url"]
    stop = threading.Event()
    serving = threading.Thread(target=gateway.run, args=(stop,), daemon=True)
    serving.start()
    clients = [Client(url, hub.tokens.phones["GW017"]) for _ in range(30)]
    try:
        answers = [connection.send("GET", "/healthz") for connection in clients]
        assert [answer.status for answer in answers] == [200] * 20 + [503] * 10
        assert answers[-1].headers["retry-after"] == "5"
        assert answers[-1].json()["error"] == "too_many_connections"
        status, answer = post_json(clients[0], "/v1/reports", report(unique("R")))
        assert status == 202, answer  # the connections within the cap are served as before
    finally:
        for connection in clients:
            connection.close()
        stop.set()
        serving.join(timeout=60)
        gateway.close()
