"""The screen's live feed: what happens to cases, read off the hub's own topics as it happens.

The map and the panels read the warehouse, which trails the stream by the sink's batch. The feed
does not wait for it: it follows the topics the case agent writes (new and merged reports,
every transition, overdue alerts) and hands each change to the screens watching, so a report
shows on the wall in the time it takes the agent to file it.

A feed item carries only what the wall needs and nothing personal (no reporter, actor, subject
or description), so one stream serves every role: what a masked viewer may not see is never in
it. A new viewer first gets the last :attr:`LiveFeed.keep` items, read back from the topics at
start, so the wall is not empty after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from foundation.kafka_security import aiokafka_options
from foundation.logs import get_logger
from foundation.settings import Settings
from schemas.topics import OVERDUE_ALERTS, canonical_topic
from streams.case_state import aware

log = get_logger(__name__)

REPORTS = canonical_topic("event")
TRANSITIONS = canonical_topic("case_transition")
FEED_TOPICS = (REPORTS, TRANSITIONS, OVERDUE_ALERTS)
QUIET_ACTIONS = frozenset({"accept"})
"""Steps the automation takes with every new report: the report itself already says it."""
CASE_FIELDS = ("case_id", "category", "category_name", "department", "squad", "grid_code", "community", "lat", "lon")


def feed_item(topic: str, value: bytes) -> dict[str, Any] | None:
    """The feed's item for one message of :data:`FEED_TOPICS`, or None for what the wall does not show.

    Raises ValueError, KeyError or TypeError for a message it cannot read; its ``at`` is always an
    aware ISO time (a naive one is the town's), so items from every topic sort together.
    """
    item = _item(topic, json.loads(value))
    if item is not None:
        item["at"] = _moment(item).isoformat()
    return item


def _item(topic: str, document: dict[str, Any]) -> dict[str, Any] | None:
    if topic == REPORTS:
        if document.get("meta", {}).get("outcome") != "new":
            return None
        report = document["record"]
        kind = "report" if report.get("case_id") in (None, report["event_id"]) else "merge"
        return {
            "kind": kind,
            "at": report["reported_at"],
            "report_id": report["event_id"],
            "status": report.get("status"),
            **{name: report.get(name) for name in CASE_FIELDS},
        }
    if topic == TRANSITIONS:
        step = document["record"]
        if step.get("from_status") is None or step.get("action") in QUIET_ACTIONS:
            return None
        return {
            "kind": step["action"],
            "at": step["at"],
            "case_id": step["case_id"],
            "from_status": step["from_status"],
            "status": step["to_status"],
            "due_at": step.get("due_at"),
            "actor_role": step.get("actor_role"),
        }
    case = document["case"]
    return {
        "kind": "overdue",
        "at": document["at"],
        "status": case.get("status"),
        "due_at": case.get("due_at"),
        "hours_late": document.get("hours_late"),
        **{name: case.get(name) for name in CASE_FIELDS},
    }


class LiveFeed:
    """Follows :data:`FEED_TOPICS` without a consumer group and fans each item out to every watcher."""

    def __init__(self, settings: Settings, bootstrap: str, keep: int = 100) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.keep = keep
        self.recent: list[dict[str, Any]] = []
        self._watchers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._sequence = 0

    async def run(self) -> None:
        """Read the topics until cancelled; a broker that goes away is waited for, not fatal."""
        while True:
            try:
                await self._follow()
            except (KafkaError, OSError) as exc:  # the wall keeps its last items and tries again
                log.warning("screen_feed_interrupted", error=str(exc), retry_in_s=2)
                await asyncio.sleep(2)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=self.settings.fetch_wait_ms,
            **aiokafka_options(self.settings),
        )
        await consumer.start()
        try:
            partitions = await self._partitions(consumer)
            consumer.assign(partitions)
            await self._rewind(consumer, partitions)
            while True:
                for messages in (await consumer.getmany(timeout_ms=1000)).values():
                    for message in messages:
                        self.publish(message.topic, message.value or b"{}")
        finally:
            await consumer.stop()

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        """Every partition of the feed's topics, waiting for topics the hub has not made yet."""
        while True:
            await consumer.topics()  # refreshes the metadata of every topic
            found = {topic: consumer.partitions_for_topic(topic) for topic in FEED_TOPICS}
            if all(found.values()):
                return [TopicPartition(topic, number) for topic, numbers in found.items() for number in numbers or ()]
            await asyncio.sleep(1)

    async def _rewind(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        """Start ``keep`` messages before the end of each partition (or at its beginning)."""
        ends = await consumer.end_offsets(partitions)
        beginnings = await consumer.beginning_offsets(partitions)
        for partition in partitions:
            consumer.seek(partition, max(beginnings[partition], ends[partition] - self.keep))

    def publish(self, topic: str, value: bytes) -> None:
        """Hand one message of :data:`FEED_TOPICS` to the feed: kept, and sent to every watcher."""
        try:
            item = feed_item(topic, value)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("screen_feed_skipped_message", topic=topic, error=str(exc))
            return
        if item is None:
            return
        self._sequence += 1
        item["seq"] = self._sequence
        self._remember(item)
        for queue in self._watchers:
            queue.put_nowait(item)

    def _remember(self, item: dict[str, Any]) -> None:
        """Keep the ``keep`` latest items by time, whichever topic or partition they were read from.

        At start the topics are read one partition after another, so arrival order is not time
        order: an alert read first must not be pushed out by older steps read after it.
        """
        self.recent.append(item)
        if len(self.recent) > 2 * self.keep:
            self.recent.sort(key=_moment)
            del self.recent[: -self.keep]

    @contextlib.asynccontextmanager
    async def watch(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """A queue of the items from now on, preceded by the recent ones; released on exit."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for item in sorted(self.recent, key=_moment)[-self.keep :]:
            queue.put_nowait(item)
        self._watchers.add(queue)
        try:
            yield queue
        finally:
            self._watchers.discard(queue)


def _moment(item: dict[str, Any]) -> datetime:
    """When an item happened, comparable across the offsets the topics write (+08:00, +00:00, none)."""
    return aware(datetime.fromisoformat(str(item["at"])))
