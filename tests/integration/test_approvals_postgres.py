"""The approvals connector on a real PostgreSQL, with its own column names and status codes.

The connector runs as its own process (``gridhub service approvals``) against the session
hub's broker, while two writers append change rows concurrently (so change numbers become
visible out of order); it is SIGKILLed mid-run and restarted, and every change row must
reach the warehouse exactly once.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from foundation.settings import Settings
from gridhub.supervisor import settings_env
from schemas import TOWN_TIMEZONE
from schemas.approvals import load_catalogue
from schemas.topics import canonical_topic
from tests.support.hub import ROOT, Hub, wait_until
from tests.support.identities import resident_id, uscc

APPLICATIONS = 1000
PATHS = (  # source status codes, one change row each; lengths 1..5 average 3 rows per application
    ("0",),
    ("0", "受理"),
    ("0", "受理", "审查中"),
    ("0", "受理", "审查中", "办结"),
    ("0", "受理", "审查中", "审查中", "不予受理"),
)
STATUS_VALUES = {"0": "submitted", "受理": "accepted", "审查中": "in_review", "办结": "approved", "不予受理": "refused"}
CHANNEL_VALUES = {"1": "window", "2": "online"}  # 受理方式: 1 窗口受理, 2 网上受理
DDL = """
CREATE TABLE {table} (
    xh BIGSERIAL PRIMARY KEY, bjbh TEXT NOT NULL, sxbm TEXT NOT NULL, sqrzjhm TEXT, tyshxydm TEXT,
    bjzt TEXT NOT NULL, sqsj TIMESTAMP NOT NULL, gxsj TIMESTAMPTZ NOT NULL, ckh INTEGER, slfs TEXT
)
"""


def mapping_file(folder: Path, table: str, **override: str) -> Path:
    columns = {
        "application_id": "bjbh",
        "item_code": "sxbm",
        "applicant_id_number": "sqrzjhm",
        "applicant_uscc": "tyshxydm",
        "status": "bjzt",
        "submitted_at": "sqsj",
        "updated_at": "gxsj",
        "window_no": "ckh",
        "channel": "slfs",
        **override,
    }
    document = {
        "table": table,
        "cursor_column": "xh",
        "columns": columns,
        "status_values": STATUS_VALUES,
        "channel_values": CHANNEL_VALUES,
    }
    path = folder / "mapping.yaml"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")  # JSON is YAML
    return path


@dataclass(frozen=True)
class Change:
    """One row the approval system appends."""

    application_id: str
    item_code: str
    person: str | None
    organisation: str | None
    code: str
    submitted: datetime
    updated: datetime
    window: int | None = None
    """The window that took it; None when it came online."""

    def values(self) -> dict[str, object]:
        return {
            "bjbh": self.application_id,
            "sxbm": self.item_code,
            "sqrzjhm": self.person,
            "tyshxydm": self.organisation,
            "bjzt": self.code,
            "sqsj": self.submitted.replace(tzinfo=None),  # TIMESTAMP without zone: town time
            "gxsj": self.updated,
            "ckh": self.window,
            "slfs": "2" if self.window is None else "1",
        }


def plan(prefix: str) -> list[Change]:
    """3,000 change rows of 1,000 applications, later changes of early applications interleaved with new ones."""
    rng = random.Random(4)
    items = sorted(load_catalogue().items)
    people = [resident_id() for _ in range(40)]
    companies = [uscc() for _ in range(20)]
    start = datetime.now(TOWN_TIMEZONE).replace(microsecond=0) - timedelta(hours=2)
    timed: list[tuple[int, int, Change]] = []
    for number in range(APPLICATIONS):
        item, as_person = rng.choice(items), rng.random() < 0.7
        person, organisation = (rng.choice(people), None) if as_person else (None, rng.choice(companies))
        submitted = start + timedelta(seconds=number)
        window = rng.randint(1, 34) if rng.random() < 0.8 else None
        for step, code in enumerate(PATHS[number % len(PATHS)]):
            updated = submitted + timedelta(minutes=step)
            change = Change(f"{prefix}-{number:04d}", item, person, organisation, code, submitted, updated, window)
            timed.append((number // 40 + step * 6, number, change))
    timed.sort(key=lambda entry: entry[:2])
    return [change for _, _, change in timed]


def write_rows(url: str, table: str, rows: list[Change], chunk: int, pause_s: float) -> None:
    """Append rows in short transactions, as the approval system does during a day."""
    engine = sa.create_engine(url)
    target = sa.Table(table, sa.MetaData(), autoload_with=engine)
    try:
        for start in range(0, len(rows), chunk):
            with engine.begin() as connection:
                connection.execute(sa.insert(target), [row.values() for row in rows[start : start + chunk]])
            time.sleep(pause_s)
    finally:
        engine.dispose()


class ConnectorProcess:
    """`gridhub service approvals` on its own data folder, pointed at PostgreSQL and the hub's broker."""

    def __init__(self, hub: Hub, folder: Path, url: str, mapping: Path) -> None:
        self.settings = Settings(
            data_dir=folder,
            approvals_db_url=url,
            approvals_mapping=mapping,
            approvals_poll_seconds=0.1,
            approvals_batch_rows=100,
            approvals_gap_wait_seconds=5,
            log_level="INFO",
        )
        self.env = settings_env(self.settings, hub.stack.bootstrap)
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "approvals.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def cursor_file(self) -> Path:
        return self.settings.state_dir / "approvals.cursor.json"

    def position(self) -> int:
        try:
            return int(json.loads(self.cursor_file.read_text())["position"])
        except (OSError, ValueError, KeyError):
            return 0

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gridhub", "service", "approvals"],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        if self.process is None or self.process.poll() is None:
            return True
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-10:])
        raise AssertionError(f"the approvals connector exited ({self.process.returncode}):\n{tail}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None


def topic_changes(hub: Hub, prefix: str) -> list[tuple[str, str, str]]:
    """(application, status, updated_at) of every new or update outcome published for these applications."""
    return [
        (message["record"]["application_id"], message["record"]["status"], message["record"]["updated_at"])
        for message in hub.read_topic(canonical_topic("application"))
        if message["record"]["application_id"].startswith(prefix)
    ]


def test_connector_killed_mid_run_on_postgres_delivers_every_change_exactly_once(
    hub: Hub, postgres_url: str, tmp_path: Path
) -> None:
    prefix = f"PG{uuid.uuid4().hex[:8]}"
    table = f"sp_bj_{prefix.lower()}"
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(DDL.format(table=table))
    rows = plan(prefix)
    assert len(rows) == 3000
    connector = ConnectorProcess(hub, tmp_path / "connector", postgres_url, mapping_file(tmp_path, table))
    # Each writer owns half of the applications, so one application's changes keep their order.
    halves = [[row for row in rows if int(row.application_id[-4:]) % 2 == part] for part in (0, 1)]
    writers = [
        threading.Thread(target=write_rows, args=(postgres_url, table, half, 50, 0.4), daemon=True) for half in halves
    ]
    try:
        connector.start()
        for writer in writers:
            writer.start()
        wait_until(lambda: connector.alive() and connector.position() >= 600, timeout_s=60, what="a partial load")
        connector.kill()
        crashed_at = connector.position()
        # Make the crash window certain: as if the last 150 acknowledged rows' cursor never reached the disk.
        connector.cursor_file.write_text(
            json.dumps({**json.loads(connector.cursor_file.read_text()), "position": crashed_at - 150})
        )
        connector.start()
        for writer in writers:
            writer.join(timeout=120)
        assert not any(writer.is_alive() for writer in writers), "the writers did not finish within 120s"
        with engine.connect() as connection:
            newest = connection.exec_driver_sql(f"SELECT max(xh) FROM {table}").scalar()
        wait_until(lambda: connector.alive() and connector.position() == newest, timeout_s=60, what="the cursor")

        def outcomes() -> dict[str, int]:
            return dict(
                hub.sql(
                    "SELECT outcome, count(*) FROM intake "
                    f"WHERE source = 'approvals' AND source_record_id LIKE '{prefix}-%' GROUP BY 1"
                )
            )

        wait_until(lambda: outcomes().get("new", 0) + outcomes().get("update", 0) >= 3000, what="every change")
        # Every row is acknowledged (the cursor is at the newest): once the hub has gone through all
        # it was given, no late duplicate or second outcome can still be on its way.
        hub.settled()
        settled = outcomes()
    finally:
        exit_code = connector.stop()
        engine.dispose()

    assert exit_code == 0, "SIGTERM stops the connector cleanly"
    assert settled.keys() <= {"new", "update", "duplicate"}, settled
    assert (settled["new"], settled["update"]) == (APPLICATIONS, 3000 - APPLICATIONS)
    assert settled["duplicate"] >= 150, "the re-sent rows were absorbed as duplicates"

    per_application = hub.sql(
        "SELECT source_record_id, count(*) FILTER (outcome = 'new'), count(*) FILTER (outcome = 'update') "
        f"FROM intake WHERE source = 'approvals' AND source_record_id LIKE '{prefix}-%' GROUP BY 1"
    )
    changes_per_application = Counter(row.application_id for row in rows)
    assert {application: (new, new + update) for application, new, update in per_application} == {
        application: (1, count) for application, count in changes_per_application.items()
    }

    published = topic_changes(hub, prefix)
    wanted = [(row.application_id, STATUS_VALUES[row.code], row.updated.isoformat()) for row in rows]
    assert sorted(published) == sorted(wanted), "each change row is published exactly once as new or update"

    final = {row.application_id: row for row in rows}
    stored = hub.sql(
        "SELECT application_id, item_code, applicant_id_number, applicant_uscc, status, "
        "epoch(submitted_at), epoch(updated_at), window_no, channel FROM applications "
        f"WHERE application_id LIKE '{prefix}-%'"
    )
    assert len(stored) == APPLICATIONS
    for application_id, item, person, organisation, status, submitted, updated, window, channel in stored:
        row = final[application_id]
        assert (item, person, organisation, status, window, channel) == (
            row.item_code,
            row.person,
            row.organisation,
            STATUS_VALUES[row.code],
            row.window,
            "online" if row.window is None else "window",
        )
        assert (submitted, updated) == (row.submitted.timestamp(), row.updated.timestamp())


def test_an_unknown_window_or_channel_code_on_postgres_is_rejected_with_its_reason(
    hub: Hub, postgres_url: str, tmp_path: Path
) -> None:
    prefix = f"PW{uuid.uuid4().hex[:8]}"
    table = f"sp_bj_{prefix.lower()}"
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(DDL.format(table=table))
    now = datetime.now(TOWN_TIMEZONE).replace(microsecond=0)
    good = Change(f"{prefix}-ok", "320411-XK-001", resident_id(), None, "0", now, now, window=9)
    stray = Change(f"{prefix}-35", "320411-XK-001", resident_id(), None, "0", now, now, window=35)
    kiosk = {**Change(f"{prefix}-kiosk", "320411-XK-001", resident_id(), None, "0", now, now).values(), "slfs": "3"}
    with engine.begin() as connection:
        target = sa.Table(table, sa.MetaData(), autoload_with=connection)
        connection.execute(sa.insert(target), [good.values(), stray.values(), kiosk])
    engine.dispose()
    connector = ConnectorProcess(hub, tmp_path / "connector", postgres_url, mapping_file(tmp_path, table))
    try:
        connector.start()

        def rejects() -> dict[str, str]:
            rows = hub.sql(
                f"SELECT source_record_id, reason_code FROM rejects WHERE source_record_id LIKE '{prefix}-%'"
            )
            return dict(rows) if len(rows) == 2 else {}

        found = wait_until(lambda: connector.alive() and rejects(), what="both rejects")
        wait_until(
            lambda: hub.scalar(f"SELECT count(*) FROM applications WHERE application_id = '{good.application_id}'"),
            what="the good one",
        )
    finally:
        connector.stop()
    assert found == {stray.application_id: "unknown_window", f"{prefix}-kiosk": "unmapped_channel"}
    facts = "SELECT window_no, channel, window_department FROM application_facts WHERE application_id = "
    assert hub.sql(f"{facts}'{good.application_id}'") == [[9, "window", "police"]]


def test_a_mapping_naming_a_missing_column_stops_the_service_with_one_line(
    hub: Hub, postgres_url: str, tmp_path: Path
) -> None:
    table = f"sp_bj_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(DDL.format(table=table))
    engine.dispose()
    mapping = mapping_file(tmp_path, table, updated_at="update_time")
    connector = ConnectorProcess(hub, tmp_path / "connector", postgres_url, mapping)
    result = subprocess.run(
        [sys.executable, "-m", "gridhub", "service", "approvals"],
        env={**connector.env, "GRIDHUB_LOG_LEVEL": "WARNING"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "'update_time' (columns.updated_at)" in lines[0] and str(mapping) in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
