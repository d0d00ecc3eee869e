"""The hostile-query corpus for the SQL door (``tests/fixtures/hostile_sql.yaml``): query and refusal code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CORPUS = Path(__file__).parents[1] / "fixtures" / "hostile_sql.yaml"
HOSTILE: list[dict[str, Any]] = yaml.safe_load(CORPUS.read_text())
"""Each case: ``sql``, the ``code`` it is refused with, and the ``live_code`` of a role's endpoint if it differs."""
