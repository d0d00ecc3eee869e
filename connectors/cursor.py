"""A connector's persisted position, tied to the topic incarnation it was written for.

The embedded broker forgets everything when it stops, and a real cluster can
have a topic deleted and recreated. A cursor that only says "row 5,000 is sent"
would then skip rows 1–5,000 on the new topic, so it also remembers the topic
id it was sent to and restarts from the beginning when that id changes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Cursor:
    """How far a source has been published, and to which topic incarnation."""

    position: int
    topic_id: str


class CursorStore:
    """One small JSON file, replaced atomically so a crash leaves the old or the new cursor."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, topic_id: str) -> Cursor:
        """The saved cursor, or position 0 if none exists or it belongs to another topic incarnation."""
        try:
            saved = json.loads(self.path.read_text())
            cursor = Cursor(position=int(saved["position"]), topic_id=str(saved["topic_id"]))
        except (OSError, ValueError, KeyError, TypeError):
            return Cursor(position=0, topic_id=topic_id)
        return cursor if cursor.topic_id == topic_id else Cursor(position=0, topic_id=topic_id)

    def save(self, cursor: Cursor) -> None:
        """Persist durably: write a temporary file, fsync, rename over the old one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("w") as handle:
            json.dump({"position": cursor.position, "topic_id": cursor.topic_id}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self.path)
