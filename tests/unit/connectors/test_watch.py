"""The watched folder takes each complete file exactly once, files it away, and survives a crash or a broker outage."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from connectors.exports import ExportFile, IngestReport
from connectors.exports.columns import ExportEntity
from connectors.exports.watch import Outcome, WatchedFolder
from foundation.errors import BrokerUnavailable, ConfigurationError
from foundation.packaged import EXPORT_MAPPINGS

PEOPLE = "姓名,公民身份号码\n张三,11010519491231002X\n"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Ingester:
    """Checks each file as the real publishing does (ExportFile) and records what it would have published.

    ``failures`` plays what goes wrong instead: an exception to raise for a file name, as often as listed.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.run_ids: list[str] = []
        self.failures: dict[str, list[BaseException]] = {}

    def __call__(self, path: Path, source: str, entity: ExportEntity, run_id: str) -> IngestReport:
        planned = self.failures.get(path.name)
        if planned:
            raise planned.pop(0)
        export = ExportFile(path, entity)
        self.calls.append((path.name, source, entity))
        self.run_ids.append(run_id)
        return IngestReport(run_id=run_id, records=sum(1 for _ in export.rows))


class Folder(WatchedFolder):
    """The watched folder with its publishing step played by an :class:`Ingester` (no Kafka in unit tests)."""

    def __init__(self, root: Path, ingester: Ingester, clock: Clock | None = None, settle_seconds: float = 2.0) -> None:
        self.outcomes: list[Outcome] = []
        super().__init__(
            None,  # type: ignore[arg-type]  # never publishes: publish_file is the ingester
            root,
            EXPORT_MAPPINGS,
            settle_seconds,
            on_outcome=self.outcomes.append,
            clock=clock or time.monotonic,
            retry_wait_s=0.01,
        )
        self.ingester = ingester

    def publish_file(self, path: Path, source: str, entity: ExportEntity, run_id: str) -> IngestReport:
        return self.ingester(path, source, entity, run_id)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ingester() -> Ingester:
    return Ingester()


@pytest.fixture
def watcher(tmp_path: Path, ingester: Ingester, clock: Clock) -> Folder:
    return Folder(tmp_path / "inbox", ingester, clock)


def drop(watcher: Folder, relative: str, text: str = PEOPLE) -> Path:
    path = watcher.root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def settle(watcher: Folder, clock: Clock) -> list[Outcome]:
    """Scan, let the settle time pass, scan again: what a quiet folder looks like to the watcher."""
    watcher.scan()
    clock.now += 2.5
    return watcher.scan()


def taken(outcomes: list[Outcome]) -> list[str]:
    return [str(outcome.relative) for outcome in outcomes]


def test_a_settled_file_is_ingested_once_and_moved_to_done(watcher: Folder, clock: Clock, ingester: Ingester) -> None:
    drop(watcher, "civil-affairs/person/households.csv")
    assert watcher.scan() == []
    clock.now += 1.0
    assert watcher.scan() == []
    clock.now += 1.5
    [outcome] = watcher.scan()

    assert ingester.calls == [("households.csv", "civil-affairs", "person")]
    assert outcome.report is not None and outcome.report.records == 1
    assert outcome.location == watcher.root / ".done/civil-affairs/person/households.csv"
    assert outcome.location.read_text(encoding="utf-8") == PEOPLE
    assert not (watcher.root / "civil-affairs/person/households.csv").exists()
    assert not list((watcher.root / ".processing").rglob("*.*"))
    clock.now += 10
    assert watcher.scan() == []
    assert len(ingester.calls) == 1


def test_a_file_still_growing_waits_until_it_stops_changing(watcher: Folder, clock: Clock) -> None:
    path = drop(watcher, "civil-affairs/person/big.csv", "姓名,公民身份号码\n")
    watcher.scan()
    for _ in range(3):
        clock.now += 1.5
        with path.open("a", encoding="utf-8") as handle:
            handle.write("张三,11010519491231002X\n")
        assert watcher.scan() == []
    assert taken(settle(watcher, clock)) == ["civil-affairs/person/big.csv"]


