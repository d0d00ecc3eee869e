"""``gridhub demo --days N``: days in a row through the whole hub, checked to the record and the KPIs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_three_small_days_end_to_end_add_up_to_the_record_and_the_closure_rate(tmp_path: Path) -> None:
    """Three days of 5 reports: cases run across days, and the demo's own exact checks pass (exit 0)."""
    demo = subprocess.run(
        [sys.executable, "-m", "gridhub", "demo", "--days", "3", "--events", "5", "--data-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output
    assert "3 days of Menghe town, 2026-11-23 to 2026-11-25" in output
    assert "The article's figures and this run's" in output
    assert "Case KPIs by month" in output
    assert "Traceback" not in output
