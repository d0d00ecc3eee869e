"""REST pulls page through a real local HTTP server in every paging style, retry, and fail in one line."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from kafka.future import Future

from connectors.base import SourceUnavailable
from connectors.exports import BadLine, ExportPublisher, IngestReport
from connectors.exports.columns import ColumnMap, DepartmentMapping
from connectors.exports.errors import ExportRejected, MappingsError
from connectors.exports.rest import RestPoller, RestPull, RestSource, load_rest_sources, rest_session
from foundation.errors import ConfigurationError, InputRejected, RetryableError
from foundation.packaged import EXPORT_MAPPINGS, REST_SOURCES_EXAMPLE
from schemas.batches import RecordBatch, decode_batch
from schemas.rejects import Reject

PARCELS = [{"宗地代码": f"P{number:03d}", "坐落位置": f"孟河镇{number}号"} for number in range(23)]
Answer = tuple[int, Any]


@dataclass
class Api:
    """A department platform: a handler per path, and every request it received."""

    url: str
    routes: dict[str, Callable[[dict[str, str], dict[str, str]], Answer]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)


@pytest.fixture
def api() -> Iterator[Api]:
    state = Api(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parsed = urlparse(self.path)
            params = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
            headers = dict(self.headers.items())
            state.requests.append((parsed.path, params, headers))
            status, body = state.routes[parsed.path](params, headers)
            data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def source(api: Api, path: str, paging: dict[str, Any], **extra: Any) -> RestSource:
    return RestSource.model_validate(
        {
            "name": "land-api",
            "source": "land-resources",
            "url": f"{api.url}{path}",
            "entity": "place",
            "records": "data.list",
            "paging": paging,
            "backoff_seconds": 0.01,
            **extra,
        }
    )


def land_columns() -> ColumnMap:
    return ColumnMap("place", DepartmentMapping(columns={"宗地代码": "place_id", "坐落位置": "address"}))


def rows_of(rest: RestSource, columns: ColumnMap | None = None) -> list[Any]:
    with rest_session(rest) as session:
        return list(RestPull(rest, columns or land_columns(), session).rows)


def wrapped(records: list[Any], **extra: Any) -> dict[str, Any]:
    return {"code": 0, "data": {"list": records, **extra}}


def test_page_style_pulls_every_page_until_an_empty_one(api: Api) -> None:
    def pages(params: dict[str, str], _: dict[str, str]) -> Answer:
        page, size = int(params["pageNum"]), int(params["pageSize"])
        return 200, wrapped(PARCELS[(page - 1) * size : page * size])

    api.routes["/parcels"] = pages
    rest = source(api, "/parcels", {"style": "page", "page_param": "pageNum", "size_param": "pageSize", "size": 10})
    assert rows_of(rest) == PARCELS
    assert [params["pageNum"] for _, params, _ in api.requests] == ["1", "2", "3", "4"]


def test_offset_style_advances_by_what_came_back_when_the_server_caps_the_limit(api: Api) -> None:
    def capped(params: dict[str, str], _: dict[str, str]) -> Answer:
        offset, limit = int(params["offset"]), min(int(params["limit"]), 5)
        return 200, wrapped(PARCELS[offset : offset + limit])

    api.routes["/parcels"] = capped
    assert rows_of(source(api, "/parcels", {"style": "offset", "size": 100})) == PARCELS
    assert [params["offset"] for _, params, _ in api.requests] == ["0", "5", "10", "15", "20", "23"]


def test_next_link_style_follows_relative_links_and_ends_without_one(api: Api) -> None:
    def linked(params: dict[str, str], _: dict[str, str]) -> Answer:
        start = int(params.get("from", 0))
        following = f"/parcels?from={start + 10}" if start + 10 < len(PARCELS) else None
        return 200, {"data": {"list": PARCELS[start : start + 10]}, "links": {"next": following}}

    api.routes["/parcels"] = linked
    rest = source(api, "/parcels", {"style": "next", "next_field": "links.next"}, params={"status": "active"})
    assert rows_of(rest) == PARCELS
    assert [params for _, params, _ in api.requests] == [{"status": "active"}, {"from": "10"}, {"from": "20"}]


def test_cursor_style_sends_the_cursor_back_as_a_parameter(api: Api) -> None:
    def cursor(params: dict[str, str], _: dict[str, str]) -> Answer:
        start = int(params.get("cursor", 0))
        more = start + 10 < len(PARCELS)
        return 200, {"items": PARCELS[start : start + 10], "next_cursor": str(start + 10) if more else ""}

    api.routes["/parcels"] = cursor
    rest = source(
        api, "/parcels", {"style": "next", "next_field": "next_cursor", "cursor_param": "cursor"}, records="items"
    )
    assert rows_of(rest) == PARCELS


def test_a_bare_list_answer_is_the_record_list(api: Api) -> None:
    api.routes["/all"] = lambda params, _: (200, PARCELS if params["page"] == "1" else [])
    assert rows_of(source(api, "/all", {"style": "page", "size": 50}, records="")) == PARCELS


def test_headers_take_tokens_from_the_environment(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    api.routes["/secure"] = lambda params, headers: (
        (200, wrapped(PARCELS[:1] if params["page"] == "1" else []))
        if headers.get("Authorization") == "Bearer s3cret"
        else (401, {"error": "unauthorised"})
    )
    rest = source(api, "/secure", {"style": "page"}, headers={"Authorization": "Bearer ${LAND_TOKEN}"})
    monkeypatch.setenv("LAND_TOKEN", "s3cret")
    assert rows_of(rest) == PARCELS[:1]

    monkeypatch.setenv("LAND_TOKEN", "expired")
    with pytest.raises(ConfigurationError, match=r"HTTP 401 Unauthorized; check the credentials"):
        rows_of(rest)
    monkeypatch.delenv("LAND_TOKEN")
    with pytest.raises(ConfigurationError, match="needs environment variable LAND_TOKEN, which is unset"):
        rows_of(rest)


def test_server_errors_are_retried_with_backoff_through_the_adapter(api: Api) -> None:
    calls = iter([503, 502, 200, 200])

    def flaky(params: dict[str, str], _: dict[str, str]) -> Answer:
        status = next(calls)
        return status, wrapped(PARCELS[:3] if params["page"] == "1" else []) if status == 200 else {"busy": 1}

    api.routes["/flaky"] = flaky
    assert rows_of(source(api, "/flaky", {"style": "page"})) == PARCELS[:3]
    assert len(api.requests) == 4


def test_a_server_that_stays_down_fails_after_the_retries(api: Api) -> None:
    api.routes["/down"] = lambda *_: (503, {"busy": 1})
    with pytest.raises(SourceUnavailable, match=r"REST source land-api: GET .*/down failed after 2 retries"):
        rows_of(source(api, "/down", {"style": "page"}, retries=2))
    assert len(api.requests) == 3


def test_an_unreachable_server_is_one_line() -> None:
    rest = RestSource.model_validate(
        {"name": "gone", "url": "http://127.0.0.1:9/x", "entity": "place", "paging": {"style": "page"}, "retries": 0}
    )
    with pytest.raises(SourceUnavailable, match=r"GET http://127\.0\.0\.1:9/x failed after 0 retries"):
        rows_of(rest)


def test_a_non_json_answer_or_a_wrong_records_path_says_what_came_back(api: Api) -> None:
    api.routes["/html"] = lambda *_: (200, b"<html>login</html>")
    api.routes["/other"] = lambda *_: (200, {"result": {"rows": []}, "total": 0})
    with pytest.raises(ExportRejected, match="did not answer JSON"):
        rows_of(source(api, "/html", {"style": "page"}))
    with pytest.raises(ExportRejected, match=r"has no record list at 'data.list'; it has result, total"):
        rows_of(source(api, "/other", {"style": "page"}))


def test_a_first_page_without_the_required_fields_publishes_nothing(api: Api) -> None:
    api.routes["/p"] = lambda *_: (200, wrapped([{"坐落位置": "孟河镇"}]))
    with pytest.raises(ExportRejected, match="REST source land-api lacks required column"):
        rows_of(source(api, "/p", {"style": "page"}))


def test_a_record_that_is_not_an_object_becomes_a_bad_line(api: Api) -> None:
    api.routes["/p"] = lambda params, _: (200, wrapped([PARCELS[0], "junk"] if params["page"] == "1" else []))
    first, bad = rows_of(source(api, "/p", {"style": "page"}))
    assert first == PARCELS[0]
    assert bad == BadLine(2, '"junk"', "record 2 of page 1 is a JSON str, not an object", unit="record")


def test_a_server_that_never_ends_its_pages_is_an_error(api: Api) -> None:
    api.routes["/loop"] = lambda *_: (200, wrapped(PARCELS[:1]))
    with pytest.raises(ConfigurationError, match="still had pages after 3"):
        rows_of(source(api, "/loop", {"style": "page", "max_pages": 3}))


class RecordingPublisher:
    """Stands in for Kafka: keeps the batches that would have been sent, decoded."""

    batch_rows = 1000

    def __init__(self) -> None:
        self.sent: list[RecordBatch] = []
        self.rejected: list[Reject] = []
        self.acknowledged_futures = 0

    def partitions(self, topic: str) -> int:
        return 1

    def publish_batch(self, topic: str, partition: int, value: bytes, uids: object) -> Future:
        self.sent.append(decode_batch(value))
        return Future().success(None)

    def reject(self, reject: Reject) -> Future:
        self.rejected.append(reject)
        return Future().success(None)

    def acknowledged(self, sent: list[Future], what: str) -> None:
        assert all(future.succeeded() for future in sent)
        self.acknowledged_futures += len(sent)


def test_pulled_records_are_published_with_the_source_mapping_and_keys(api: Api) -> None:
    api.routes["/p"] = lambda params, _: (200, wrapped([*PARCELS[:2], 7] if params["page"] == "1" else []))
    rest = source(api, "/p", {"style": "page"})
    publisher = RecordingPublisher()
    with rest_session(rest) as session:
        report = ExportPublisher(publisher, rest.source_name).publish(  # type: ignore[arg-type]
            RestPull(rest, land_columns(), session), "run-1"
        )
    assert (report.records, report.unreadable) == (2, 1)
    [batch] = publisher.sent
    assert batch.source == "land-resources"
    assert [(row["source_record_id"], row["address"]) for row in batch.rows.to_pylist()] == [
        ("P000", "孟河镇0号"),
        ("P001", "孟河镇1号"),
    ]
    assert publisher.rejected[0].reason == "land-api record 3: record 3 of page 1 is a JSON int, not an object"
    assert publisher.acknowledged_futures == 2, "the batch and the reject are both waited for"


def test_sources_file_is_checked_and_named_sources_found(tmp_path: Path) -> None:
    path = tmp_path / "rest.yaml"
    path.write_text(
        "sources:\n"
        "  - {name: a, url: 'http://x/a', entity: place, paging: {style: page}}\n"
        "  - {name: a, url: 'ftp://x/b', entity: place, paging: {style: pages}}\n"
    )
    with pytest.raises(MappingsError) as refused:
        load_rest_sources(path)
    assert "sources.1.url: String should match pattern" in str(refused.value)
    assert "sources.1.paging.style: Input should be 'page', 'offset' or 'next'" in str(refused.value)
    path.write_text("sources:\n  - {name: a, url: 'http://x/a', entity: place, paging: {style: page}}\n")
    assert load_rest_sources(path).named("a").source_name == "a"
    with pytest.raises(InputRejected, match="no REST source named 'b'; configured: a"):
        load_rest_sources(path).named("b")
    with pytest.raises(ConfigurationError, match="set GRIDHUB_REST_SOURCES"):
        load_rest_sources(None)


def test_the_packaged_example_is_valid() -> None:
    example = REST_SOURCES_EXAMPLE
    assert [source.name for source in load_rest_sources(example).sources]


class Poller(RestPoller):
    """The REST poller with each pull played by a script per source (no HTTP, no Kafka)."""

    def __init__(self, sources: list[RestSource], script: dict[str, Callable[[], IngestReport]]) -> None:
        super().__init__(None, sources, EXPORT_MAPPINGS, retry_wait_s=0.01)  # type: ignore[arg-type]
        self.script = script
        self.pulls: dict[str, int] = {rest.name: 0 for rest in sources}

    def pull(self, source: RestSource, run_id: str | None = None) -> IngestReport:
        self.pulls[source.name] += 1
        return self.script[source.name]()


def polled(name: str, poll_seconds: float = 0.05) -> RestSource:
    return RestSource.model_validate(
        {"name": name, "url": "http://x/", "entity": "place", "paging": {"style": "page"}, "poll_seconds": poll_seconds}
    )


def running(poller: Poller, until: Callable[[], bool]) -> None:
    """Run the poller until ``until`` holds (checked as its pulls happen), then stop it and wait for it."""
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    try:
        while not until():
            assert time.monotonic() < deadline, f"the poller did not get there: {poller.pulls}, {poller.stopped}"
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive(), "run() returns once stop is set"


def down() -> IngestReport:
    raise SourceUnavailable("platform down")


def test_a_platform_that_is_down_is_retried_with_back_off_without_holding_up_the_others() -> None:
    poller = Poller(
        [polled("good"), polled("down", poll_seconds=3600)], {"good": lambda: IngestReport("r"), "down": down}
    )
    running(poller, lambda: poller.pulls["good"] >= 3 and poller.pulls["down"] >= 3)
    assert poller.stopped == {}


def test_refused_credentials_stop_that_source_alone_with_what_to_fix() -> None:
    def refused() -> IngestReport:
        raise ConfigurationError("HTTP 401 Unauthorized; check the credentials its headers take from the environment")

    poller = Poller([polled("good"), polled("locked")], {"good": lambda: IngestReport("r"), "locked": refused})
    running(poller, lambda: "locked" in poller.stopped and poller.pulls["good"] >= 3)
    assert poller.pulls["locked"] == 1, "a refused login is not retried"
    assert "check the credentials" in str(poller.stopped["locked"])


def test_a_wrong_answer_is_pulled_again_at_the_next_interval_not_retried_at_once() -> None:
    def wrong() -> IngestReport:
        raise ExportRejected("REST source x: http://x/ did not answer JSON", "bad_answer")

    poller = Poller([polled("wrong", poll_seconds=0.2)], {"wrong": wrong})
    started = time.monotonic()
    running(poller, lambda: poller.pulls["wrong"] >= 3)
    assert time.monotonic() - started >= 0.4, "two intervals passed between the three pulls"


def test_prepare_refuses_a_source_whose_credentials_name_an_unset_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAND_TOKEN", raising=False)
    locked = polled("locked").model_copy(update={"headers": {"Authorization": "Bearer ${LAND_TOKEN}"}})
    with pytest.raises(ConfigurationError, match="LAND_TOKEN, which is unset"):
        Poller([locked], {}).prepare()


def test_retryable_errors_are_the_only_ones_retried() -> None:
    assert issubclass(SourceUnavailable, RetryableError)
    assert not issubclass(ExportRejected, RetryableError)
