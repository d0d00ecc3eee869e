"""How far behind each consumer of the hub is, and how long its oldest unprocessed record has waited.

The worker's and the desks' consumer groups keep their positions in Kafka; the sink keeps its
own in the warehouse (``sink_offsets``), so its positions are passed in. A partition's end is
taken from the high watermark that fetch answers carry, not from ``end_offsets``: the embedded
broker answers that one with the first offset of the partition's last batch. A record's age is
now less the timestamp of the message at the consumer's position: the oldest one it has not
processed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from schemas.topics import APPLICATION_CHANGES, CASE_COMMANDS, RAW_BATCHES, RAW_TOPICS

WORKER_GROUP = "gridhub-streams"
"""The Faust worker's consumer group (its app id)."""
WORKER_TOPICS = (*RAW_TOPICS, RAW_BATCHES, CASE_COMMANDS, APPLICATION_CHANGES)
"""What the worker's agents read: shown even before the worker has committed anything there."""
DESK_GROUP_PREFIX = "gridhub-desk-"
SINK = "sink"
READ_TIMEOUT_S = 15.0
"""How long the high watermarks and the oldest records may take to read before a partition is left unknown."""

Position = tuple[str, TopicPartition]
"""A consumer (a group id, or ``sink``) and a partition it reads."""


@dataclass(frozen=True)
class PartitionLag:
    """One consumer's place in one partition, against the partition's end."""

    consumer: str
    topic: str
    partition: int
    position: int
    end: int | None
    oldest_ms: int | None = None
    """Kafka timestamp (ms) of the message at ``position``, when there is one."""

    @property
    def lag(self) -> int | None:
        """Messages not processed yet; None when the end is unknown."""
        return None if self.end is None else max(self.end - self.position, 0)


@dataclass(frozen=True)
class StageLag:
    """What `gridhub status` shows of one stage: a consumer's lag over its topics and its oldest waiting record."""

    consumer: str
    stage: str
    lag: int | None
    partitions_behind: int
    oldest_age_s: float | None


def stage_of(consumer: str, topic: str) -> str:
    """The pipeline stage a consumer's topic belongs to."""
    if consumer == SINK:
        return "warehouse"
    if consumer == WORKER_GROUP:
        if topic in RAW_TOPICS:
            return "integrate"
        return {RAW_BATCHES: "integrate-batches", CASE_COMMANDS: "cases", APPLICATION_CHANGES: "applications"}.get(
            topic, topic
        )
    if consumer.startswith(DESK_GROUP_PREFIX):
        return f"dispatch to {consumer.removeprefix(DESK_GROUP_PREFIX)}"
    return topic


def summarise(partitions: Iterable[PartitionLag], now_ms: int) -> list[StageLag]:
    """Per consumer and stage: the summed lag, the partitions behind, and the age of the oldest waiting record.

    A stage whose end is unknown in any partition has an unknown lag: a partial sum would understate it.
    """
    grouped: dict[tuple[str, str], list[PartitionLag]] = {}
    for item in partitions:
        grouped.setdefault((item.consumer, stage_of(item.consumer, item.topic)), []).append(item)
    stages = []
    for (consumer, stage), items in sorted(grouped.items()):
        lags = [item.lag for item in items]
        known = None if any(lag is None for lag in lags) else sum(lag or 0 for lag in lags)
        waiting = [item.oldest_ms for item in items if item.lag and item.oldest_ms is not None]
        oldest = max(now_ms - min(waiting), 0) / 1000 if waiting else None
        stages.append(StageLag(consumer, stage, known, sum(1 for lag in lags if lag), oldest))
    return stages


def group_positions(admin: KafkaAdminClient, partitions: Mapping[str, int]) -> dict[Position, int]:
    """The committed position of every gridhub consumer group in every partition of the topics it reads.

    A partition of such a topic where the group committed nothing yet counts from offset 0: the
    group has processed none of it. The worker's topics count whether or not it committed there;
    a desk's, once it has read them. ``partitions`` is the partition count of each topic.
    """
    desks = {str(group["group_id"]) for group in admin.list_groups()}
    positions: dict[Position, int] = {}
    for group in [WORKER_GROUP, *sorted(desk for desk in desks if desk.startswith(DESK_GROUP_PREFIX))]:
        committed = admin.list_group_offsets({group: None}).get(group, {})
        topics = {tp.topic for tp in committed if tp.topic in partitions}
        if group == WORKER_GROUP:
            topics |= {topic for topic in WORKER_TOPICS if topic in partitions}
        for topic in topics:
            for number in range(partitions[topic]):
                found = committed.get(TopicPartition(topic, number))
                positions[(group, TopicPartition(topic, number))] = max(found.offset if found else 0, 0)
    return positions


def sink_positions(
    rows: Sequence[Sequence[Any]], partitions: Mapping[str, int], topics: Iterable[str]
) -> dict[Position, int]:
    """The sink's positions from its ``sink_offsets`` rows; a partition it has not read yet counts from 0."""
    stored = {(str(topic), int(partition)): int(offset) for topic, partition, offset in rows}
    return {
        (SINK, TopicPartition(topic, number)): stored.get((topic, number), 0)
        for topic in topics
        for number in range(partitions.get(topic, 0))
    }


def measure(consumer: KafkaConsumer, positions: Mapping[Position, int]) -> list[PartitionLag]:
    """Read each partition's end and the message at each position that is behind it.

    The consumer (no group) is assigned every partition and reads from the positions, in rounds
    of one position per partition; a partition that stays silent past :data:`READ_TIMEOUT_S`
    has an unknown end.
    """
    wanted: dict[TopicPartition, list[int]] = {}
    for (_, tp), offset in positions.items():
        wanted.setdefault(tp, [])
        if offset not in wanted[tp]:
            wanted[tp].append(offset)
    consumer.assign(list(wanted))
    stamps: dict[tuple[TopicPartition, int], int] = {}
    deadline = time.monotonic() + READ_TIMEOUT_S
    for round_number in range(max((len(offsets) for offsets in wanted.values()), default=0)):
        targets = {tp: sorted(offsets)[round_number] for tp, offsets in wanted.items() if round_number < len(offsets)}
        consumer.resume(*targets)
        for tp, offset in targets.items():
            consumer.seek(tp, offset)
        while targets and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=200).items():
                target = targets.get(tp)
                first = next((record for record in records if target is not None and record.offset >= target), None)
                if first is not None and target is not None:
                    stamps[(tp, target)] = first.timestamp
                    del targets[tp]
                    consumer.pause(tp)
            for tp in list(targets):
                high = consumer.highwater(tp)
                if high is not None and high <= targets[tp]:
                    del targets[tp]
                    consumer.pause(tp)
    return [
        PartitionLag(
            consumer=name,
            topic=tp.topic,
            partition=tp.partition,
            position=offset,
            end=consumer.highwater(tp),
            oldest_ms=stamps.get((tp, offset)),
        )
        for (name, tp), offset in sorted(positions.items(), key=lambda item: (item[0][0], item[0][1]))
    ]