def test_partial_names_and_lock_files_are_left_alone_until_renamed(watcher: Folder, clock: Clock) -> None:
    partial = drop(watcher, "civil-affairs/person/households.csv.part")
    drop(watcher, "civil-affairs/person/.households.csv")
    drop(watcher, "civil-affairs/person/~$households.xlsx")
    drop(watcher, "civil-affairs/person/upload.tmp")
    assert settle(watcher, clock) == []
    partial.rename(partial.with_name("households.csv"))
    assert taken(settle(watcher, clock)) == ["civil-affairs/person/households.csv"]


@pytest.mark.parametrize(
    ("relative", "reason"),
    [
        ("loose.csv", "is not in a <source>/<entity>/ folder"),
        ("civil-affairs/loose.csv", "is not in a <source>/<entity>/ folder"),
        (
            "civil-affairs/people/households.csv",
            "must be one of person, organisation, place, object, event, enforcement_case, not 'people'",
        ),
        ("civil-affairs/person/households.xml", "unsupported export format '.xml'"),
    ],
)
def test_a_misplaced_or_unreadable_file_goes_to_failed_with_its_reason(
    watcher: Folder, clock: Clock, ingester: Ingester, relative: str, reason: str
) -> None:
    drop(watcher, relative)
    assert taken(settle(watcher, clock)) == [relative]
    failed = watcher.root / ".failed" / relative
    assert failed.read_text(encoding="utf-8") == PEOPLE
    assert reason in failed.with_name(failed.name + ".reason.txt").read_text(encoding="utf-8")
    assert ingester.calls == []


def test_a_file_missing_a_required_column_is_refused_as_a_whole(watcher: Folder, clock: Clock) -> None:
    drop(watcher, "market/organisation/no_names.csv", "统一社会信用代码,住所\n91350100M000100Y43,孟河镇\n")
    [outcome] = settle(watcher, clock)
    assert (outcome.status, outcome.report) == ("failed", None)
    assert outcome.reason is not None and "lacks required column(s) for organisation" in outcome.reason
    reason_file = watcher.root / ".failed/market/organisation/no_names.csv.reason.txt"
    assert "单位名称" in reason_file.read_text(encoding="utf-8")


def test_the_same_name_dropped_again_is_ingested_again_and_both_are_kept(watcher: Folder, clock: Clock) -> None:
    drop(watcher, "civil-affairs/person/daily.csv")
    settle(watcher, clock)
    drop(watcher, "civil-affairs/person/daily.csv", PEOPLE + "李四,11010519491231002X\n")
    [second] = settle(watcher, clock)
    assert second.report is not None and second.report.records == 2
    assert second.location.name.startswith("daily.") and second.location.suffix == ".csv"
    done = sorted(path.name for path in (watcher.root / ".done/civil-affairs/person").iterdir())
    assert done == sorted(["daily.csv", second.location.name])


def test_a_crash_mid_ingest_leaves_the_file_claimed_and_a_restart_ingests_it(
    tmp_path: Path, watcher: Folder, clock: Clock, ingester: Ingester
) -> None:
    drop(watcher, "civil-affairs/person/households.csv")
    drop(watcher, "market/organisation/enterprises.csv", "单位名称,统一社会信用代码\n汽配公司,91350100M000100Y43\n")
    ingester.failures["households.csv"] = [RuntimeError("the process died here")]
    watcher.scan()
    clock.now += 3
    with pytest.raises(RuntimeError, match="the process died here"):
        watcher.scan()
    claimed = watcher.root / ".processing/civil-affairs/person/households.csv"
    assert claimed.exists()
    assert (watcher.root / "market/organisation/enterprises.csv").exists()

    restarted = Folder(watcher.root, ingester, clock)
    assert [str(outcome.relative) for outcome in restarted.recover()] == ["civil-affairs/person/households.csv"]
    assert taken(settle(restarted, clock)) == ["market/organisation/enterprises.csv"]
    assert not claimed.exists()
    assert sorted(call[0] for call in ingester.calls) == ["enterprises.csv", "households.csv"]
    assert (watcher.root / ".done/civil-affairs/person/households.csv").exists()


