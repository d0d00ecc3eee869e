"""What the scenarios share within one ``gridhub bench`` run: the export files, the hubs, the ceiling.

Starting a hub costs tens of seconds and the re-sync needs the hub that took the first
load (its dedup memory lives there), so the scenarios share one *main* hub in a fixed
order; scale-out gets a fresh hub for its second leg so both legs start from the same
empty state. Only one hub runs at a time: two on 2 cores would measure each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.ceiling import measure_ceiling
from bench.data import PersonExport, person_export
from bench.hub import BenchError, BenchHub, IngestRun
from bench.probes import ProcessSampler, ProcessUsage
from bench.report import Result
from foundation.settings import Settings
from schemas.topics import RAW_BATCHES

SOURCE = "civil-affairs"
"""The department the person export comes from (the household register's keeper)."""


def expect(what: str, actual: object, expected: object) -> None:
    """A count the warehouse must hold; a wrong one invalidates the run, whatever its speed."""
    if actual != expected:
        raise BenchError(f"{what}: the warehouse holds {actual}, expected {expected}")


class Session:
    """One benchmark run: its settings, export files, main hub, first load and ceiling."""

    def __init__(self, settings: Settings, records: int, seed: int, console: Console) -> None:
        self.settings = settings
        self.records = records
        self.seed = seed
        self.console = console
        self.root = settings.data_dir / "bench"
        self.results: list[Result] = []
        self.notes: list[RenderableType] = []
        """What a scenario found that is no row of the results table (a trace, a verdict), shown after the tables."""
        self.extra: dict[str, Any] = {}
        """The same for results.json: top-level keys beside the results."""
        self.first_load: Result | None = None
        self.ceiling: Result | None = None
        self._main: BenchHub | None = None
        self._main_stack = ExitStack()

    def export(self, changed: bool = False) -> PersonExport:
        """The person export of this run's size and seed (generated once, then reused from disk)."""
        with self.console.status(f"preparing the {self.records:,}-record person export..."):
            return person_export(self.root / "data", self.records, self.seed, changed)

    def main_hub(self) -> BenchHub:
        """The hub shared by bulk, resync and incidents, started on first use."""
        if self._main is None:
            with self.console.status("starting a hub (broker, worker, sink, gateway)..."):
                self._main = self._main_stack.enter_context(BenchHub.running(self.settings, self.root / "runs"))
                self._main.wait_for_group(1)
        return self._main

    def record(self, result: Result) -> Result:
        """Keep a measurement, so it is shown and saved even if a later step fails."""
        self.results.append(result)
        return result

    def close_main_hub(self, error: BaseException | None = None) -> None:
        """Stop the main hub (before another starts, so they do not share the CPU).

        Given the error that ended the run, the hub keeps its folder and logs for inspection.
        """
        if self._main is not None:
            with self.console.status("stopping the hub..."):
                if error is None:
                    self._main_stack.close()
                else:
                    self._main_stack.__exit__(type(error), error, error.__traceback__)
            self._main = None

    @contextmanager
    def fresh_hub(self) -> Iterator[BenchHub]:
        """A hub of its own, stopped when the block ends; the main hub is stopped first."""
        self.close_main_hub()
        with ExitStack() as hubs:
            with self.console.status("starting a fresh hub..."):
                hub = hubs.enter_context(BenchHub.running(self.settings, self.root / "runs"))
                hub.wait_for_group(1)
            yield hub

    def close(self, error: BaseException | None = None) -> None:
        """Stop whatever still runs."""
        self.close_main_hub(error)

    def progress(self) -> Progress:
        """The progress display every long step shows (transient: the tables are what stays)."""
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )

    def timed_ingest(self, hub: BenchHub, path: Path, label: str) -> tuple[IngestRun, dict[str, ProcessUsage]]:
        """``gridhub ingest --wait`` of one file, with every process of the hub sampled meanwhile."""
        with ProcessSampler(hub.processes()) as sampler, self.progress() as progress:
            task = progress.add_task(label, total=self.records)

            def watch_client(pid: int) -> None:
                sampler.watch("ingest", pid)

            def advance(done: int) -> None:
                progress.update(task, completed=done)

            run = hub.ingest(path, SOURCE, on_start=watch_client, progress=advance)
        return run, sampler.usage()

    def measure_ceiling(self, hub: BenchHub) -> Result:
        """The bare aiokafka loop over the raw records the first load left on the hub's broker."""
        if self.ceiling is None:
            with ProcessSampler(hub.processes()) as sampler, self.console.status("measuring the aiokafka ceiling..."):
                messages, seconds = measure_ceiling(hub.settings, hub.bootstrap, RAW_BATCHES)
            self.ceiling = self.record(
                Result(
                    "ceiling",
                    "aiokafka consume → produce",
                    self.records,
                    seconds,
                    processes=sampler.usage(),
                    details={
                        "source_topic": RAW_BATCHES,
                        "messages": messages,
                        "producer": "aiokafka, acks=all, linger 5 ms",
                    },
                )
            )
        return self.ceiling


ScenarioRunner = Callable[[Session], None]
"""A scenario: it runs its measurements and records each with :meth:`Session.record`."""
