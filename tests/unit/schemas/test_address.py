"""Normalised addresses: one spelling per location, and no cost to a process that never normalises one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from schemas.address import normalise_address

ROOT = Path(__file__).resolve().parents[3]


def test_spellings_of_one_house_share_one_normal_form() -> None:
    spellings = ["江苏省常州市新北区孟河镇通江路十二号", "孟河镇 通江路12号", "通江路１２号", "孟河镇通江路十二号"]
    assert {normalise_address(spelling) for spelling in spellings} == {"通江路12号"}
    assert normalise_address("小河村一组三号楼") == "小河村1组3幢"
    assert normalise_address("  、 ") is None


def test_a_command_that_reads_records_does_not_load_the_numeral_converter() -> None:
    """cn2an takes about 0.3 s to import; only the first address with a Chinese numeral loads it."""
    probe = "import sys, gridhub.cli, gridhub.ingest, schemas.records; print('cn2an' in sys.modules)"
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT, timeout=60
    )
    assert run.stdout.strip() == "False", run.stderr
