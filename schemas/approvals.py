"""The catalogue of approval items (政务服务事项目录): what the service centre may be asked for.

Kept as data (``schemas/data/approval_items.yaml``) because the catalogue is published by
the province and the city and changes by notice, not by release. The stream refuses an
application for an item the catalogue does not list, the application agent takes each
item's statutory time limit to know when an application falls overdue, and the warehouse
joins applications with the catalogue in ``application_facts``.

The centre's service windows (服务窗口) are kept in the same file: each names a department and
may name the items it takes, so they are checked against the catalogue they belong to, and an
application taken at a window must name one of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from foundation import packaged
from foundation.errors import ConfigurationError, InputRejected
from schemas.config_file import read_yaml
from schemas.records import Application
from schemas.working_time import WorkingCalendar

ItemLevel = Literal["provincial", "municipal"]
LimitUnit = Literal["calendar_days", "working_days"]
LIMIT_UNITS: tuple[LimitUnit, ...] = ("calendar_days", "working_days")
LEVELS: tuple[ItemLevel, ...] = ("provincial", "municipal")
CHANGE_SEQ_FIELD = "change_seq"
"""Payload field with the approval system's change number of the row an application record came from.

Not part of the canonical application: the stream uses it to tell a re-sent old change
(after a connector crash) from a new one, which the content alone cannot do.
"""


class CatalogueError(ConfigurationError):
    """The catalogue file is wrong; services must not start on it."""


class NotInCatalogue(InputRejected):
    """An application the catalogue cannot judge: its item, its window, or the item at that window.

    ``reason_code`` says which: ``unknown_item``, ``unknown_window``, ``item_not_at_window``, or
    ``online_with_window`` (taken online, yet naming a window).
    """

    reason_code = "unknown_item"


@dataclass(frozen=True)
class ApprovalItem:
    """One item of the catalogue and its statutory time limit, in calendar or working days."""

    code: str
    name: str
    level: ItemLevel
    department: str
    department_name: str
    fully_online: bool
    time_limit_days: int
    time_limit_unit: LimitUnit = "calendar_days"

    def due_at(self, submitted_at: datetime, calendar: WorkingCalendar) -> datetime:
        """When an application submitted at ``submitted_at`` falls due.

        Calendar days are N x 24 h from submission; working days end at midnight after the Nth working
        day that follows the submission's day (:meth:`WorkingCalendar.add_working_days`). The
        warehouse's ``application_facts`` computes the same instant from the same calendar.
        """
        if self.time_limit_unit == "working_days":
            return calendar.add_working_days(submitted_at, self.time_limit_days)
        return submitted_at + timedelta(days=self.time_limit_days)


@dataclass(frozen=True)
class ServiceWindow:
    """One window of the service centre: who staffs it, who sits at it, and what it may take."""

    window_no: int
    department: str
    department_name: str
    clerk_id: str
    clerk_name: str
    items: frozenset[str] | None
    """Codes of the items it may take; None for every item (一窗受理, the centre's rule)."""

    def takes(self, code: str) -> bool:
        """Whether an application for this item may be taken here."""
        return self.items is None or code in self.items


@dataclass(frozen=True)
class ApprovalCatalogue:
    """The items by code, the windows by number, and where they were read from (for messages)."""

    items: dict[str, ApprovalItem]
    path: Path
    windows: dict[int, ServiceWindow] = field(default_factory=dict)

    def get(self, code: str) -> ApprovalItem | None:
        """The item with this code (surrounding spaces ignored), or None."""
        return self.items.get(code.strip())

    def check(self, application: Application) -> Application:
        """The application with the catalogue's item name filled in; :class:`NotInCatalogue` when it cannot be judged.

        An application for an item the centre does not handle cannot have a time limit or a
        department, and one from a window the centre does not have cannot be counted for any
        window, so both are refused rather than stored as facts nobody can judge. A fully online
        item taken at a window is accepted: 不见面审批 spares the applicant the visit, it does not
        turn away one who comes, and the KPIs' online share shows how many did not.
        """
        item = self.get(application.item_code)
        if item is None:
            raise NotInCatalogue(
                f"approval item {application.item_code!r} is not in the catalogue {self.path.name}; "
                "check the item code in the approval system or add the item to the catalogue"
            )
        number = application.window_no
        if number is not None:
            if application.channel == "online":
                raise NotInCatalogue(
                    f"application taken online names window {number}; an online application has no window",
                    "online_with_window",
                )
            window = self.windows.get(number)
            if window is None:
                raise NotInCatalogue(
                    f"window {number} is not among the {len(self.windows)} windows of {self.path.name}; "
                    "check the window number in the approval system or add the window to the catalogue",
                    "unknown_window",
                )
            if not window.takes(item.code):
                raise NotInCatalogue(
                    f"window {number} ({window.department_name}) does not take item {item.code} {item.name}; "
                    f"list it in the window's items in {self.path.name} or take it at another window",
                    "item_not_at_window",
                )
        return application.model_copy(update={"item_code": item.code, "item_name": application.item_name or item.name})


def _item(entry: Any, departments: dict[str, str], path: Path, unit: str) -> ApprovalItem:
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
    unit = str(entry.get("time_limit_unit", unit))
    if unit not in LIMIT_UNITS:
        raise CatalogueError(f"{path}: item {code} has time_limit_unit {unit!r}; use one of {', '.join(LIMIT_UNITS)}")
    return ApprovalItem(code, name, level, department, departments[department], online, limit, unit)  # type: ignore[arg-type]


def _window(entry: Any, departments: dict[str, str], items: dict[str, ApprovalItem], path: Path) -> ServiceWindow:
    if not isinstance(entry, dict):
        raise CatalogueError(f"{path}: window entry {entry!r} must be a mapping")
    try:
        number, department = entry["number"], str(entry["department"])
        clerk_id, clerk_name = str(entry["clerk_id"]), str(entry["clerk_name"])
    except KeyError as exc:
        raise CatalogueError(f"{path}: window {entry.get('number', entry)!r} lacks {exc.args[0]!r}") from exc
    if isinstance(number, bool) or not isinstance(number, int) or number <= 0:
        raise CatalogueError(f"{path}: window number {number!r} must be a whole positive number")
    if department not in departments:
        raise CatalogueError(f"{path}: window {number} names department {department!r}, which 'departments' lacks")
    listed = entry.get("items", "all")
    if listed == "all":
        return ServiceWindow(number, department, departments[department], clerk_id, clerk_name, None)
    if not isinstance(listed, list) or not listed:
        raise CatalogueError(f"{path}: window {number} needs items: all or a non-empty list of item codes")
    unknown = sorted({str(code) for code in listed} - set(items))
    if unknown:
        raise CatalogueError(f"{path}: window {number} lists item(s) {', '.join(unknown)}, which 'items' lacks")
    codes = frozenset(str(code) for code in listed)
    return ServiceWindow(number, department, departments[department], clerk_id, clerk_name, codes)


def load_catalogue(path: Path = packaged.APPROVAL_ITEMS) -> ApprovalCatalogue:
    """Read and check the catalogue and its windows; every problem is one :class:`CatalogueError` naming the file."""
    document = read_yaml(path, "the approval catalogue", CatalogueError, "check GRIDHUB_APPROVAL_ITEMS")
    if not isinstance(document, dict) or not isinstance(document.get("departments"), dict):
        raise CatalogueError(f"{path} must have a 'departments' mapping and an 'items' list")
    if not isinstance(document.get("items"), list) or not document["items"]:
        raise CatalogueError(f"{path}: 'items' must be a non-empty list of approval items")
    departments = {str(key): str(value) for key, value in document["departments"].items()}
    unit = str(document.get("time_limit_unit", "calendar_days"))
    if unit not in LIMIT_UNITS:
        raise CatalogueError(f"{path}: time_limit_unit {unit!r} must be one of {', '.join(LIMIT_UNITS)}")
    items: dict[str, ApprovalItem] = {}
    for entry in document["items"]:
        item = _item(entry, departments, path, unit)
        if item.code in items:
            raise CatalogueError(f"{path}: item code {item.code} appears twice")
        items[item.code] = item
    if not isinstance(document.get("windows", []), list):
        raise CatalogueError(f"{path}: 'windows' must be a list of service windows")
    windows: dict[int, ServiceWindow] = {}
    for entry in document.get("windows", []):
        window = _window(entry, departments, items, path)
        if window.window_no in windows:
            raise CatalogueError(f"{path}: window number {window.window_no} appears twice")
        windows[window.window_no] = window
    return ApprovalCatalogue(items=items, path=path, windows=windows)
