"""Send the doors' journals again: after a start or a broker restart, before the doors open.

A journal entry that is still there was acknowledged to its sender but has not been seen
landed by the sink: it may be lost with a broker that died, or only slow. Sending it again is
safe either way (the stream dedups, the warehouse writes by key and its intake ledger keeps a
record uid once), so the supervisor sends every entry, oldest first, and leaves forgetting
them to the sink once they have landed.
"""

from __future__ import annotations

import sqlite3

from connectors.publisher import RawPublisher
from foundation.journal import Journal, journal_files
from foundation.kafka_security import kafka_python_options
from foundation.logs import get_logger
from foundation.settings import Settings

log = get_logger(__name__)
_CHUNK = 200


def replay_journals(settings: Settings, bootstrap: str) -> int:
    """Send every journaled message again and wait for Kafka's acknowledgement; return how many."""
    files = journal_files(settings.journal_dir)
    if not files:
        return 0
    publisher = RawPublisher(
        bootstrap,
        "gridhub-replay",
        settings.bulk_batch_rows,
        settings.publish_timeout_s,
        client_options=kafka_python_options(settings),
    )
    sent = 0
    try:
        for path in files:
            try:
                journal = Journal(path)
            except sqlite3.OperationalError as exc:
                log.warning(
                    "journal busy or unreadable now; its records are sent at the next start",
                    journal=str(path),
                    error=str(exc),
                )
                continue
            try:
                pending = []
                for entry in journal.all_entries(_CHUNK):
                    pending.append(publisher.resend(entry))
                    if len(pending) == _CHUNK:
                        publisher.acknowledged(pending, f"sending {path.name} again")
                        sent += len(pending)
                        pending = []
                publisher.acknowledged(pending, f"sending {path.name} again")
                sent += len(pending)
            finally:
                journal.close()
    finally:
        publisher.close()
    if sent:
        log.warning("sent accepted records again from the journals", messages=sent, journals=len(files))
    return sent
