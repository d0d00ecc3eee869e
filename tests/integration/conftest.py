"""One real hub per test session: embedded Tansu broker, Faust worker, sink and connectors.

Every service runs as its own process exactly as ``gridhub up`` runs it; tests
talk to it only through its public doors (HTTP, SQL database, export files,
Kafka topics, the warehouse).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gridhub.supervisor import Stack
from tests.support.hub import Hub, hub_settings
from tests.support.postgres import throwaway_postgres


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    settings = hub_settings(tmp_path_factory.mktemp("hub"))
    with Stack(settings) as stack:
        yield Hub(settings, stack)


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLAlchemy URL of a real PostgreSQL server, stopped (and checked stopped) after the session."""
    with throwaway_postgres(tmp_path_factory.mktemp("postgres")) as url:
        yield url
