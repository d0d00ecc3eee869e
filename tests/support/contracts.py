"""Documents written under every earlier contract version (tests/fixtures/contracts), and what each must read as."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "contracts"


@dataclass(frozen=True)
class Written:
    """One document as an older gridhub wrote it, and the values the current code must read in it."""

    file: str
    contract: str
    version: int
    written_by: str
    expect: dict[str, Any] = field(default_factory=dict)

    @property
    def value(self) -> bytes:
        return (FIXTURES / self.file).read_bytes()

    @property
    def document(self) -> dict[str, Any]:
        return json.loads(self.value)

    def __str__(self) -> str:
        return self.file


def written() -> list[Written]:
    """Every document of the index, in its order."""
    return [Written(**entry) for entry in yaml.safe_load((FIXTURES / "index.yaml").read_text(encoding="utf-8"))]


def written_of(*contracts: str) -> list[Written]:
    """The documents of ``contracts``."""
    return [entry for entry in written() if entry.contract in contracts]
