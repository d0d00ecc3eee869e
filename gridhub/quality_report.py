"""``gridhub quality report DIR``: the kept validations as one static page an operator opens offline.

The page stands in for Great Expectations' Data Docs, whose pages load their styles and scripts
from a CDN and are built from validation results the sink does not keep whole (it keeps counts,
sources and ids, never failing values). This one is a single HTML file with its CSS inline and
no script, the data beside it as JSON and CSV. Every value written into it is escaped: sources,
rules and record ids come from the input.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from html import escape
from pathlib import Path
from typing import Any

from warehouse.quality_report import Dataset, QualityReport

PAGE = "index.html"
DATA = "quality.json"
WORST_SOURCES = 20
"""Sources the page lists (the data files hold them all)."""

EXPECTATION_GLOSSES = {
    "expect_column_values_to_not_be_null": "非空 not null",
    "expect_column_values_to_match_regex": "符合格式 matches a pattern",
    "expect_column_values_to_be_in_set": "在取值集合内 in a set",
    "expect_column_values_to_be_between": "在范围内 in a range",
}
"""A short bilingual gloss of the expectation types the contract uses."""

STYLE = """
body{font-family:"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",system-ui,sans-serif;margin:2rem;color:#1f2933}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:2px solid #d9e2ec;padding-bottom:.3rem}
.en{color:#627d98;font-weight:normal;font-size:.85em}
.meta{color:#486581}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #d9e2ec;padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:#f0f4f8}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.group th{background:#d9e2ec}tr.bad td{background:#fff5f5}
code{font-size:.85em}
.cards{display:flex;gap:1rem;flex-wrap:wrap}
.card{border:1px solid #d9e2ec;border-radius:6px;padding:.6rem 1rem;min-width:10rem}
.card b{display:block;font-size:1.4rem}
.track{display:inline-block;width:12rem;height:.8rem;background:#f0f4f8}
.bar{display:block;height:100%;background:#d64545}
.none{color:#829ab1}
"""


def _text(value: Any) -> str:
    """A value as escaped text; an absent one as a dash."""
    if value is None or value == "":
        return '<span class="none">—</span>'
    return escape(str(value))


def _moment(value: Any) -> str:
    """A time as the SQL door answers it (ISO, Asia/Shanghai), to the second: ``2026-11-26 09:00:00``."""
    return _text(str(value)[:19].replace("T", " ") if value else None)


def _count(value: Any) -> str:
    return f'<td class="n">{int(value or 0):,}</td>'


def _share(part: Any, whole: Any) -> str:
    """``part`` of ``whole`` as a percentage cell; a dash when there is no whole."""
    if not whole:
        return f'<td class="n">{_text(None)}</td>'
    return f'<td class="n">{100 * float(part or 0) / float(whole):.2f}%</td>'


def _bar(part: Any, whole: Any) -> str:
    width = 100 * float(part or 0) / float(whole) if whole else 0
    return f'<span class="track"><span class="bar" style="width:{width:.1f}%"></span></span>'


def _heading(chinese: str, english: str, level: int = 2) -> str:
    return f'<h{level}>{escape(chinese)} <span class="en">{escape(english)}</span></h{level}>'


def _header(*labels: tuple[str, str]) -> str:
    cells = "".join(
        f'<th>{escape(chinese)}<br><span class="en">{escape(english)}</span></th>' for chinese, english in labels
    )
    return f"<tr>{cells}</tr>"


def _expectation(expectation_type: Any, column: Any) -> str:
    """An expectation type in code type, with its gloss, and the column it checks."""
    gloss = EXPECTATION_GLOSSES.get(str(expectation_type))
    shown = f'<br><span class="en">{escape(gloss)}</span>' if gloss else ""
    return f"<td><code>{_text(expectation_type)}</code>{shown}</td><td><code>{_text(column)}</code></td>"


def _empty(colspan: int, chinese: str, english: str) -> str:
    return f'<tr><td colspan="{colspan}" class="none">{escape(chinese)} {escape(english)}</td></tr>'


def _summary(report: QualityReport) -> str:
    days = report.days.rows
    validations = sum(int(day["validations"] or 0) for day in days)
    checked = sum(int(day["rows_checked"] or 0) for day in days)
    failing = sum(int(day["rows_failing"] or 0) for day in days)
    cards = [
        ("校验批次", "validations", f"{validations:,}"),
        ("检查行数", "rows checked", f"{checked:,}"),
        ("失败行数", "failing rows", f"{failing:,}"),
        ("失败率", "failure rate", f"{100 * failing / checked:.2f}%" if checked else "—"),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><b>{value}</b>{escape(chinese)} <span class="en">{escape(english)}</span></div>'
            for chinese, english, value in cards
        )
        + "</div>"
    )


def _expectations(report: QualityReport) -> str:
    rows: list[str] = []
    current: tuple[Any, Any] | None = None
    for row in report.expectations.rows:
        table = (row["kind"], row["target_table"])
        if table != current:
            current = table
            rows.append(
                f'<tr class="group"><th colspan="9">{_text(row["kind"])} → {_text(row["target_table"])}</th></tr>'
            )
        failing = int(row["rows_failing"] or 0)
        passed = int(row["rows_checked"] or 0) - failing
        rows.append(
            f"<tr{' class=bad' if failing else ''}>{_expectation(row['expectation_type'], row['checked_column'])}"
            f"<td>{_text(row['rule'] or row['parameters'])}</td>"
            f"{_count(row['rows_checked'])}{_count(failing)}{_share(passed, row['rows_checked'])}"
            f"{_count(row['failed_validations'])}{_count(row['validations'])}<td>{_moment(row['last_failure'])}</td></tr>"
        )
    header = _header(
        ("期望", "Expectation"),
        ("列", "Column"),
        ("规则", "Rule"),
        ("检查行数", "Rows checked"),
        ("失败行数", "Failing rows"),
        ("通过率", "Pass rate"),
        ("失败批次", "Failed batches"),
        ("校验批次", "Batches"),
        ("最近失败", "Last failure (CST)"),
    )
    body = "".join(rows) or _empty(9, "尚无期望。", "No expectations yet: the sink writes them when it starts.")
    return f"{_heading('各表期望', 'Expectations per table')}<table>{header}{body}</table>"


def _broken(row: dict[str, Any]) -> str:
    """One expectation a day's or a source's rows broke, and how many rows broke it."""
    return (
        f"<code>{_text(row['kind'])}.{_text(row['checked_column'])}</code> "
        f"<code>{_text(row['expectation_type'])}</code>: {int(row['rows_failing'] or 0):,}"
    )


def _days(report: QualityReport) -> str:
    broken: dict[str, list[str]] = defaultdict(list)
    for row in report.day_expectations.rows:
        broken[str(row["day"])].append(_broken(row))
    rows = [
        f"<tr{' class=bad' if day['rows_failing'] else ''}><td>{_text(day['day'])}</td>"
        f"{_count(day['rows_checked'])}{_count(day['rows_failing'])}{_share(day['rows_failing'], day['rows_checked'])}"
        f"<td>{_bar(day['rows_failing'], day['rows_checked'])}</td>"
        f"<td>{'<br>'.join(broken[str(day['day'])]) or _text(None)}</td></tr>"
        for day in report.days.rows
    ]
    header = _header(
        ("日期", "Day"),
        ("检查行数", "Rows checked"),
        ("失败行数", "Failing rows"),
        ("失败率", "Failure rate"),
        ("图示", "Chart"),
        ("按期望", "By expectation"),
    )
    body = "".join(rows) or _empty(6, "此期间无校验。", "No validations in this period.")
    return f"{_heading('按日失败', 'Failures over time')}<table>{header}{body}</table>"


def _sources(report: QualityReport) -> str:
    total = sum(int(row["rows_failing"] or 0) for row in report.sources.rows)
    broken: dict[Any, list[str]] = defaultdict(list)
    for row in report.source_expectations.rows:
        broken[row["source"]].append(_broken(row))
    worst = [row for row in report.sources.rows if row["rows_failing"]][:WORST_SOURCES]
    rows = [
        f"<tr><td>{_text(row['source'])}</td>{_count(row['rows_checked'])}{_count(row['rows_failing'])}"
        f"{_share(row['rows_failing'], row['rows_checked'])}{_share(row['rows_failing'], total)}"
        f"<td>{'<br>'.join(broken[row['source']]) or _text(None)}</td></tr>"
        for row in worst
    ]
    header = _header(
        ("来源", "Source"),
        ("检查行数", "Rows checked"),
        ("失败行数", "Failing rows"),
        ("失败率", "Failure rate"),
        ("占全部失败", "Share of failures"),
        ("违反的期望", "Expectations broken"),
    )
    body = "".join(rows) or _empty(6, "没有来源发送失败的行。", "No source sent a failing row.")
    return f"{_heading('最差来源', 'Worst sources')}<table>{header}{body}</table>"


def _ids(row: dict[str, Any]) -> str:
    pairs = zip(row["failing_record_uids"] or [], row["failing_source_record_ids"] or [], strict=False)
    return "<br>".join(f"{_text(uid)} / {_text(source_id)}" for uid, source_id in pairs) or _text(None)


def _failures(report: QualityReport) -> str:
    rows = []
    for row in report.failures.rows:
        sources = zip(row["failing_sources"] or [], row["failing_source_rows"] or [], strict=False)
        rows.append(
            f"<tr><td>{_moment(row['checked_at'])}</td><td>{_text(row['kind'])}</td>"
            f"{_expectation(row['expectation_type'], row['checked_column'])}"
            f"{_count(row['unexpected_count'])}{_count(row['element_count'])}"
            f"<td>{'<br>'.join(f'{_text(source)}: {int(count):,}' for source, count in sources) or _text(None)}</td>"
            f"<td>{_ids(row)}</td>"
            f"<td>{_text(row['topic'])} [{_text(row['partition'])}] @{_text(row['message_offset'])}</td></tr>"
        )
    header = _header(
        ("时间", "Checked at (CST)"),
        ("类型", "Kind"),
        ("期望", "Expectation"),
        ("列", "Column"),
        ("失败行数", "Failing rows"),
        ("检查行数", "Rows checked"),
        ("来源", "Sources"),
        ("记录（前几条）", "Records (first few): record_uid / source_record_id"),
        ("批次首条消息", "Batch's first message"),
    )
    body = "".join(rows) or _empty(9, "此期间无失败。", "No failures in this period.")
    return f"{_heading('最近失败', 'Recent failures')}<table>{header}{body}</table>"


def render(report: QualityReport) -> str:
    """The report as one self-contained HTML page (inline CSS, no script, every value escaped)."""
    period = f"自 since {report.since.isoformat()}" if report.since else "全部 all kept validations"
    files = ", ".join(f'<a href="{escape(name)}">{escape(name)}</a>' for name in (DATA, *_csv_names(report)))
    return (
        '<!doctype html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>数据质量报告 Data quality report</title><style>{STYLE}</style></head><body>"
        f"{_heading('数据质量报告', 'Data quality report', 1)}"
        f'<p class="meta">生成于 Generated {escape(report.generated_at.isoformat(timespec="seconds"))} · '
        f"范围 Period: {escape(period)} · 数据 Data: {files}</p>"
        f"{_summary(report)}{_expectations(report)}{_days(report)}{_sources(report)}{_failures(report)}"
        "</body></html>\n"
    )


def _csv_names(report: QualityReport) -> list[str]:
    return [f"{name}.csv" for name in report.datasets()]


def _cell(value: Any) -> Any:
    """A CSV cell: lists as JSON text, everything else as it is."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list) else value


def _write_csv(path: Path, dataset: Dataset) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(dataset.columns)
        writer.writerows([_cell(row[column]) for column in dataset.columns] for row in dataset.rows)


def write_report(directory: Path, report: QualityReport) -> Path:
    """Write the page, ``quality.json`` and one CSV per table into ``directory`` (made if missing); return the page."""
    directory.mkdir(parents=True, exist_ok=True)
    data = {
        "generated_at": report.generated_at.isoformat(),
        "since": report.since.isoformat() if report.since else None,
        **{name: dataset.rows for name, dataset in report.datasets().items()},
    }
    (directory / DATA).write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    for name, dataset in report.datasets().items():
        _write_csv(directory / f"{name}.csv", dataset)
    page = directory / PAGE
    page.write_text(render(report), encoding="utf-8")
    return page
