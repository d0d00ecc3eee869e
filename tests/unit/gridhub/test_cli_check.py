"""``gridhub check`` and ``gridhub test`` as a user runs them: exit codes, ``-o json``, one line on error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gridhub.cli import main
from tests.support.files import write_csv

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "tests" / "mapping_cases"
WOMAN_ID = "11010519491231002X"


def gridhub(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """Run the command line in this process, as its entry point does; (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["gridhub", *argv])
    monkeypatch.setenv("COLUMNS", "200")
    try:
        main()
        code = 0
    except SystemExit as exited:
        code = int(exited.code or 0)
    printed = capsys.readouterr()
    assert "Traceback" not in printed.out + printed.err
    return code, printed.out, printed.err


@pytest.fixture
def data_dir(tmp_path: Path) -> list[str]:
    return ["--data-dir", str(tmp_path / "data")]


def test_a_file_whose_rows_all_pass_exits_0_and_shows_them(
    tmp_path: Path, data_dir: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "people.csv", ["姓名", "身份证号", "备注"], [["张三", WOMAN_ID.lower(), "x"]])
    code, out, _ = gridhub(
        ["check", str(path), "--source", "civil-affairs", "--entity", "person", *data_dir], monkeypatch, capsys
    )
    assert code == 0
    assert f"id_number={WOMAN_ID}" in out and "gender=F" in out
    assert "ignored headers: 备注" in out
    assert "1 rows: 1 accepted, 0 rejected" in out
    assert "stateless" in out


def test_a_rejected_row_exits_1_and_json_is_one_document(
    tmp_path: Path, data_dir: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(
        tmp_path / "people.csv",
        ["姓名", "身份证号"],
        [["张三", WOMAN_ID], ["李四", WOMAN_ID[:-1] + "1"], ["", WOMAN_ID]],
    )
    argv = ["check", str(path), "--source", "civil-affairs", "--entity", "person", "-o", "json", *data_dir]
    code, out, _ = gridhub(argv, monkeypatch, capsys)
    assert code == 1
    document = json.loads(out)
    assert [(row["row"], row["outcome"]) for row in document["rows"]] == [
        (1, "accepted"),
        (2, "rejected"),
        (3, "rejected"),
    ]
    assert document["rows"][0]["record"]["id_number"] == WOMAN_ID
    assert document["rows"][1]["reject"]["reason_code"] == "invalid_id_number"
    assert document["counts"] == {
        "rows": 3,
        "accepted": 1,
        "rejected": 2,
        "by_reason": {"invalid_id_number": 1, "missing_name": 1},
    }
    assert (document["source"], document["entity"], document["stateless"]) == ("civil-affairs", "person", True)
    assert document["ignored_headers"] == []
    assert document["empty_fields"] == {"phone": 1, "address": 1, "employer_uscc": 1}

    code, out, _ = gridhub([*argv, "--rejects-only"], monkeypatch, capsys)
    assert code == 1
    assert [row["row"] for row in json.loads(out)["rows"]] == [2, 3]


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["check", "{tmp}/nowhere.csv", "--source", "civil-affairs", "--entity", "person"], "no such file"),
        (["check", "{tmp}/people.csv", "--source", "civil-affairs", "--entity", "people"], "--entity must be one of"),
        (
            ["check", "{tmp}/people.csv", "--source", "hotline-1234", "--entity", "event"],
            "did you mean 'hotline-12345'",
        ),
        (["check", "{tmp}/people.csv", "--source", "police", "--entity", "event"], "lacks required column(s)"),
        (["check", "{tmp}/people.csv", "--source", "x", "--entity", "person", "-o", "xml"], "--output must be"),
        (["check", "{tmp}/people.csv", "--entity", "person"], "Missing option '--source'"),
        (["test", "{tmp}/nowhere"], "no such folder"),
        (["test", "{tmp}"], "no case.yaml"),
    ],
)
def test_what_cannot_be_checked_is_one_line_and_exit_code_2(
    argv: list[str],
    said: str,
    tmp_path: Path,
    data_dir: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_csv(tmp_path / "people.csv", ["姓名"], [["张三"]])
    code, out, err = gridhub([part.format(tmp=tmp_path) for part in argv] + data_dir, monkeypatch, capsys)
    assert code == 2
    assert said in err and out == ""


def test_gridhub_test_runs_the_shipped_cases_and_fails_on_a_changed_one(
    tmp_path: Path, data_dir: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = gridhub(["test", str(SHIPPED), *data_dir], monkeypatch, capsys)
    assert code == 0, out
    assert "PASS households-bad-id" in out and " 0 failed" in out

    case = tmp_path / "cases" / "enterprise-register"
    case.mkdir(parents=True)
    for name in ("case.yaml", "enterprises.xlsx"):
        (case / name).write_bytes((SHIPPED / "enterprise-register" / name).read_bytes())
    changed = (
        (case / "case.yaml")
        .read_text(encoding="utf-8")
        .replace("legal_representative: 周强", "legal_representative: 周弱")
    )
    (case / "case.yaml").write_text(changed, encoding="utf-8")
    code, out, _ = gridhub(["test", str(tmp_path / "cases"), *data_dir], monkeypatch, capsys)
    assert code == 1
    assert "FAIL enterprise-register" in out
    assert 'row 1: legal_representative: expected "周弱", got "周强"' in out
    assert "1 cases: 0 passed, 1 failed" in out


def test_the_installed_command_exits_with_the_check_s_verdict(tmp_path: Path) -> None:
    """The whole process, as a go-live script runs it: exit code 1 and a JSON document on stdout."""
    source = SHIPPED / "households-gbk" / "population.csv"
    argv = ["check", str(source), "--source", "public-security", "--entity", "person", "-o", "json"]
    run = subprocess.run(
        [sys.executable, "-m", "gridhub", *argv, "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 1, run.stderr
    document = json.loads(run.stdout)
    assert document["counts"]["by_reason"] == {"invalid_record": 1}
    assert document["rows"][0]["record"]["name"] == "蒋燕"  # read from GBK, the padding between the characters gone
    assert not list(tmp_path.iterdir())  # nothing written: no data folder, no journal, no log


def test_the_command_line_starts_without_the_readers_and_models_check_needs() -> None:
    """`gridhub --help` and every other command stay quick: check imports what it needs when it runs."""
    probe = "import sys, gridhub.cli; print(sorted(m for m in ('gridhub.mapping_check', 'connectors.exports', "
    probe += "'streams.normalise', 'pyarrow') if m in sys.modules))"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert run.stdout.strip() == "[]"
