"""Hand the open cases back to a new embedded broker, from the warehouse, before the doors open.

The embedded broker keeps the case agent's tables (their changelogs) in memory, so a broker
that starts afresh (every ``gridhub up``, and the supervisor's restart of a dead one) would
forget every open case: a desk's update to one would be refused as an unknown case, and a
second report of an open problem would open another case. The warehouse holds every case, so
the supervisor reads the unfinished ones through the sink and sends each back twice: to the
case agent as a restore command (with the reports behind it), and onto ``canonical.case``,
which the gateways follow, with the lineage the warehouse kept. A real Kafka cluster keeps the
changelogs, so this runs only for the embedded broker.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from connectors.publisher import RawPublisher
from foundation.kafka_security import kafka_python_options
from foundation.logs import get_logger
from foundation.settings import Settings
from schemas.messages import restored_message
from schemas.records import CaseRecord, Event
from schemas.topics import CASE_COMMANDS, canonical_topic
from streams.case_flow import load_flow
from streams.cases import restore_message
from warehouse.decode import LINEAGE
from warehouse.reader import query
from warehouse.sql import sql_literal

log = get_logger(__name__)


def _rows(settings: Settings, statement: str) -> list[dict[str, Any]]:
    answer = query(settings, statement)
    return [dict(zip(answer["columns"], row, strict=True)) for row in answer["rows"]]


def _fields(row: dict[str, Any], model: type[CaseRecord] | type[Event]) -> dict[str, Any]:
    return {name: row[name] for name in model.model_fields if name in row}


def restore_open_cases(settings: Settings, bootstrap: str) -> int:
    """Send every unfinished case the warehouse holds back to the case agent and onto ``canonical.case``."""
    finished = ", ".join(sql_literal(status) for status in sorted(load_flow().terminals))
    open_cases = f"SELECT * FROM cases WHERE status NOT IN ({finished})"
    cases = _rows(settings, open_cases)
    if not cases:
        return 0
    reports: dict[str, list[Event]] = defaultdict(list)
    for row in _rows(settings, f"SELECT * FROM events WHERE case_id IN (SELECT case_id FROM ({open_cases}))"):
        reports[row["case_id"]].append(Event.model_validate(_fields(row, Event)))
    publisher = RawPublisher(
        bootstrap,
        "gridhub-restore",
        settings.bulk_batch_rows,
        settings.publish_timeout_s,
        client_options=kafka_python_options(settings),
    )
    try:
        sent = []
        for row in cases:
            record = CaseRecord.model_validate(_fields(row, CaseRecord))
            key = record.case_id.encode()
            command = restore_message(record, reports[record.case_id])
            sent.append(publisher.publish_value(CASE_COMMANDS, command, key=key))
            lineage = {name: row.get(name) for name in LINEAGE}
            sent.append(publisher.publish_value(canonical_topic("case"), restored_message(record, lineage), key=key))
        publisher.acknowledged(sent, f"restoring {len(cases)} open cases")
    finally:
        publisher.close()
    log.warning("open cases handed back to the new broker from the warehouse", cases=len(cases))
    return len(cases)
