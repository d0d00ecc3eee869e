"""The desks' sender hands messages to the app's producer (the one Faust flushes before committing)."""

from __future__ import annotations

import asyncio
from typing import Any

from structlog.testing import capture_logs

from streams.clocked import topic_sender


class Producer:
    """Records sends and answers each with a delivery future the test settles."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self.deliveries: list[asyncio.Future[None]] = []

    async def send(self, topic: str, key: bytes, value: bytes, **options: Any) -> asyncio.Future[None]:
        self.sent.append((topic, key, value, options))
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.deliveries.append(delivery)
        return delivery


class App:
    def __init__(self) -> None:
        self.producer = Producer()


def test_messages_go_to_the_producer_with_the_default_partitioner() -> None:
    app = App()

    async def run() -> None:
        send = topic_sender(app)  # type: ignore[arg-type]
        await send("dispatch.water", b"C1", b"{}")
        await send("canonical.case", b"C1", b"{}")
        for delivery in app.producer.deliveries:
            delivery.set_result(None)

    asyncio.run(run())
    assert app.producer.sent == [
        ("dispatch.water", b"C1", b"{}", {"partition": None, "timestamp": None, "headers": None}),
        ("canonical.case", b"C1", b"{}", {"partition": None, "timestamp": None, "headers": None}),
    ]


def test_a_message_the_broker_refuses_is_logged() -> None:
    app = App()

    async def run() -> None:
        await topic_sender(app)("dispatch.water", b"C1", b"{}")  # type: ignore[arg-type]
        app.producer.deliveries[0].set_exception(RuntimeError("message too large"))
        await asyncio.sleep(0)

    with capture_logs() as logs:
        asyncio.run(run())
    assert logs == [
        {
            "event": "the broker refused a message",
            "topic": "dispatch.water",
            "error": "message too large",
            "log_level": "warning",
        }
    ]
