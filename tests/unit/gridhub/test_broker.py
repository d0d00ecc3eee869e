"""The partitions gridhub creates each topic with."""

from __future__ import annotations

from pathlib import Path

from foundation.settings import Settings
from gridhub.broker import all_topics, partitions_of
from schemas import topics


def test_topics_a_group_shares_out_get_the_configured_partitions_and_the_sinks_own_get_one(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, topic_partitions=6)
    shared = [
        *topics.RAW_TOPICS,
        topics.RAW_BATCHES,
        topics.CANONICAL_BATCHES,
        topics.BULK_SEEN,
        topics.OVERDUE_ALERTS,
        topics.dispatch_topic("land"),
    ]
    assert {topic: partitions_of(topic, settings) for topic in shared} == dict.fromkeys(shared, 6)
    single = [
        topics.canonical_topic("person"),
        topics.canonical_topic("case"),
        topics.REJECTS,
        topics.RUNS,
        topics.CASE_COMMANDS,
    ]
    assert {topic: partitions_of(topic, settings) for topic in single} == dict.fromkeys(single, 1)


def test_canonical_batches_keeps_the_partitions_of_the_raw_batches_it_mirrors(tmp_path: Path) -> None:
    for count in (1, 3, 8):
        settings = Settings(data_dir=tmp_path, topic_partitions=count)
        assert partitions_of(topics.CANONICAL_BATCHES, settings) == partitions_of(topics.RAW_BATCHES, settings) == count


def test_every_topic_the_sink_reads_but_canonical_batches_has_one_partition(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert set(topics.sink_topics()) <= set(all_topics(settings))
    many = {topic for topic in topics.sink_topics() if partitions_of(topic, settings) != 1}
    assert many == {topics.CANONICAL_BATCHES}
