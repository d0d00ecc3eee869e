"""Category routing rules, kept as data so a town can change them without a release."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from foundation.errors import ConfigurationError
from schemas.config_file import read_yaml
from schemas.grid import SQUADS
from schemas.topics import desk_unit


class RoutingError(ConfigurationError):
    """The rules file itself is wrong; the worker must not start on it."""


@dataclass(frozen=True)
class Category:
    """One event category, the department that acts on it, and its time limit.

    The limit is ``limit_hours``, calendar hours (urgent work runs through holidays), or
    ``limit_working_days`` (工作日, counted on the holiday calendar), never both: the other is None.
    """

    code: str
    name: str
    name_en: str
    department: str
    limit_hours: float | None
    limit_working_days: int | None = None


@dataclass(frozen=True)
class RoutingRules:
    """Lookup from category code (or Chinese name) to its :class:`Category`."""

    departments: dict[str, str]
    categories: dict[str, Category]
    dispatch_by_squad: frozenset[str] = frozenset()
    """Departments whose work orders go to the squad desk of the case's area (一支队伍管执法, by area)."""
    verify_on_site: frozenset[str] = frozenset()
    """Sources whose fresh reports wait for a person to accept them (12345 complaints are verified on site)."""

    def desk_of(self, department: str, squad: str | None) -> str:
        """The desk unit a case of ``department`` in ``squad``'s area is dispatched to.

        A case of a squad-dispatched department with no squad (a point outside every cell)
        goes to the department's own desk, which oversees all its squads.
        """
        return desk_unit(department, squad if department in self.dispatch_by_squad else None)

    def desk_units(self) -> tuple[str, ...]:
        """Every desk a work order can go to: each department's own, and the squad desks of those by squad."""
        by_squad = [name for name in self.departments if name in self.dispatch_by_squad]
        return (*self.departments, *(desk_unit(name, squad) for name in by_squad for squad in SQUADS))

    def resolve(self, category: str) -> Category | None:
        """Find a category by its code or by its Chinese or English name."""
        wanted = category.strip()
        if wanted in self.categories:
            return self.categories[wanted]
        folded = wanted.casefold()
        for item in self.categories.values():
            if wanted == item.name or folded == item.name_en.casefold():
                return item
        return None

    def known_codes(self) -> str:
        """A short reminder of valid codes for reject reasons."""
        return ", ".join(sorted(self.categories))


def load_rules(path: Path) -> RoutingRules:
    """Read and check the YAML rules; every category must name a declared department."""
    document = read_yaml(path, "routing rules", RoutingError, "check GRIDHUB_ROUTING_RULES")
    if not isinstance(document, dict) or "categories" not in document or "departments" not in document:
        raise RoutingError(f"{path} must have 'departments' and 'categories' sections")
    if not isinstance(document["departments"], dict) or not document["departments"]:
        raise RoutingError(f"{path}: 'departments' must map each department key to its name")
    if not isinstance(document["categories"], list) or not document["categories"]:
        raise RoutingError(f"{path}: 'categories' must be a list of category entries")
    departments = {str(key): str(value) for key, value in document["departments"].items()}
    categories: dict[str, Category] = {}
    for entry in document["categories"]:
        try:
            item = Category(
                code=str(entry["code"]),
                name=str(entry["name"]),
                name_en=str(entry.get("name_en", entry["name"])),
                department=str(entry["department"]),
                **_limit(entry),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RoutingError(f"{path}: category entry {entry!r} is incomplete ({exc})") from exc
        if item.department not in departments:
            raise RoutingError(f"{path}: category {item.code} names unknown department {item.department}")
        if item.code in categories:
            raise RoutingError(f"{path}: category code {item.code} appears twice")
        categories[item.code] = item
    return RoutingRules(
        departments=departments,
        categories=categories,
        dispatch_by_squad=_by_squad(path, document, departments),
        verify_on_site=_verified_sources(path, document),
    )


def _limit(entry: dict[str, object]) -> dict[str, float | int | None]:
    """A category's limit: ``limit_working_days`` (whole, positive), else ``limit_hours`` (24 if unsaid)."""
    days = entry.get("limit_working_days")
    if days is None:
        hours = float(entry.get("limit_hours", 24))  # type: ignore[arg-type]
        if not hours > 0:
            raise ValueError(f"limit_hours must be a positive number, not {hours}")
        return {"limit_hours": hours, "limit_working_days": None}
    if "limit_hours" in entry:
        raise ValueError("give limit_hours or limit_working_days, not both")
    if isinstance(days, bool) or not isinstance(days, int) or days <= 0:
        raise ValueError(f"limit_working_days must be a whole positive number, not {days!r}")
    return {"limit_hours": None, "limit_working_days": days}


def _by_squad(path: Path, document: dict[str, object], departments: dict[str, str]) -> frozenset[str]:
    """The optional ``dispatch_by_squad`` list; each entry must be a declared department."""
    listed = document.get("dispatch_by_squad") or []
    if not isinstance(listed, list):
        raise RoutingError(f"{path}: 'dispatch_by_squad' must be a list of department keys, got {listed!r}")
    unknown = [str(name) for name in listed if str(name) not in departments]
    if unknown:
        raise RoutingError(f"{path}: dispatch_by_squad names unknown department {', '.join(unknown)}")
    return frozenset(str(name) for name in listed)


def _verified_sources(path: Path, document: dict[str, object]) -> frozenset[str]:
    """The sources of the optional ``sources`` section marked ``verify_on_site: true``."""
    sources = document.get("sources") or {}
    if not isinstance(sources, dict) or not all(isinstance(entry, dict) for entry in sources.values()):
        raise RoutingError(f"{path}: 'sources' must map each source name to its settings ({{verify_on_site: true}})")
    for name, entry in sources.items():
        if set(entry) - {"verify_on_site"} or not isinstance(entry.get("verify_on_site", False), bool):
            raise RoutingError(f"{path}: source {name} may only set verify_on_site (true or false), not {entry!r}")
    return frozenset(str(name) for name, entry in sources.items() if entry.get("verify_on_site"))
