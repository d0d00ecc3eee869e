"""An unchanged re-sync skips validation, survives a worker crash, and still accounts for every row.

Each row the worker skips reaches the warehouse's intake ledger as a duplicate with reason
``seen_before``; a changed row is validated and lands as an update; an invalid row is refused
every time, since the memory only learns rows the worker accepted.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

from schemas.topics import BULK_SEEN
from streams.seen_rows import Learned, record_key
from tests.support.files import write_csv
from tests.support.hub import Hub, unique, wait_until
from tests.support.identities import resident_id

HEADER = ["姓名", "公民身份号码", "住址"]
SIZE = 300
CHANGED = 3


def ingest(hub: Hub, path: Path, source: str) -> str:
    """``gridhub ingest --wait`` (every row accounted for when it returns); the run's id."""
    result = hub.ingest(path, source, "person", "--wait")
    assert result.returncode == 0, result.stderr
    return re.search(r"as run ([0-9a-f]+)", result.stdout).group(1)  # type: ignore[union-attr]


def counts(hub: Hub, run_id: str) -> dict[tuple[str, str | None], int]:
    rows = hub.sql(f"SELECT outcome, reason_code, count(*) FROM intake WHERE run_id = '{run_id}' GROUP BY 1, 2")
    return {(outcome, reason): count for outcome, reason, count in rows}


def persisted_keys(hub: Hub) -> set[int]:
    """Every record key the worker has put on ``bulk.seen`` so far."""
    return {key for message in hub.messages(BULK_SEEN) for key in Learned.decode(message.value).keys}


def test_an_unchanged_resync_is_skipped_before_and_after_a_worker_crash_and_changes_land(
    hub: Hub, tmp_path: Path
) -> None:
    source = unique("civil-affairs")
    ids = [resident_id() for _ in range(SIZE)]
    broken = ids[0][:17] + ("0" if ids[0][17] != "0" else "1")
    people = [[f"居民{number}", code, "孟河镇"] for number, code in enumerate(ids)]
    path = write_csv(tmp_path / "register.csv", HEADER, [*people, ["错号", broken, "孟河镇"]])
    refused = ("rejected", "invalid_id_number")

    first = ingest(hub, path, source)
    assert counts(hub, first) == {("new", None): SIZE, refused: 1}

    again = ingest(hub, path, source)
    assert counts(hub, again) == {("duplicate", "seen_before"): SIZE, refused: 1}

    keys = {record_key(source, "person", code) for code in ids}
    wait_until(lambda: keys <= persisted_keys(hub), what="the worker's memory of the register on bulk.seen")
    worker = hub.stack.processes["worker"]
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    hub.stack.restart("worker")

    after_crash = ingest(hub, path, source)
    assert counts(hub, after_crash) == {("duplicate", "seen_before"): SIZE, refused: 1}

    for row in people[:CHANGED]:
        row[2] = "孟河镇东兵村"
    write_csv(path, HEADER, [*people, ["错号", broken, "孟河镇"]])
    changed = ingest(hub, path, source)
    assert counts(hub, changed) == {("duplicate", "seen_before"): SIZE - CHANGED, ("update", None): CHANGED, refused: 1}
    addresses = dict(hub.sql(f"SELECT id_number, address FROM people WHERE id_number IN {tuple(ids[: CHANGED + 1])}"))
    assert addresses == {**dict.fromkeys(ids[:CHANGED], "孟河镇东兵村"), ids[CHANGED]: "孟河镇"}
    assert hub.scalar(f"SELECT count(*) FROM rejects WHERE source = '{source}'") == 4
