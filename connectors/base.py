"""The base every connector stands on: one lifecycle, one publisher, one delivery guarantee.

A connector is a door through which one source family's records enter the hub: the patrol
gateway (phones over HTTP), the approvals poller (the service centre's database), the watched
folder and the REST poller (department exports). The base owns what they share; a connector
writes only how it takes its records in (:meth:`Connector.run`).

Lifecycle, driven by :func:`foundation.service.run_service`: :meth:`~Connector.prepare` checks
the configuration and takes what the connector needs (a port, a cursor), the connector is
announced ready, :meth:`~Connector.run` takes records in until told to stop, and
:meth:`~Connector.close` flushes and releases the publisher.

Runs: each input a connector takes in (a file, a pull, a poll that found changes) is one run, told
to the warehouse's run ledger as it begins and ends through the publisher
(:meth:`~connectors.publisher.RawPublisher.announcing`); its records carry the run's id.

Delivery guarantee: *at least once*. A record is accepted (answered 202, passed by a cursor,
filed as done) only after Kafka has acknowledged it; a crash in between resends it, and the
stream and the warehouse absorb the copy as a duplicate.

Errors decide by type: what may heal (:class:`~foundation.errors.RetryableError`) is tried
again with back-off and keeps its place; input that is wrong
(:class:`~foundation.errors.InputRejected`) is refused or kept as a reject with its reason,
never retried; a wrong set-up (:class:`~foundation.errors.ConfigurationError`) stops the connector.
"""

from __future__ import annotations

from typing import Any, ClassVar

from kafka.producer.future import FutureRecordMetadata

from connectors.publisher import RawPublisher, make_envelope
from foundation.errors import RetryableError
from foundation.service import Service
from schemas.records import EntityKind, RawEnvelope


class SourceUnavailable(RetryableError):
    """The source system (a database, a department's API) did not answer; ask it again later."""


class Connector(Service):
    """A source family's door into the hub; subclasses implement :meth:`run` (and :meth:`prepare` if needed)."""

    source: ClassVar[str]
    """The source its records come from, for connectors with one (the export doors take it from each export)."""
    topic: ClassVar[str]
    """The raw topic :meth:`send` publishes to."""

    def __init__(self, publisher: RawPublisher, started_by: str | None = None) -> None:
        self.publisher = publisher
        self.started_by = started_by
        """Whose command runs the connector (a token's name), for its runs' notices; None for the hub's services."""

    def envelope(
        self, source_record_id: str, entity: EntityKind, payload: dict[str, Any], run_id: str | None = None
    ) -> RawEnvelope:
        """Wrap one payload with this connector's provenance."""
        return make_envelope(self.source, source_record_id, entity, payload, run_id)

    def send(self, envelope: RawEnvelope) -> FutureRecordMetadata:
        """Send to this connector's raw topic; the caller decides when to wait for the acknowledgement."""
        return self.publisher.publish(self.topic, envelope)

    def close(self) -> None:
        """Flush what was sent and release the producer."""
        self.publisher.close()
