"""The one-window service centre's approval system, read from its exchange database.

The approval system appends a row for every new application and status change,
numbered by a monotonic column. The connector publishes rows past its cursor,
waits until Kafka acknowledges all of them, and only then advances the cursor:
a crash in between re-sends rows, which the stream absorbs as duplicates.
"""

from __future__ import annotations

import threading
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from kafka.errors import KafkaError

from connectors.base import Connector, ConnectorError, RawPublisher
from connectors.cursor import Cursor, CursorStore
from gridhub.logs import get_logger
from gridhub.settings import Settings
from schemas.topics import RAW_APPROVALS

log = get_logger(__name__)


def _plain(value: Any) -> Any:
    """JSON-friendly column values (timestamps as ISO-8601)."""
    return value.isoformat() if isinstance(value, datetime | date) else value


class ApprovalsConnector(Connector):
    """Polls the applications table and publishes each change row."""

    topic = RAW_APPROVALS

    def __init__(self, publisher: RawPublisher, settings: Settings, topic_id: str) -> None:
        super().__init__(publisher, source="approvals")
        self.engine = sa.create_engine(settings.approvals_url)
        self.table_name = settings.approvals_table
        self.cursor_column = settings.approvals_cursor_column
        self.batch_rows = settings.approvals_batch_rows
        self.poll_seconds = settings.approvals_poll_seconds
        self.store = CursorStore(settings.state_dir / "approvals.cursor.json")
        self.cursor = self.store.load(topic_id)
        self._table: sa.Table | None = None
        self._warned_missing = False

    def _reflect(self) -> sa.Table | None:
        if self._table is None and sa.inspect(self.engine).has_table(self.table_name):
            table = sa.Table(self.table_name, sa.MetaData(), autoload_with=self.engine)
            missing = {self.cursor_column, "application_id"} - set(table.c.keys())
            if missing:
                raise ConnectorError(
                    f"approvals table {self.table_name} lacks column(s) {', '.join(sorted(missing))}; "
                    "set GRIDHUB_APPROVALS_CURSOR_COLUMN to its monotonic change column"
                )
            self._table = table
        return self._table

    def poll_once(self) -> int:
        """Publish the next batch of change rows; return how many were sent."""
        table = self._reflect()
        if table is None:
            if not self._warned_missing:
                log.warning("approvals table not found yet; polling until it appears", table=self.table_name)
                self._warned_missing = True
            return 0
        column = table.c[self.cursor_column]
        query = sa.select(table).where(column > self.cursor.position).order_by(column).limit(self.batch_rows)
        with self.engine.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
        if not rows:
            return 0
        futures = []
        for row in rows:
            payload = {key: _plain(value) for key, value in row.items() if key != self.cursor_column}
            futures.append(self.send(self.envelope(str(row["application_id"]), "application", payload)))
        for future in futures:
            future.get(timeout=30)
        self.cursor = Cursor(position=int(rows[-1][self.cursor_column]), topic_id=self.cursor.topic_id)
        self.store.save(self.cursor)
        log.info("approvals published", rows=len(rows), cursor=self.cursor.position)
        return len(rows)

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; a full batch polls again at once."""
        while not stop.is_set():
            try:
                sent = self.poll_once()
            except (sa.exc.SQLAlchemyError, KafkaError) as exc:
                log.error("approvals poll failed; retrying, cursor unchanged", error=str(exc), url=self.engine.url)
                sent = 0
            if sent < self.batch_rows:
                stop.wait(self.poll_seconds)
