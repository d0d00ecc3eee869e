"""Traffic on every lane of a running ``gridhub up`` and a checker in Jepsen's categories.

The traffic never re-sends: a report answered with anything but 202, or an export whose
``gridhub ingest`` did not print "published", was never acknowledged, and may or may not
arrive. The checker compares what was acknowledged (and what was sent at all) with what the
warehouse holds: *lost* is acknowledged but neither in the warehouse nor in the rejects,
*duplicated* is one record stored twice, *unexpected* is stored but never sent.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from foundation import runfiles
from foundation.errors import GridhubError
from foundation.settings import Settings
from simulation.demo import APPROVALS_DDL
from tests.support.hub import ROOT, post_json, report, unique
from tests.support.identities import resident_id
from tests.support.up import as_commander, town_tokens, up_env
from warehouse.reader import query

EXPORT_SOURCE = "civil-affairs"


@dataclass
class Ledger:
    """What the traffic sent and what the hub acknowledged, per lane."""

    reports_sent: set[str] = field(default_factory=set)
    reports_acknowledged: set[str] = field(default_factory=set)
    export_rows: int = 0
    export_run: str | None = None
    export_acknowledged: bool = False
    applications_written: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Account:
    """One line of the fault table."""

    acknowledged: int
    in_warehouse: int
    in_rejects: int
    lost: int
    duplicated: int
    unexpected: int


class Traffic:
    """HTTP reports, one export through ``gridhub ingest`` and approval rows, all at once, in threads."""

    def __init__(self, data_dir: Path, export: Path, export_rows: int, reports: int = 300) -> None:
        self.settings = Settings(data_dir=data_dir)
        self.export = export
        self.reports = reports
        self.ledger = Ledger(export_rows=export_rows)
        self.ingest: subprocess.Popen[str] | None = None
        self._threads = [
            threading.Thread(target=self._post_reports, daemon=True),
            threading.Thread(target=self._ingest, daemon=True),
            threading.Thread(target=self._write_applications, daemon=True),
        ]

    def start(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def join(self, timeout_s: float = 600) -> None:
        for thread in self._threads:
            thread.join(timeout_s)
            assert not thread.is_alive(), "traffic did not finish"

    def _post_reports(self) -> None:
        for number in range(self.reports):
            report_id = unique(f"FAULT-{number}")
            body = report(
                report_id,
                category="0102",
                description="垃圾堆放",
                reported_at="2026-11-25T10:00:00+08:00",
                reporter_id="GW001",
            )
            self.ledger.reports_sent.add(report_id)
            if self._post(body) == 202:
                self.ledger.reports_acknowledged.add(report_id)
            time.sleep(0.02)

    def _post(self, body: dict[str, Any]) -> int | None:
        gateway = runfiles.discover(self.settings, "patrol")
        if not gateway:
            return None
        try:
            token = town_tokens(self.settings.data_dir).phones["GW001"]
            return post_json(f"{gateway['url']}/v1/reports", body, timeout_s=60, token=token)[0]
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            return None

    def _ingest(self) -> None:
        command = [sys.executable, "-m", "gridhub", "ingest", str(self.export), "--source", EXPORT_SOURCE]
        self.ingest = subprocess.Popen(
            [*command, "--entity", "person"],
            env=up_env(self.settings.data_dir),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        output = self.ingest.communicate(timeout=600)[0]
        for line in output.splitlines():
            if line.startswith("published ") and " as run " in line:
                self.ledger.export_run = line.rsplit(" as run ", 1)[1].strip()
                self.ledger.export_acknowledged = self.ingest.returncode == 0

    def _write_applications(self) -> None:
        engine = sa.create_engine(self.settings.approvals_url)
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql(APPROVALS_DDL)
            table = sa.Table("applications", sa.MetaData(), autoload_with=engine)
            for _ in range(20):
                rows = [_application(unique("FAULT-APP")) for _ in range(10)]
                with engine.begin() as connection:
                    connection.execute(sa.insert(table), rows)
                self.ledger.applications_written.update(str(row["application_id"]) for row in rows)
                time.sleep(0.2)
        finally:
            engine.dispose()


def _application(application_id: str) -> dict[str, object]:
    return {
        "application_id": application_id,
        "item_code": "320411-XK-001",
        "item_name": "个体工商户营业执照",
        "applicant_id_number": resident_id(),
        "applicant_uscc": None,
        "status": "accepted",
        "submitted_at": "2026-11-25T09:00:00+08:00",
        "updated_at": "2026-11-25T10:00:00+08:00",
    }


def _rows(settings: Settings, statement: str) -> list[list[Any]]:
    return query(as_commander(settings), statement)["rows"]


def _ids(settings: Settings, statement: str) -> dict[str, int]:
    return {str(key): int(count) for key, count in _rows(settings, statement)}


def account(settings: Settings, ledger: Ledger) -> Account:
    """Compare the ledger with the warehouse, every lane together."""
    events = _ids(settings, "SELECT event_id, count(*) FROM events WHERE event_id LIKE 'FAULT-%' GROUP BY 1")
    rejected = _ids(
        settings,
        "SELECT source_record_id, count(*) FROM rejects WHERE source_record_id LIKE 'FAULT-%' GROUP BY 1",
    )
    applications = _ids(
        settings, "SELECT application_id, count(*) FROM applications WHERE application_id LIKE 'FAULT-APP-%' GROUP BY 1"
    )
    acknowledged = len(ledger.reports_acknowledged) + len(ledger.applications_written)
    stored = set(events) | set(rejected) | set(applications)
    lost = len((ledger.reports_acknowledged | ledger.applications_written) - stored)
    unexpected = len(set(events) - ledger.reports_sent) + len(set(applications) - ledger.applications_written)
    duplicated = sum(count - 1 for table in (events, applications) for count in table.values())
    in_warehouse = len(events) + len(applications)
    in_rejects = len(rejected)
    if ledger.export_run is not None:
        intake = _ids(
            settings,
            f"SELECT outcome, count(*) FROM intake WHERE run_id = '{ledger.export_run}' GROUP BY 1",
        )
        landed = sum(intake.values())
        if ledger.export_acknowledged:
            acknowledged += ledger.export_rows
            lost += max(ledger.export_rows - landed, 0)
        in_warehouse += landed - intake.get("rejected", 0)
        in_rejects += intake.get("rejected", 0)
    [[copies, distinct]] = _rows(
        settings,
        f"SELECT count(*), count(DISTINCT source_record_id) FROM person_sources WHERE source = '{EXPORT_SOURCE}'",
    )
    duplicated += copies - distinct
    return Account(acknowledged, in_warehouse, in_rejects, lost, duplicated, unexpected)


def settled_account(settings: Settings, ledger: Ledger, timeout_s: float = 300) -> Account:
    """The account once nothing acknowledged is missing, or as it stands when ``timeout_s`` runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            current = account(settings, ledger)
        except GridhubError:
            current = None
        if current is not None and (current.lost == 0 or time.monotonic() > deadline):
            return current
        if time.monotonic() > deadline:
            raise AssertionError("the warehouse could not be read to account for the traffic")
        time.sleep(0.5)