def test_run_takes_files_present_at_start_and_files_dropped_later(tmp_path: Path, ingester: Ingester) -> None:
    root = tmp_path / "inbox"
    (root / "civil-affairs/person").mkdir(parents=True)
    (root / "civil-affairs/person/before.csv").write_text(PEOPLE, encoding="utf-8")
    watcher = Folder(root, ingester, settle_seconds=0.2)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        staged = root / "civil-affairs/person/after.csv.part"
        staged.write_text(PEOPLE, encoding="utf-8")
        staged.rename(root / "civil-affairs/person/after.csv")
        deadline = time.monotonic() + 30
        while len(ingester.calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive(), "run() must return once stop is set"
    assert sorted(call[0] for call in ingester.calls) == ["after.csv", "before.csv"]
    assert sorted(path.name for path in (root / ".done/civil-affairs/person").iterdir()) == ["after.csv", "before.csv"]


def test_a_broker_outage_keeps_the_file_claimed_and_publishes_it_when_the_broker_answers(
    watcher: Folder, clock: Clock, ingester: Ingester
) -> None:
    outage = [BrokerUnavailable("Kafka did not acknowledge within 30s") for _ in range(3)]
    ingester.failures["households.csv"] = outage
    drop(watcher, "civil-affairs/person/households.csv")
    [outcome] = settle(watcher, clock)

    assert outcome.status == "done"
    assert [seen.status for seen in watcher.outcomes] == ["retrying", "retrying", "retrying", "done"]
    assert all("Kafka did not acknowledge" in (seen.reason or "") for seen in watcher.outcomes[:3])
    assert all(seen.location == watcher.root / ".processing/civil-affairs/person/households.csv"
               for seen in watcher.outcomes[:3])  # fmt: skip
    assert ingester.calls == [("households.csv", "civil-affairs", "person")]
    assert (watcher.root / ".done/civil-affairs/person/households.csv").exists()
    assert not (watcher.root / ".failed").exists()


def test_stopping_during_an_outage_keeps_the_file_for_the_next_start(
    watcher: Folder, clock: Clock, ingester: Ingester
) -> None:
    stop = watcher.stopping
    ingester.failures["households.csv"] = [BrokerUnavailable("broker away"), BrokerUnavailable("broker away")]
    watcher.on_outcome = lambda outcome: (watcher.outcomes.append(outcome), stop.set())
    drop(watcher, "civil-affairs/person/households.csv")
    [outcome] = settle(watcher, clock)

    claimed = watcher.root / ".processing/civil-affairs/person/households.csv"
    assert (outcome.status, outcome.location) == ("kept", claimed)
    assert claimed.exists() and ingester.calls == []

    restarted = Folder(watcher.root, ingester, clock)
    assert [seen.status for seen in restarted.recover()] == ["done"]
    assert not claimed.exists()


def test_a_broken_set_up_stops_the_watcher_and_leaves_the_file_claimed(
    watcher: Folder, clock: Clock, ingester: Ingester
) -> None:
    ingester.failures["households.csv"] = [ConfigurationError("export mappings file is not valid YAML")]
    drop(watcher, "civil-affairs/person/households.csv")
    watcher.scan()
    clock.now += 3
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        watcher.scan()
    assert (watcher.root / ".processing/civil-affairs/person/households.csv").exists()
    assert not (watcher.root / ".failed").exists()


def test_prepare_refuses_a_broken_mappings_file(tmp_path: Path) -> None:
    broken = tmp_path / "mappings.yaml"
    broken.write_text("civil-affairs: [", encoding="utf-8")
    folder = WatchedFolder(None, tmp_path / "inbox", broken, 2.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="export mappings file"):
        folder.prepare()
