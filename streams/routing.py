"""Category routing rules, kept as data so a town can change them without a release."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from foundation.errors import ConfigurationError
from schemas.config_file import read_yaml


class RoutingError(ConfigurationError):
    """The rules file itself is wrong; the worker must not start on it."""


@dataclass(frozen=True)
class Category:
    """One event category and the department that acts on it."""

    code: str
    name: str
    name_en: str
    department: str
    limit_hours: float


@dataclass(frozen=True)
class RoutingRules:
    """Lookup from category code (or Chinese name) to its :class:`Category`."""

    departments: dict[str, str]
    categories: dict[str, Category]

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
                limit_hours=float(entry.get("limit_hours", 24)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RoutingError(f"{path}: category entry {entry!r} is incomplete ({exc})") from exc
        if item.department not in departments:
            raise RoutingError(f"{path}: category {item.code} names unknown department {item.department}")
        if item.code in categories:
            raise RoutingError(f"{path}: category code {item.code} appears twice")
        categories[item.code] = item
    return RoutingRules(departments=departments, categories=categories)
