"""One real hub per test session: embedded Tansu broker, Faust worker, sink and connectors.

Every service runs as its own process exactly as ``gridhub up`` runs it; tests
talk to it only through its public doors (HTTP, SQL database, export files,
Kafka topics, the warehouse).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import Hub, hub_settings

from gridhub.supervisor import Stack


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    settings = hub_settings(tmp_path_factory.mktemp("hub"))
    with Stack(settings) as stack:
        yield Hub(settings, stack)
