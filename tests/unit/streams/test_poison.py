"""Poison never stops the worker: every message of the corpus on a topic the worker reads becomes its rejects.

Each goes through the function its agent runs on it (no Kafka): ``normalise`` for the raw topics,
``batch_outcome`` for the bulk lane, and the desks' frame ``take`` with the real case and
application desks for the clocked topics. The agents only add the message's place to each reject.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from foundation.settings import Settings
from schemas.approvals import ApprovalCatalogue, load_catalogue
from schemas.batches import MAX_MESSAGE_BYTES
from schemas.grid import Grid
from schemas.messages import reject_message
from schemas.rejects import Reject
from schemas.topics import APPLICATION_CHANGES, CASE_COMMANDS, RAW_BATCHES, RAW_TOPICS, REJECTS
from streams.app import batch_outcome
from streams.applications import ApplicationDesk
from streams.case_flow import load_flow
from streams.cases import CaseDesk
from streams.clocked import take
from streams.normalise import Rejected, normalise
from streams.routing import RoutingRules, load_rules
from tests.support.poison import Poison, corpus

SETTINGS = Settings()


@pytest.fixture(scope="module")
def rules() -> RoutingRules:
    return load_rules(SETTINGS.routing_rules)


@pytest.fixture(scope="module")
def grid() -> Grid:
    return Grid.load(SETTINGS.grid_path)


@pytest.fixture(scope="module")
def catalogue() -> ApprovalCatalogue:
    return load_catalogue(SETTINGS.approval_items)


def assert_refused(poison: Poison, rejects: list[Reject]) -> None:
    found = [(reject.stage, reject.reason_code) for reject in rejects]
    assert found == [(poison.stage, poison.reason_code)] * poison.rows
    for reject in rejects:
        assert reject.reason
        assert (reject.payload is not None) == poison.payload_kept
        assert len(reject_message(reject)) < MAX_MESSAGE_BYTES // 4, "a reject must travel whatever it refuses"


@pytest.mark.parametrize("poison", corpus(*RAW_TOPICS), ids=str)
def test_a_raw_message_the_worker_cannot_take_is_rejected(
    poison: Poison, rules: RoutingRules, grid: Grid, catalogue: ApprovalCatalogue
) -> None:
    decision = normalise(poison.value, rules, grid, catalogue)
    assert isinstance(decision, Rejected)
    assert_refused(poison, [decision.reject])


@pytest.mark.parametrize("poison", corpus(RAW_BATCHES), ids=str)
def test_a_bulk_message_the_worker_cannot_take_is_rejected_whatever_it_holds(
    poison: Poison, rules: RoutingRules, grid: Grid, catalogue: ApprovalCatalogue
) -> None:
    outcome = batch_outcome(poison.value, rules, grid, catalogue)
    assert outcome.accepted is None
    assert_refused(poison, outcome.rejects)


def test_a_bad_batch_is_known_by_its_place_and_keeps_the_error() -> None:
    value = b"not an arrow stream"
    (reject,) = batch_outcome(value, load_rules(SETTINGS.routing_rules)).rejects
    placed = reject.at(RAW_BATCHES, 3, 17)
    assert placed.record_uid.startswith(f"{RAW_BATCHES}[3]@17#")
    assert placed.error is not None and placed.error.startswith("BatchFormatError: not an Arrow IPC stream")


def desk_rejects(poison: Poison, rules: RoutingRules, grid: Grid, catalogue: ApprovalCatalogue) -> list[Reject]:
    """What the desk's frame sends for one message of its topic, with the real desk behind it."""
    sent: list[tuple[str, bytes, bytes]] = []

    async def send(topic: str, key: bytes, value: bytes) -> None:
        sent.append((topic, key, value))

    desk: Any = (
        CaseDesk(SETTINGS, rules, grid, load_flow(), send)
        if poison.topic == CASE_COMMANDS
        else ApplicationDesk(catalogue, send)
    )
    asyncio.run(take(poison.value, (poison.topic, 0, 9), desk.handle, desk.tick, send))
    assert {topic for topic, _, _ in sent} == {REJECTS}
    rejects = [Reject.model_validate_json(value) for _, _, value in sent]
    assert [key.decode() for _, key, _ in sent] == [reject.record_uid for reject in rejects]
    return rejects


@pytest.mark.parametrize("poison", corpus(CASE_COMMANDS, APPLICATION_CHANGES), ids=str)
def test_a_desk_message_that_cannot_be_read_or_handled_is_a_reject_placed_at_it(
    poison: Poison, rules: RoutingRules, grid: Grid, catalogue: ApprovalCatalogue
) -> None:
    rejects = desk_rejects(poison, rules, grid, catalogue)
    assert_refused(poison, rejects)
    for reject in rejects:
        assert (reject.topic, reject.partition, reject.message_offset) == (poison.topic, 0, 9)
        assert reject.error


def test_a_command_that_fails_in_its_handler_keeps_its_record_provenance(
    rules: RoutingRules, grid: Grid, catalogue: ApprovalCatalogue
) -> None:
    (poison,) = [case for case in corpus(CASE_COMMANDS) if case.file == "update-bad-record.json"]
    (reject,) = desk_rejects(poison, rules, grid, catalogue)
    envelope = json.loads(poison.value)["envelope"]
    assert (reject.record_uid, reject.source, reject.entity) == (
        envelope["record_uid"],
        envelope["source"],
        "event_update",
    )
    assert reject.error is not None and reject.error.startswith("ValidationError")
