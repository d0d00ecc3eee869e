"""A desk's work orders, read from its ``dispatch.<unit>`` topic on the desk's behalf.

Desks reach the hub through the gateway with a token, not through Kafka: a desk's token names
its desk unit (a department, or a squad of one: ``enforcement.wansui``), so it can only ever read
its own orders (a department's own desk also those of its squads). What a desk has seen is kept
where it was before, as the committed position of its consumer group (``gridhub-desk-<unit>``,
the reader's unit): a desk asks with the cursor of its last answer, which commits it, so an order
is shown again only to a desk that did not come back for more (at least once, never silently
skipped), and the bureau reading a squad's orders never moves that squad's own position.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from connectors.http_guard import RequestRefused
from schemas.topics import dispatch_topic

Start = Literal["committed", "beginning"]
POLL_MS = 200
MAX_WAIT_S = 10.0
MAX_ORDERS = 500


def parse_cursor(text: str) -> dict[int, int]:
    """``0:12,1:5`` as {partition: next offset}."""
    try:
        pairs = [item.split(":") for item in text.split(",") if item]
        cursor = {int(partition): int(offset) for partition, offset in pairs}
    except ValueError:
        raise RequestRefused(
            400, "bad_cursor", "send back the cursor of the last answer unchanged (partition:offset,...)"
        ) from None
    if any(partition < 0 or offset < 0 for partition, offset in cursor.items()):
        raise RequestRefused(400, "bad_cursor", "a cursor's partitions and offsets are never negative")
    return cursor


def format_cursor(positions: dict[int, int]) -> str:
    """The inverse of :func:`parse_cursor`."""
    return ",".join(f"{partition}:{offset}" for partition, offset in sorted(positions.items()))


@dataclass(frozen=True)
class WorkOrders:
    """Reads one desk unit's orders per request, with a short-lived consumer of the reading desk's group."""

    bootstrap: str
    client_options: dict[str, Any]

    def read(
        self, unit: str, after: str | None, start: Start, wait_s: float, reader: str | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """Orders of ``unit`` past ``after`` (committing it first) or past the reader's position; and the next cursor.

        ``reader`` is the desk unit that reads (``unit`` itself unless a department's desk reads a
        squad's orders). Waits up to ``wait_s`` for the first order, so a desk can long-poll.
        """
        topic = dispatch_topic(unit)
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=f"gridhub-desk-{reader or unit}",
            enable_auto_commit=False,
            **self.client_options,
        )
        try:
            partitions = [
                TopicPartition(topic, number) for number in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            consumer.assign(partitions)
            self._position(consumer, partitions, after, start)
            orders = self._poll(consumer, min(wait_s, MAX_WAIT_S))
            return orders, format_cursor({tp.partition: consumer.position(tp) for tp in partitions})
        finally:
            consumer.close(autocommit=False)

    @staticmethod
    def _position(consumer: KafkaConsumer, partitions: list[TopicPartition], after: str | None, start: Start) -> None:
        if after is not None:
            cursor = parse_cursor(after)
            offsets = {
                tp: OffsetAndMetadata(cursor[tp.partition], "", -1) for tp in partitions if tp.partition in cursor
            }
            if offsets:
                consumer.commit(offsets)
            for tp, offset in offsets.items():
                consumer.seek(tp, offset.offset)
            return
        for tp in partitions:
            committed = None if start == "beginning" else consumer.committed(tp)
            if committed is None and start == "beginning":
                consumer.seek_to_beginning(tp)
            elif committed is None:
                consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, committed)

    @staticmethod
    def _poll(consumer: KafkaConsumer, wait_s: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + wait_s
        orders: list[dict[str, Any]] = []
        while len(orders) < MAX_ORDERS:
            # Once orders are in hand, take only what is fetched already: the desk is answered now.
            batches = consumer.poll(timeout_ms=0 if orders else POLL_MS, max_records=MAX_ORDERS - len(orders))
            for messages in batches.values():
                orders.extend(
                    {
                        "topic": message.topic,
                        "partition": message.partition,
                        "offset": message.offset,
                        "value": (message.value or b"").decode("utf-8", "replace"),
                    }
                    for message in messages
                )
            if (orders and not batches) or time.monotonic() > deadline:
                break
        return orders
