"""The topics the hub made on the embedded broker at its start."""

from __future__ import annotations

from schemas.topics import CANONICAL_BATCHES, CASE_COMMANDS, RAW_BATCHES, RAW_PATROL, REJECTS, canonical_topic
from tests.support.hub import Hub


def test_the_hub_made_one_partition_for_the_sinks_topics_and_the_configured_count_for_shared_ones(hub: Hub) -> None:
    partitions = hub.settings.topic_partitions
    assert partitions > 1, "the test hub must share its raw topics out for this test to tell the two apart"
    counts = {
        topic: len(hub.end_offsets(topic))
        for topic in (RAW_PATROL, RAW_BATCHES, CANONICAL_BATCHES, canonical_topic("case"), REJECTS, CASE_COMMANDS)
    }
    assert counts == {
        RAW_PATROL: partitions,
        RAW_BATCHES: partitions,
        CANONICAL_BATCHES: partitions,
        canonical_topic("case"): 1,
        REJECTS: 1,
        CASE_COMMANDS: 1,
    }
