"""Lag arithmetic: per partition, summed per stage, and the age of the oldest record still waiting."""

from __future__ import annotations

from kafka import TopicPartition

from gridhub.lag import PartitionLag, StageLag, sink_positions, stage_of, summarise

NOW_MS = 1_800_000_000_000


def lag(
    consumer: str, topic: str, partition: int, position: int, end: int | None, oldest_ms: int | None = None
) -> PartitionLag:
    return PartitionLag(consumer, topic, partition, position, end, oldest_ms)


def test_a_partition_is_behind_by_its_end_less_its_position_never_less_than_zero() -> None:
    assert lag("sink", "rejects", 0, 3, 10).lag == 7
    assert lag("sink", "rejects", 0, 10, 10).lag == 0
    assert lag("sink", "rejects", 0, 12, 10).lag == 0, "a position past a stale end is not negative lag"
    assert lag("sink", "rejects", 0, 3, None).lag is None


def test_stages_sum_their_partitions_and_take_the_oldest_waiting_record() -> None:
    partitions = [
        lag("sink", "canonical.person", 0, 5, 9, NOW_MS - 30_000),
        lag("sink", "canonical.person", 1, 2, 2, NOW_MS - 999_000),  # caught up: its message is not waiting
        lag("sink", "rejects", 0, 0, 4, NOW_MS - 90_000),
        lag("gridhub-streams", "raw.patrol", 0, 1, 1),
        lag("gridhub-streams", "raw.exports", 3, 7, 8, NOW_MS - 5_000),
    ]
    assert summarise(partitions, NOW_MS) == [
        StageLag("gridhub-streams", "integrate", 1, 1, 5.0),
        StageLag("sink", "warehouse", 8, 2, 90.0),
    ]


def test_an_unknown_end_makes_the_stage_lag_unknown() -> None:
    partitions = [lag("sink", "rejects", 0, 0, 4, NOW_MS - 1_000), lag("sink", "rejects", 1, 0, None)]
    assert summarise(partitions, NOW_MS) == [StageLag("sink", "warehouse", None, 1, 1.0)]


def test_a_stage_that_keeps_up_has_no_oldest_record() -> None:
    assert summarise([lag("sink", "rejects", 0, 4, 4, NOW_MS)], NOW_MS) == [StageLag("sink", "warehouse", 0, 0, None)]


def test_stages_are_named_after_what_reads_the_topic() -> None:
    assert stage_of("sink", "canonical.case") == "warehouse"
    assert stage_of("gridhub-streams", "raw.approvals") == "integrate"
    assert stage_of("gridhub-streams", "raw.batches") == "integrate-batches"
    assert stage_of("gridhub-streams", "cases.commands") == "cases"
    assert stage_of("gridhub-streams", "applications.changes") == "applications"
    assert stage_of("gridhub-desk-water", "dispatch.water") == "dispatch to water"


def test_the_sink_starts_a_partition_it_never_read_from_zero() -> None:
    positions = sink_positions([["rejects", 1, 40]], {"rejects": 2, "canonical.case": 1}, ["rejects", "canonical.case"])
    assert positions == {
        ("sink", TopicPartition("rejects", 0)): 0,
        ("sink", TopicPartition("rejects", 1)): 40,
        ("sink", TopicPartition("canonical.case", 0)): 0,
    }
