"""A watched folder: departments drop export files, the hub ingests them.

Layout (the folder names say who sent what, so no file needs a side-car)::

    DIR/<source>/<entity>/households.csv     dropped by a department or a sync job
    DIR/.processing/<source>/<entity>/...    claimed, being published
    DIR/.done/<source>/<entity>/...          published (rows refused one by one are in the rejects)
    DIR/.failed/<source>/<entity>/...        refused as a whole, with ``<name>.reason.txt`` beside it

A file is taken once its size and modification time have not changed for
``settle_seconds``. Writers that may pause longer than that write to a name
the watcher ignores (``*.part``, ``*.tmp``, ``*.crdownload``, a dotfile, or
Excel's ``~$`` lock file) and rename it when complete; a rename is atomic.

Crash safety: a file is first *moved* into ``.processing`` (an atomic rename),
then published and acknowledged by Kafka, then moved on to ``.done``. A file
is therefore always in exactly one folder, and start-up first re-ingests
whatever a crash left in ``.processing``. Such a re-ingest can resend records
Kafka already has; the stream recognises them by source record id and content
fingerprint and counts them as duplicates, so nothing is lost and nothing lands
twice.

Failures, by type: a file that is wrong (no such format, a missing column, a wrong folder)
goes to ``.failed`` with its reason; a broker that is away leaves the file claimed and it is
published again with back-off until the broker answers (or, if the watcher is stopped, at the
next start); a wrong set-up (a broken mappings file) stops the watcher with the file still claimed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import watchfiles

from connectors.base import Connector
from connectors.exports import ExportFile, ExportPublisher, IngestReport
from connectors.exports.columns import EXPORT_ENTITIES, ExportEntity, load_mappings
from connectors.exports.errors import ExportRejected
from connectors.publisher import RawPublisher
from foundation.errors import InputRejected, RetryableError
from foundation.logs import get_logger
from foundation.retrying import FIRST_WAIT_S, retrying
from schemas.runs import RunNotice, new_run_id

PROCESSING, DONE, FAILED = ".processing", ".done", ".failed"
IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload", ".reason.txt")
log = get_logger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What became of one dropped file, or is becoming of it.

    ``done``: published, in ``.done``; ``failed``: refused as a whole, in ``.failed``;
    ``retrying``: the broker is away, the file stays claimed and is published again after a wait;
    ``kept``: the watcher stopped while retrying, the file stays claimed for the next start.
    """

    relative: Path
    location: Path
    status: Literal["done", "failed", "retrying", "kept"]
    report: IngestReport | None = None
    reason: str | None = None


def ignored(name: str) -> bool:
    """Names still being written, our own bookkeeping folders, and editor lock files are left alone."""
    return name.startswith((".", "~$")) or name.lower().endswith(IGNORED_SUFFIXES)


def _files(folder: Path) -> Iterator[Path]:
    for parent, folders, names in os.walk(folder):
        folders[:] = sorted(name for name in folders if not ignored(name))
        for name in sorted(names):
            if not ignored(name):
                yield Path(parent) / name


def folder_address(relative: Path) -> tuple[str, ExportEntity]:
    """Source and entity kind from the folders a file was dropped in."""
    if len(relative.parts) != 3:
        raise ExportRejected(
            f"{relative} is not in a <source>/<entity>/ folder; drop exports as "
            f"<source>/<entity>/<file> with entity one of {', '.join(EXPORT_ENTITIES)}",
            "wrong_folder",
        )
    source, entity, _ = relative.parts
    if entity not in EXPORT_ENTITIES:
        raise ExportRejected(
            f"{relative}: the folder under {source}/ names the entity kind and must be one of "
            f"{', '.join(EXPORT_ENTITIES)}, not {entity!r}",
            "wrong_folder",
        )
    return source, cast(ExportEntity, entity)


