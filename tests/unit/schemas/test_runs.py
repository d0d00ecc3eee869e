"""The run notice: a start and an end that say all a run's door knows, and never a secret."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from foundation.errors import InputRejected
from schemas.runs import RunNotice, new_run_id, public_url


def started(origin: str | None = "households.csv") -> RunNotice:
    return RunNotice.begin("ingest", "civil-affairs", "person", origin, "clerk-wang")


def test_a_run_begins_running_and_ends_published_with_its_counts_and_every_fact_of_its_start() -> None:
    start = started()
    end = start.published_all(published=6, refused=2)
    assert (start.state, start.ended_at, start.published) == ("running", None, None)
    assert (end.state, end.published, end.refused, end.error) == ("published", 6, 2, None)
    assert end.ended_at is not None and end.ended_at >= end.started_at
    assert end.model_dump(include={"run_id", "kind", "source", "entity", "origin", "started_by", "started_at"}) == (
        start.model_dump(include={"run_id", "kind", "source", "entity", "origin", "started_by", "started_at"})
    )
    assert RunNotice.model_validate_json(end.model_dump_json()) == end, "it travels as JSON unchanged"


def test_a_failed_run_keeps_the_first_line_of_a_gridhub_error_as_it_was_written_for_a_person() -> None:
    refused = InputRejected("households.csv lacks required column(s) for person: name (姓名)\nmore detail")
    end = started().failed(refused)
    assert (end.state, end.published) == ("failed", None)
    assert end.error == "households.csv lacks required column(s) for person: name (姓名)"
    assert started().failed(KeyError("id")).error == "KeyError: 'id'", "any other error says its class"


def test_no_secret_of_a_url_reaches_the_ledger_neither_in_the_origin_nor_in_the_error() -> None:
    url = "https://hub:s3cret@zrzy.example.gov.cn:8443/api/v1/parcels?token=abc#x"
    pull = RunNotice.begin("pull", "land", "place", url, None)
    assert pull.origin == "https://zrzy.example.gov.cn:8443/api/v1/parcels"
    failed = pull.failed(RuntimeError("GET https://zrzy.example.gov.cn/api?access_token=abc&page=2 answered 500"))
    assert failed.error == "RuntimeError: GET https://zrzy.example.gov.cn/api answered 500"
    assert "abc" not in failed.model_dump_json() and "s3cret" not in failed.model_dump_json()
    assert public_url("postgresql://approvals:pw@db:5432/sp") == "postgresql://db:5432/sp"
    assert started().origin == "households.csv", "a file's name is kept as it is"


@pytest.mark.parametrize(
    "change",
    [
        {"state": "running", "ended_at": "2026-11-25T09:01:00+08:00"},
        {"state": "published", "ended_at": "2026-11-25T09:01:00+08:00"},
        {"state": "failed", "ended_at": "2026-11-25T09:01:00+08:00"},
        {"error": "an error without a failure"},
        {"started_at": "2026-11-25T09:00:00"},
        {"run_id": "not-hex"},
        {"kind": "upload"},
        {"token": "a field the contract lacks"},
        {"published": -1},
    ],
    ids=str,
)
def test_a_notice_that_contradicts_itself_or_the_contract_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RunNotice.model_validate({**started().model_dump(), **change})


def test_run_ids_are_hexadecimal_and_never_hold_what_masking_would_take_for_a_phone_number() -> None:
    ids = [new_run_id() for _ in range(3000)]
    assert all(re.fullmatch("[0-9a-f]{32}", run_id) and not re.search("[0-9]{11}", run_id) for run_id in ids)
    assert len(set(ids)) == len(ids)
