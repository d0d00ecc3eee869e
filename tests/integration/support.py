"""Helpers for integration tests: the running hub's doors, waiting, and valid test identities."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from foundation.settings import Settings
from gridhub.supervisor import Stack
from warehouse.reader import query

ROOT = Path(__file__).resolve().parents[2]


def hub_settings(data_dir: Path, **extra: Any) -> Settings:
    """Settings for a test hub: free ports, short batch waits, fast polling, small bulk transactions.

    Small bulk transactions make a test's few thousand export rows span several, so a crash
    can land between two of them, as it does in a million-row load.
    """
    return Settings(
        data_dir=data_dir,
        http_port=0,
        sink_query_port=0,
        sink_batch_wait_ms=100,
        sink_bulk_rows=1000,
        bulk_batch_rows=500,
        approvals_poll_seconds=0.2,
        overdue_check_seconds=1,
        approvals_overdue_check_seconds=1,
        watch_dir=data_dir / "inbox",
        watch_settle_seconds=0.5,
        **extra,
    )


@dataclass
class Hub:
    """A running hub and the doors a test uses."""

    settings: Settings
    stack: Stack

    def post(self, path: str, body: bytes | dict[str, Any], content_type: str = "application/json") -> tuple[int, dict]:
        data = json.dumps(body, ensure_ascii=False).encode() if isinstance(body, dict) else body
        request = urllib.request.Request(
            f"{self.stack.url('patrol')}{path}", data=data, headers={"Content-Type": content_type}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def sql(self, statement: str) -> list[list[Any]]:
        dead = [name for name, process in self.stack.processes.items() if process.poll() is not None]
        if dead:
            log = self.stack.log_dir / f"{dead[0]}.log"
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-8:])
            raise AssertionError(f"service {dead[0]} died; {log} ends with:\n{tail}")
        return query(self.settings, statement)["rows"]

    def scalar(self, statement: str) -> Any:
        """The first column of the first row, or None when there is no row (yet)."""
        rows = self.sql(statement)
        return rows[0][0] if rows else None

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "GRIDHUB_DATA_DIR": str(self.settings.data_dir)}
        return subprocess.run(
            [sys.executable, "-m", "gridhub", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            check=False,
        )

    def read_topic(self, topic: str, quiet_ms: int = 1500) -> list[dict[str, Any]]:
        consumer = KafkaConsumer(bootstrap_servers=self.stack.bootstrap, group_id=None, enable_auto_commit=False)
        try:
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            values = []
            while polled := consumer.poll(timeout_ms=quiet_ms):
                for messages in polled.values():
                    values.extend(json.loads(message.value) for message in messages)
            return values
        finally:
            consumer.close()


def wait_until(check: Callable[[], Any], timeout_s: float = 90, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.2)


_spots = itertools.count()


def spot() -> dict[str, float]:
    """A report location no other test report has used (about 130 m apart, inside the town).

    Reports of one category close in space and time join one case, so tests that want their own
    case must not share a spot.
    """
    number = next(_spots)
    return {"lat": round(31.952 + (number % 63) * 0.0012, 6), "lon": round(119.822 + (number // 63) * 0.0012, 6)}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


_issued: set[str] = set()


def resident_id(division: str = "320411") -> str:
    """A valid resident ID never issued before in this session."""
    import random

    from schemas.identity import resident_id_check_char

    while True:
        born = f"19{random.randint(40, 99)}{random.randint(1, 12):02d}{random.randint(1, 28):02d}"
        first17 = f"{division}{born}{random.randint(0, 999):03d}"
        code = first17 + resident_id_check_char(first17)
        if code not in _issued:
            _issued.add(code)
            return code


def mobile() -> str:
    """A valid mainland mobile number never issued before in this session.

    Deriving one from a resident ID is tempting but wrong one time in eleven: the ID's check
    character may be X.
    """
    import random

    while True:
        number = f"1{random.choice('3456789')}{random.randint(0, 999_999_999):09d}"
        if number not in _issued:
            _issued.add(number)
            return number


def uscc() -> str:
    """A valid unified social credit code never issued before in this session."""
    import random

    from schemas.identity import uscc_check_char

    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    while True:
        first17 = "91320411" + "".join(random.choice(alphabet) for _ in range(9))
        code = first17 + uscc_check_char(first17)
        if code not in _issued:
            _issued.add(code)
            return code