class WatchedFolder(Connector):
    """Publishes every complete file dropped into the folder, once, and files it away."""

    def __init__(
        self,
        publisher: RawPublisher,
        root: Path,
        mappings: Path,
        settle_seconds: float,
        on_outcome: Callable[[Outcome], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        retry_wait_s: float = FIRST_WAIT_S,
        started_by: str | None = None,
    ) -> None:
        super().__init__(publisher, started_by)
        self.root = root
        self.mappings = mappings
        self.settle_seconds = settle_seconds
        self.on_outcome = on_outcome
        self.clock = clock
        self.retry_wait_s = retry_wait_s
        self.stopping = threading.Event()
        """Set when the watcher is told to stop: a retry in progress gives up and keeps its file claimed."""
        self._changing: dict[Path, tuple[tuple[int, int], float]] = {}

    def prepare(self) -> dict[str, Any]:
        """Create the folder and check the mappings file before calling the watcher ready."""
        self.root.mkdir(parents=True, exist_ok=True)
        load_mappings(self.mappings)
        return {"folder": str(self.root.resolve())}

    def publish_file(self, path: Path, source: str, entity: ExportEntity, run_id: str) -> IngestReport:
        """Check one claimed file against its department's mapping and publish it; return once Kafka has it all.

        The mappings file is read for every file, so an edit takes effect without a restart. The file
        is one watch run; a file refused as a whole is a failed run (and goes to ``.failed``).
        """
        run = RunNotice.begin("watch", source, entity, path.name, self.started_by, run_id)
        return ExportPublisher(self.publisher, source).publish_run(
            run, lambda: ExportFile(path, entity, load_mappings(self.mappings).columns_for(source, entity))
        )

    def recover(self) -> list[Outcome]:
        """Finish what a crash or a stop left claimed but not filed away: publish it again."""
        claimed = self.root / PROCESSING
        return [self._process(path, path.relative_to(claimed)) for path in _files(claimed)]

    def scan(self) -> list[Outcome]:
        """Take every file that has settled since the last scan."""
        ready: list[Path] = []
        now = self.clock()
        present: set[Path] = set()
        for path in _files(self.root):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            present.add(path)
            signature = (stat.st_size, stat.st_mtime_ns)
            seen = self._changing.get(path)
            if seen is None or seen[0] != signature:
                self._changing[path] = (signature, now)
            elif now - seen[1] >= self.settle_seconds:
                ready.append(path)
        self._changing = {path: seen for path, seen in self._changing.items() if path in present}
        outcomes = []
        for path in ready:
            del self._changing[path]
            relative = path.relative_to(self.root)
            claimed = self.root / PROCESSING / relative
            if claimed.exists():
                continue
            claimed.parent.mkdir(parents=True, exist_ok=True)
            try:
                path.replace(claimed)
            except FileNotFoundError:
                continue
            outcomes.append(self._process(claimed, relative))
            if self.stopping.is_set():
                break
        return outcomes

    def run(self, stop: threading.Event) -> None:
        """Recover, take what is already there, then follow the folder until ``stop`` is set."""
        self.stopping = stop
        self.root.mkdir(parents=True, exist_ok=True)
        self.recover()
        self.scan()
        wake_ms = max(100, int(self.settle_seconds * 500))
        for _ in watchfiles.watch(
            self.root, stop_event=stop, rust_timeout=wake_ms, yield_on_timeout=True, raise_interrupt=False
        ):
            self.scan()

    def _process(self, claimed: Path, relative: Path) -> Outcome:
        run_id = new_run_id()

        def retry_later(error: RetryableError, wait_s: float) -> None:
            self._tell(Outcome(relative, claimed, "retrying", reason=f"{error}; next try in {wait_s:.0f}s"))

        try:
            source, entity = folder_address(relative)
            for attempt in retrying(self.stopping, f"publishing {relative}", retry_later, self.retry_wait_s):
                with attempt:
                    report = self.publish_file(claimed, source, entity, run_id)
        except InputRejected as exc:
            moved = self._file_away(claimed, FAILED, relative)
            moved.with_name(moved.name + ".reason.txt").write_text(
                f"{datetime.now(UTC).isoformat(timespec='seconds')} {exc}\n", encoding="utf-8"
            )
            log.warning("export refused", file=str(relative), reason=str(exc))
            return self._tell(Outcome(relative, moved, "failed", reason=str(exc)))
        except RetryableError as exc:
            log.warning("export left claimed for the next start", file=str(relative), reason=str(exc))
            return self._tell(Outcome(relative, claimed, "kept", reason=str(exc)))
        moved = self._file_away(claimed, DONE, relative)
        log.info("export ingested", file=str(relative), records=report.records, run_id=report.run_id)
        return self._tell(Outcome(relative, moved, "done", report=report))

    def _tell(self, outcome: Outcome) -> Outcome:
        if self.on_outcome:
            self.on_outcome(outcome)
        return outcome

    def _file_away(self, claimed: Path, folder: str, relative: Path) -> Path:
        """Move a claimed file to ``.done`` or ``.failed``; a name taken by an earlier file gets a time stamp."""
        target = self.root / folder / relative
        if target.exists():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            target = target.with_name(f"{target.stem}.{stamp}{target.suffix}")
        target.parent.mkdir(parents=True, exist_ok=True)
        claimed.replace(target)
        return target
