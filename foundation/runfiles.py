"""Small announcement files through which running services find each other.

Each service writes ``DATA_DIR/run/<name>.json`` (its address and pid) when it is
ready and removes it when it stops; a file whose pid is gone is stale and ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from foundation.settings import Settings


def _path(settings: Settings, name: str) -> Path:
    return settings.data_dir / "run" / f"{name}.json"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def announce(settings: Settings, name: str, **info: Any) -> None:
    """Tell other commands that this service is ready and where to reach it."""
    path = _path(settings, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"pid": os.getpid(), **info}))
    temporary.replace(path)


def withdraw(settings: Settings, name: str) -> None:
    """Remove this service's announcement."""
    _path(settings, name).unlink(missing_ok=True)


def discover(settings: Settings, name: str) -> dict[str, Any] | None:
    """The announcement of a live service, or None."""
    try:
        info = json.loads(_path(settings, name).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and pid_alive(int(info.get("pid", 0))) else None
