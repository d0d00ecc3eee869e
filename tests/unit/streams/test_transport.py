"""The worker's Kafka consumer is built with the hub's fetch wait, not faust-streaming's fixed 1,500 ms."""

from __future__ import annotations

import asyncio

import faust

from streams.transport import Transport, use_fetch_wait


def test_the_worker_consumer_waits_as_long_as_the_setting_says() -> None:
    async def built_wait() -> int:
        app = faust.App("transport-test", broker="kafka://127.0.0.1:9", store="memory://", web_enabled=False)
        use_fetch_wait(app, 7)
        assert isinstance(app.transport, Transport)
        thread = app.consumer._new_consumer_thread()
        consumer = thread._create_worker_consumer(app.transport)
        return int(consumer._fetch_max_wait_ms)

    assert asyncio.run(built_wait()) == 7
