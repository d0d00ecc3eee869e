"""Department platforms feed the hub: GBK CSV and XLSX exports, a watched folder, a REST API.

Each test drives a real hub through the doors a department uses and reads the
outcome from the warehouse: the source's own copy of each record
(``<kind>_sources``), the intake ledger, and the rejects with their reasons. Each
uses a source of its own, or counts its own run where a shipped mapping names the
source, so what it counts is its own whatever else the session's hub has taken in.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import threading
from collections.abc import Iterator
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook

from tests.support.files import write_csv
from tests.support.hub import Hub, unique, wait_until
from tests.support.identities import resident_id, uscc


def birth_of(id_number: str) -> date:
    return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def excel_serial(day: date) -> int:
    return (day - date(1899, 12, 30)).days


def run_of(result: subprocess.CompletedProcess[str]) -> str:
    """The run id an ingest or pull printed ("published N records ... as run <id>")."""
    found = re.search(r"as run\s+([0-9a-f]+)", result.stdout)
    assert found, result.stdout
    return found.group(1)


def reasons_of(hub: Hub, source: str, run_id: str | None = None) -> dict[str, tuple[str, str]]:
    of_run = f" AND run_id = '{run_id}'" if run_id else ""
    rows = hub.sql(f"SELECT source_record_id, reason_code, reason FROM rejects WHERE source = '{source}'{of_run}")
    return {record_id: (code, reason) for record_id, code, reason in rows}


def test_gbk_csv_with_dates_in_register_forms_loads_and_bad_rows_are_rejected_with_reasons(
    hub: Hub, tmp_path: Path
) -> None:
    slash, chinese, compact = resident_id(), resident_id(), resident_id()
    bad_check = resident_id()
    bad_check = bad_check[:17] + ("0" if bad_check[17] != "0" else "1")
    bad_date = resident_id()
    rows = [
        ["周一", slash, f"{birth_of(slash):%Y/%-m/%-d}", "孟河镇万绥村1号"],
        ["吴二", chinese, f"{birth_of(chinese):%Y年%-m月%-d日}", "孟河镇小河村2号"],
        ["郑三", compact, f"{birth_of(compact):%Y%m%d}", "孟河镇通江村3号"],
        ["王四", bad_check, "", "孟河镇南兴村4号"],
        ["冯五", bad_date, "1990年13月1日", "孟河镇东兵村5号"],
    ]
    source = unique("civil-affairs")
    path = write_csv(tmp_path / "households.csv", ["姓名", "公民身份号码", "出生日期", "住址"], rows, encoding="gbk")

    result = hub.ingest(path, source, "person", "--wait")

    assert result.returncode == 0, result.stderr
    assert hub.outcomes(source=source) == {"new": 3, "rejected": 2}
    loaded = hub.sql(f"SELECT id_number, name, birth_date FROM person_sources WHERE source = '{source}'")
    assert sorted(loaded) == sorted([[code, name, birth_of(code).isoformat()] for name, code, *_ in rows[:3]])
    reasons = reasons_of(hub, source)
    assert reasons[bad_check][0] == "invalid_id_number"
    assert "check character" in reasons[bad_check][1]
    assert reasons[bad_date][0] == "invalid_birth_date"
    assert "'1990年13月1日' is not a calendar date" in reasons[bad_date][1]
    assert "2018年5月3日" in reasons[bad_date][1]


def test_xlsx_exports_load_with_date_cells_serials_and_the_department_mapping(hub: Hub, tmp_path: Path) -> None:
    cell, serial, text_date = resident_id(), resident_id(), resident_id()
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("户籍人口")
    sheet.append([])
    sheet.append(["姓名", "公民身份号码", "出生日期", "联系电话"])
    sheet.append(["钱六", cell, datetime.combine(birth_of(cell), datetime.min.time()), 13900000061])
    sheet.append(["孙七", serial, excel_serial(birth_of(serial)), 13900000062])
    sheet.append(["李八", text_date, "生日不详", None])
    people = tmp_path / "people.xlsx"
    workbook.save(people)
    source = unique("public-security")

    result = hub.ingest(people, source, "person", "--wait")

    assert result.returncode == 0, result.stderr
    assert hub.outcomes(source=source) == {"new": 2, "rejected": 1}
    loaded = hub.sql(f"SELECT id_number, birth_date, phone FROM person_sources WHERE source = '{source}'")
    assert sorted(loaded) == sorted(
        [[cell, birth_of(cell).isoformat(), "+8613900000061"], [serial, birth_of(serial).isoformat(), "+8613900000062"]]
    )
    assert reasons_of(hub, source)[text_date][0] == "invalid_birth_date"

    first, second = random.sample(range(320411000000, 320412000000), 2)  # parcel codes no other run uses
    parcels = Workbook(write_only=True)
    sheet = parcels.create_sheet("宗地")
    sheet.append(["宗地代码", "宗地名称", "坐落位置"])
    sheet.append([first, "万绥村一组宗地", "孟河镇万绥村一组"])
    sheet.append([str(second), "万绥村二组宗地", "孟河镇万绥村二组"])
    sheet.append([None, "无编号宗地", "孟河镇某处"])
    land = tmp_path / "parcels.xlsx"
    parcels.save(land)

    # land-resources is the source the shipped mapping names: this run's rows are told apart by their codes.
    result = hub.ingest(land, "land-resources", "place", "--wait")

    assert result.returncode == 0, result.stderr
    loaded = hub.sql(
        "SELECT place_id, place_type, address FROM place_sources "
        f"WHERE source = 'land-resources' AND place_id IN ('{first}', '{second}')"
    )
    assert sorted(loaded) == sorted(
        [[str(first), "parcel", "孟河镇万绥村一组"], [str(second), "parcel", "孟河镇万绥村二组"]]
    )
    assert hub.outcomes(run_id=run_of(result)) == {"new": 2, "rejected": 1}
    [(code, _)] = reasons_of(hub, "land-resources", run_of(result)).values()
    assert code == "missing_place_id"


def test_a_file_dropped_into_the_watched_folder_loads_and_a_refused_one_says_why(hub: Hub) -> None:
    inbox = hub.settings.watch_dir
    assert inbox is not None
    codes = [uscc() for _ in range(3)]
    table = pa.table(
        {
            "统一社会信用代码": codes,
            "企业名称": ["孟河汽配厂", "万绥米业", "小河五金"],
            "法定代表人": ["周明", "吴亮", "郑红"],
            "成立日期": pa.array([date(2001, 5, 3)] * 3, pa.date32()),
        }
    )
    source = unique("market-watch")
    folder = inbox / source / "organisation"
    folder.mkdir(parents=True, exist_ok=True)
    staged = folder / "enterprises.parquet.part"
    pq.write_table(table, staged)
    staged.rename(folder / "enterprises.parquet")
    (folder / "no_names.csv").write_text("统一社会信用代码\n" + codes[0] + "\n", encoding="utf-8")

    wait_until(lambda: (inbox / f".done/{source}/organisation/enterprises.parquet").exists(), what="the file filed")
    wait_until(
        lambda: hub.scalar(f"SELECT count(*) FROM organisation_sources WHERE source = '{source}'") == 3,
        what="the watched export in the warehouse",
    )
    assert sorted(hub.sql(f"SELECT uscc, name FROM organisation_sources WHERE source = '{source}'")) == sorted(
        [[code, name] for code, name in zip(codes, ["孟河汽配厂", "万绥米业", "小河五金"], strict=True)]
    )
    reason = inbox / f".failed/{source}/organisation/no_names.csv.reason.txt"
    wait_until(reason.exists, what="the refused file and its reason")
    assert "lacks required column(s) for organisation" in reason.read_text(encoding="utf-8")
    assert not any((inbox / ".processing" / source).rglob("*.*"))
    hub.settled()  # a record of the refused file, had one been sent, would be in the intake ledger now
    assert hub.outcomes(source=source) == {"new": 3}


@pytest.fixture
def land_api() -> Iterator[str]:
    """The land-resources platform's parcel API: 25 parcels, 10 per page, behind a token."""
    parcels = [{"zddm": f"320411009{number:03d}", "zl": f"孟河镇通江村{number}号"} for number in range(25)]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = {key: values[-1] for key, values in parse_qs(urlparse(self.path).query).items()}
            if self.headers.get("Authorization") != "Bearer land-token":
                self.send_response(401)
                self.end_headers()
                return
            page, size = int(query["pageNum"]), int(query["pageSize"])
            body = json.dumps({"code": 0, "data": {"list": parcels[(page - 1) * size : page * size]}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/parcels"
    server.shutdown()
    server.server_close()


def test_gridhub_pull_pages_through_a_rest_api_into_the_warehouse(
    hub: Hub, tmp_path: Path, land_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = unique("land-api")
    mappings = tmp_path / "mappings.yaml"
    mappings.write_text(
        f"{source}:\n  place:\n    columns: {{zddm: place_id, zl: address}}\n    defaults: {{place_type: parcel}}\n"
    )
    sources = tmp_path / "rest.yaml"
    sources.write_text(
        "sources:\n"
        f"  - {{name: parcels, source: {source}, url: '{land_api}', entity: place, records: data.list,\n"
        "     paging: {style: page, page_param: pageNum, size_param: pageSize, size: 10},\n"
        "     headers: {Authorization: 'Bearer ${LAND_TOKEN}'}}\n"
    )
    monkeypatch.setenv("GRIDHUB_REST_SOURCES", str(sources))
    monkeypatch.setenv("GRIDHUB_EXPORT_MAPPINGS", str(mappings))

    refused = hub.cli("pull", "parcels", token=hub.admin)
    assert refused.returncode == 2
    assert "needs environment variable LAND_TOKEN" in refused.stderr
    assert "Traceback" not in refused.stderr

    monkeypatch.setenv("LAND_TOKEN", "land-token")
    result = hub.cli("pull", "parcels", "--wait", token=hub.admin)
    assert result.returncode == 0, result.stderr
    assert "published 25 records" in result.stdout
    assert hub.scalar(f"SELECT count(*) FROM place_sources WHERE source = '{source}' AND place_type = 'parcel'") == 25

    again = hub.cli("pull", "parcels", "--wait", token=hub.admin)
    assert again.returncode == 0, again.stderr
    assert hub.outcomes(source=source) == {"new": 25, "duplicate": 25}
