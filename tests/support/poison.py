"""The poison corpus (tests/fixtures/poison): messages a stage cannot process, and the reject each must become."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from schemas.topics import APPLICATION_CHANGES, CASE_COMMANDS, RAW_BATCHES, RAW_TOPICS, sink_topics

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "poison"
WORKER_TOPICS = (*RAW_TOPICS, RAW_BATCHES, CASE_COMMANDS, APPLICATION_CHANGES)
"""Every topic the stream worker reads."""


@dataclass(frozen=True)
class Poison:
    """One message of the corpus and the reject it must end as."""

    topic: str
    file: str
    case: str
    stage: str
    reason_code: str
    rows: int = 1
    """Rejects it ends as: one per row of a batch that still reads, else one."""
    payload_kept: bool = True

    @property
    def value(self) -> bytes:
        return (CORPUS / self.topic / self.file).read_bytes()

    def __str__(self) -> str:
        return f"{self.topic}/{self.file}"


def corpus(*topics: str) -> list[Poison]:
    """The cases of ``topics`` (all of them when none is named), in the order of the index."""
    index = yaml.safe_load((CORPUS / "index.yaml").read_text(encoding="utf-8"))
    return [
        Poison(topic=topic, **case) for topic, cases in index.items() if not topics or topic in topics for case in cases
    ]


def sink_corpus() -> list[Poison]:
    """The cases of the topics the warehouse sink reads."""
    return corpus(*sink_topics())


def worker_corpus() -> list[Poison]:
    """The cases of the topics the stream worker reads."""
    return corpus(*WORKER_TOPICS)
