"""The one-window service centre's approval system, read from its exchange database.

The approval system appends a row for every new application and status change,
numbered by a monotonic column. The connector reads any SQLAlchemy database
(SQLite, PostgreSQL, ...) through the table and column mapping of
:mod:`connectors.approvals_mapping`, publishes rows past its cursor, waits until
Kafka acknowledges all of them, and only then advances the cursor: a crash in
between re-sends rows, which the stream recognises by their change number and
absorbs as duplicates.

Change numbers from a database sequence become visible in commit order, not in
number order: while a transaction holding number 100 is still open, 101 may
already be readable. A cursor moved to 101 would skip 100 for good, so a missing
number holds the cursor back until it appears or ``approvals_gap_wait_seconds``
pass (a rolled-back transaction leaves a number that never appears).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from kafka.producer.future import FutureRecordMetadata

from connectors.approvals_mapping import ApprovalsMapping, MappingError, UnmappedCode
from connectors.base import Connector, SourceUnavailable
from connectors.cursor import Cursor, CursorStore
from connectors.publisher import RawPublisher, RunTally
from foundation.errors import ConfigurationError, RetryableError
from foundation.logs import get_logger
from foundation.retrying import retrying
from foundation.settings import Settings
from schemas.approvals import CHANGE_SEQ_FIELD
from schemas.rejects import Reject
from schemas.runs import RunNotice
from schemas.topics import RAW_APPROVALS

log = get_logger(__name__)


class GapGuard:
    """Decides how many fetched change numbers may be published without skipping one still in flight."""

    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        self._hole: int | None = None
        self._since = 0.0

    def publishable(self, position: int, numbers: list[int], now: float) -> int:
        """How many of ``numbers`` (ascending, all past ``position``) to publish now.

        Stops before the first missing number until that number has been missing for
        ``wait_s`` seconds; after that it is taken to be a rolled-back transaction and skipped.
        """
        expected = position + 1
        for index, number in enumerate(numbers):
            if number > expected:
                if self._hole != expected:
                    self._hole, self._since = expected, now
                if now - self._since < self.wait_s:
                    return index
                log.info("approvals: change numbers never appeared; skipping them", first=expected, last=number - 1)
            expected = number + 1
        return len(numbers)


@contextmanager
def _database(url: object) -> Iterator[None]:
    """Sort the approval database's failures into the taxonomy.

    A database that cannot be reached or times out may come back (retryable); one that refuses
    the query (no such table or column, no permission) will refuse it again until the mapping or
    the grants are fixed (configuration).
    """
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError) as exc:
        raise SourceUnavailable(
            f"the approval database at {url} did not answer ({exc.__class__.__name__}: {exc})"
        ) from exc
    except sa.exc.SQLAlchemyError as exc:
        raise ConfigurationError(
            f"the approval database at {url} refused the query ({exc.__class__.__name__}: {exc}); "
            "check GRIDHUB_APPROVALS_MAPPING and the account's grants"
        ) from exc


class ApprovalsConnector(Connector):
    """Polls the change table and publishes each change row as an application record."""

    source = "approvals"
    topic = RAW_APPROVALS

    def __init__(self, publisher: RawPublisher, settings: Settings, mapping: ApprovalsMapping, topic_id: str) -> None:
        super().__init__(publisher)
        self.engine = sa.create_engine(settings.approvals_url)
        self.mapping = mapping
        self.batch_rows = settings.approvals_batch_rows
        self.poll_seconds = settings.approvals_poll_seconds
        self.gaps = GapGuard(settings.approvals_gap_wait_seconds)
        self.store = CursorStore(settings.state_dir / "approvals.cursor.json")
        self.cursor = self.store.load(topic_id)
        self._table: sa.Table | None = None
        self._warned_missing = False

    def reflect(self) -> sa.Table | None:
        """The change table once it exists, checked against the mapping (a misfit raises :class:`MappingError`)."""
        if self._table is not None:
            return self._table
        mapping = self.mapping
        with _database(self.engine.url):
            if not sa.inspect(self.engine).has_table(mapping.table, schema=mapping.schema):
                return None
            table = sa.Table(mapping.table, sa.MetaData(), schema=mapping.schema, autoload_with=self.engine)
        mapping.check_columns(table.c.keys())
        if not isinstance(table.c[mapping.cursor_column].type, sa.Integer | sa.Numeric):
            raise MappingError(
                f"{mapping.path}: cursor_column {mapping.cursor_column!r} of {mapping.qualified_table} is "
                f"{table.c[mapping.cursor_column].type}; it must be an integer that grows with every row"
            )
        self._table = table
        return table

    def prepare(self) -> dict[str, Any]:
        """Check the mapping against the table before the service calls itself ready.

        A mapping that does not fit fails the start with one :class:`MappingError`; a database
        that is not reachable yet does not, since the poll loop waits for it.
        """
        try:
            self.reflect()
        except SourceUnavailable as exc:
            log.error("approval database not reachable yet; polling until it is", error=str(exc))
        return {"table": self.mapping.qualified_table}

    def _publish(self, row: dict[str, Any], number: int, tally: RunTally) -> FutureRecordMetadata:
        """Send one change row as part of the poll's run, or reject it here when its status or channel is not mapped."""
        key = row[self.mapping.columns["application_id"]]
        record_id = str(key) if key is not None else f"{self.mapping.qualified_table}#{number}"
        try:
            payload = self.mapping.payload(row)
        except UnmappedCode as exc:
            reject = Reject.build(
                "validate",
                exc.reason_code,
                str(exc),
                row,
                record_uid=uuid.uuid4().hex,
                source=self.source,
                source_record_id=record_id,
                entity="application",
                run_id=tally.run_id,
            )
            tally.refused = (tally.refused or 0) + 1
            return self.publisher.reject(reject)
        payload[CHANGE_SEQ_FIELD] = number
        tally.published = (tally.published or 0) + 1
        return self.send(self.envelope(record_id, "application", payload, tally.run_id))

    def poll_once(self) -> int:
        """Publish the next batch of change rows; return how many were sent.

        A poll that publishes is one run of the run ledger; one that finds nothing new is none.
        """
        table = self.reflect()
        if table is None:
            if not self._warned_missing:
                log.warning("approvals table not found yet; polling until it appears", table=self.mapping.table)
                self._warned_missing = True
            return 0
        column = table.c[self.mapping.cursor_column]
        query = sa.select(table).where(column > self.cursor.position).order_by(column).limit(self.batch_rows)
        with _database(self.engine.url), self.engine.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
        numbers = [int(row[self.mapping.cursor_column]) for row in rows]
        ready = self.gaps.publishable(self.cursor.position, numbers, time.monotonic())
        if not ready:
            return 0
        run = RunNotice.begin("approvals", self.source, "application", self.mapping.qualified_table, self.started_by)
        with self.publisher.announcing(run) as tally:
            sent = [
                self._publish(row, number, tally) for row, number in zip(rows[:ready], numbers[:ready], strict=True)
            ]
            self.publisher.acknowledged(sent, f"publishing {ready} approval changes")
        self.cursor = Cursor(position=numbers[ready - 1], topic_id=self.cursor.topic_id)
        self.store.save(self.cursor)
        log.info("approvals published", rows=ready, cursor=self.cursor.position)
        return ready

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; a full batch polls again at once, a failure that may heal with back-off.

        The cursor moves only after Kafka acknowledged every row before it, so a retried poll
        starts where the failed one did.
        """
        while not stop.is_set():
            try:
                for attempt in retrying(stop, "polling the approval system", first_wait_s=self.poll_seconds):
                    with attempt:
                        sent = self.poll_once()
            except RetryableError:
                return
            if sent < self.batch_rows:
                stop.wait(self.poll_seconds)

    def close(self) -> None:
        """Release the database connections and the producer."""
        self.engine.dispose()
        super().close()
