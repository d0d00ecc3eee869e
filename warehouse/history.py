"""History of the warehouse: which relations can be read as of a past moment (being written)."""

from __future__ import annotations

AS_OF: dict[str, str] = {}
"""Relation -> the table macro that gives its rows as of a timestamp, e.g. ``people`` -> ``people_as_of``."""
