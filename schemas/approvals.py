"""The catalogue of approval items (政务服务事项目录): what the service centre may be asked for.

Kept as data (``schemas/data/approval_items.yaml``) because the catalogue is published by
the province and the city and changes by notice, not by release. The stream refuses an
application for an item the catalogue does not list, the application agent takes each
item's statutory time limit to know when an application falls overdue, and the warehouse
joins applications with the catalogue in ``application_facts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from foundation import packaged
from foundation.errors import ConfigurationError
from schemas.config_file import read_yaml
from schemas.records import Application

ItemLevel = Literal["provincial", "municipal"]
LEVELS: tuple[ItemLevel, ...] = ("provincial", "municipal")
CHANGE_SEQ_FIELD = "change_seq"
"""Payload field with the approval system's change number of the row an application record came from.

Not part of the canonical application: the stream uses it to tell a re-sent old change
(after a connector crash) from a new one, which the content alone cannot do.
"""


class CatalogueError(ConfigurationError):
    """The catalogue file is wrong; services must not start on it."""


@dataclass(frozen=True)
class ApprovalItem:
    """One item of the catalogue and its statutory time limit in calendar days."""

    code: str
    name: str
    level: ItemLevel
    department: str
    department_name: str
    fully_online: bool
    time_limit_days: int

    @property
    def time_limit(self) -> timedelta:
        """The time limit as a duration: calendar days, holidays not modelled (see the YAML header)."""
        return timedelta(days=self.time_limit_days)


@dataclass(frozen=True)
class ApprovalCatalogue:
    """The items by code, and where they were read from (for messages)."""

    items: dict[str, ApprovalItem]
    path: Path

    def get(self, code: str) -> ApprovalItem | None:
        """The item with this code (surrounding spaces ignored), or None."""
        return self.items.get(code.strip())

    def check(self, application: Application) -> Application | str:
        """The application with the catalogue's item name filled in, or why its item is unknown.

        An application for an item the centre does not handle cannot have a time limit or a
        department, so it is refused rather than stored as a fact nobody can judge.
        """
        item = self.get(application.item_code)
        if item is None:
            return (
                f"approval item {application.item_code!r} is not in the catalogue {self.path.name}; "
                "check the item code in the approval system or add the item to the catalogue"
            )
        return application.model_copy(update={"item_code": item.code, "item_name": application.item_name or item.name})


def _item(entry: Any, departments: dict[str, str], path: Path) -> ApprovalItem:
    if not isinstance(entry, dict):
        raise CatalogueError(f"{path}: item entry {entry!r} must be a mapping")
    try:
        code, name, level, department = (str(entry[key]) for key in ("code", "name", "level", "department"))
        online, limit = entry["fully_online"], entry["time_limit_days"]
    except KeyError as exc:
        raise CatalogueError(f"{path}: item {entry.get('code', entry)!r} lacks {exc.args[0]!r}") from exc
    if level not in LEVELS:
        raise CatalogueError(f"{path}: item {code} has level {level!r}; use one of {', '.join(LEVELS)}")
    if department not in departments:
        raise CatalogueError(f"{path}: item {code} names department {department!r}, which 'departments' lacks")
    if not isinstance(online, bool):
        raise CatalogueError(f"{path}: item {code} needs fully_online: true or false, not {online!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise CatalogueError(f"{path}: item {code} needs a whole positive time_limit_days, not {limit!r}")
    return ApprovalItem(code, name, level, department, departments[department], online, limit)  # type: ignore[arg-type]


def load_catalogue(path: Path = packaged.APPROVAL_ITEMS) -> ApprovalCatalogue:
    """Read and check the catalogue; every problem is one :class:`CatalogueError` naming the file."""
    document = read_yaml(path, "the approval catalogue", CatalogueError, "check GRIDHUB_APPROVAL_ITEMS")
    if not isinstance(document, dict) or not isinstance(document.get("departments"), dict):
        raise CatalogueError(f"{path} must have a 'departments' mapping and an 'items' list")
    if not isinstance(document.get("items"), list) or not document["items"]:
        raise CatalogueError(f"{path}: 'items' must be a non-empty list of approval items")
    departments = {str(key): str(value) for key, value in document["departments"].items()}
    items: dict[str, ApprovalItem] = {}
    for entry in document["items"]:
        item = _item(entry, departments, path)
        if item.code in items:
            raise CatalogueError(f"{path}: item code {item.code} appears twice")
        items[item.code] = item
    return ApprovalCatalogue(items=items, path=path)
