"""Where the data files that ship with gridhub live: code tables, mappings, rules, the grid.

They sit in ``schemas/data/`` because they are part of the contracts (category codes, the case
flow, the approval catalogue, ...). Every default path to one of them is built here, so moving
the folder is a one-line change, and each file has a name a reader can search for.
"""

from __future__ import annotations

from pathlib import Path

PACKAGED_DATA = Path(__file__).resolve().parent.parent / "schemas" / "data"
"""The folder of packaged data files."""

CATEGORIES = PACKAGED_DATA / "categories.yaml"
"""Event categories and the department each is dispatched to (routing rules)."""
CASE_FLOW = PACKAGED_DATA / "case_flow.yaml"
"""The case state machine: statuses, roles and allowed transitions."""
RESOLUTION_RULES = PACKAGED_DATA / "resolution.yaml"
"""Entity resolution: source ranking per field, fuzzy matching weights and thresholds."""
APPROVAL_ITEMS = PACKAGED_DATA / "approval_items.yaml"
"""The service centre's catalogue of approval items with their time limits."""
APPROVALS_MAPPING = PACKAGED_DATA / "approvals_mapping.yaml"
"""Table, change column, columns and status codes of the approval system's exchange database."""
EXPORT_HEADERS = PACKAGED_DATA / "export_headers.yaml"
"""The standard Chinese and English headers of register exports."""
EXPORT_MAPPINGS = PACKAGED_DATA / "export_mappings.yaml"
"""Per-department column mappings of exports."""
HOLIDAYS = PACKAGED_DATA / "holidays.yaml"
"""China's public holidays and adjusted working days (调休), for deadlines in working days."""
ENFORCEMENT = PACKAGED_DATA / "enforcement.yaml"
"""The enforcement bureau: its units, officers (who are also grid inspectors), powers and case flow."""
MENGHE_GRID = PACKAGED_DATA / "menghe_grid.geojson"
"""The synthetic grid layer of Menghe town."""
REST_SOURCES_EXAMPLE = PACKAGED_DATA / "rest_sources.example.yaml"
"""An example of the REST sources file (not read unless configured)."""
