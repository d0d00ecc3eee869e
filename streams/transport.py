"""Faust's Kafka transport with the fetch wait the hub's settings give (``GRIDHUB_FETCH_WAIT_MS``).

faust-streaming builds its worker consumer with a fixed ``fetch_max_wait_ms`` of 1,500 ms, and
no setting reaches it. A broker that holds an idle fetch until its wait runs out (the embedded
Tansu broker does) then holds every report that reaches an idle worker for up to 1.5 s, once on
``raw.*`` and once more on ``cases.commands``: most of the incident lane's latency was this wait,
not work. With a short wait an idle worker takes a record when it arrives; a backlog still comes
back in full fetches at once, so the bulk lane keeps its large batches.

While a partition's fetched records wait for Faust to take them, aiokafka sends no fetch to
their broker at all for up to its prefetch backoff (100 ms), so the other partitions wait too.
In the worker that is the rule, not an accident: the integrate agent's case command lands on
``cases.commands`` while the next reports wait on ``raw.patrol``. The first reports after a
quiet spell then reached their desk in 150-220 ms instead of 40 ms, and the dispatch p99 at 20
reports/s was set by them; so the worker's consumer never holds back (``PREFETCH_BACKOFF_S``).
A partition still has one fetched answer at most, so memory stays bounded. The backoff also
batched fetches of a saturated worker: at 150 reports/s, dispatch p99 varied more without it
(1.1-9.8 s against 2.4-2.8 s over four runs each), where both miss the goal tenfold.

The same consumer restores the worker's tables up to where their changelogs end; it asks a
fetch answer for that end (:func:`~foundation.partition_ends.fetched_ends`), since the embedded
broker's ListOffsets answer falls short of the last records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from foundation.partition_ends import fetched_ends

PREFETCH_BACKOFF_S = 0.0
"""How long fetched records waiting for Faust hold back the fetches of every other partition."""


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # The consumer keeps its constructor's arguments until start() builds the fetcher from them.
        consumer._fetch_max_wait_ms = cast(Transport, transport).fetch_wait_ms
        return consumer

    async def on_start(self) -> None:
        await super().on_start()
        # start() has just built the fetcher, which reads its backoff afresh for every answer.
        self._ensure_consumer()._fetcher._prefetch_backoff = PREFETCH_BACKOFF_S

    async def _highwaters(self, partitions: Sequence[TP]) -> Mapping[TP, int]:
        if self.consumer.in_transaction:
            return await super()._highwaters(partitions)
        probe = self._create_client_consumer(cast(Transport, self.transport))
        await probe.start()
        try:
            return await fetched_ends(probe, partitions)
        finally:
            await probe.stop()


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    """aiokafka transport whose worker consumer waits at most ``fetch_wait_ms`` for an idle fetch."""

    Consumer = _Consumer

    def __init__(self, *args: Any, fetch_wait_ms: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fetch_wait_ms = fetch_wait_ms


def use_fetch_wait(app: faust.App, fetch_wait_ms: int) -> None:
    """Give ``app`` the transport above; call before anything (a topic, an agent) asks the app for its transport."""
    app.transport = Transport(app.conf.broker_consumer, app, fetch_wait_ms=fetch_wait_ms)
