// The command centre's screen: the grid map, the live feed, the KPIs and the drill-downs, from the hub's own JSON.
// Every value reaches the page through textContent or an attribute, never as markup: report texts are the town's
// free text, and nothing a reporter typed may run here.
"use strict";

const LABELS = {
  zh: {
    title: "孟河镇联动指挥中心", token: "令牌", enter: "进入", logout: "退出", map: "网格地图", onTime: "未超时",
    dueSoon: "临近时限", overdue: "已超时", kpi: "案件考核指标", by: "按", squad: "片区", department: "部门",
    grid: "网格", worker: "网格员", openCases: "在办案件", switchTo: "English", day: "日期", today: "当日",
    thisMonth: "本月", trend: "近30日趋势", feed: "实时动态", patrol: "巡查考核(按片区)", approvals: "审批服务",
    dedicatedCell: "专属网格", tracks: "巡查轨迹(近1小时)", search: "查询",
    searchHint: "身份证号、信用代码、地址或编号", person: "人", organisation: "组织", place: "地", object: "物",
    masked: "个人信息已脱敏", whole: "可见完整个人信息（查询留痕）", period: "统计期", cases: "案件",
    workers: "网格员", counts: "基础数据", reports: "上报", transitions: "流转", involved: "涉及对象", enforcement: "执法案件",
    redispatch: "改派", extend: "延期", cancel: "作废", newDue: "新时限", note: "说明", sent: "已提交，等待处理…",
    applied: "已生效", refused: "未生效", overdueAlert: "超时预警", lineage: "主数据", copies: "来源记录",
    links: "关联", reviews: "待确认匹配", notFound: "未找到", photos: "照片", none: "无", due: "时限",
    squads: { wansui: "万绥片区", mengcheng: "孟城片区", xiaohe: "小河片区" },
    kinds: {
      report: "新上报", merge: "合并上报", dispatch: "派遣", redispatch: "改派", close: "结案", cancel: "作废",
      extend: "延期", overdue: "超时", reject: "不予立案", start: "开始处置", handle: "处置完成", verify: "核查通过",
      rework: "返工", decline: "回退", restart: "重新处置", resume: "恢复处置", park: "挂账", unpark: "恢复办理",
    },
    statuses: {
      reported: "已上报", accepted: "立案", dispatched: "派遣", in_handling: "处置中", extended: "延期",
      handled: "已处置", verified: "核查通过", closed: "结案", returned: "回退/返工", rejected: "不予立案",
      cancelled: "作废", parked: "挂账",
    },
    columns: {
      case_id: "案件", category_name: "类别", department: "部门", squad: "片区", status: "状态",
      reported_at: "上报时间", due_at: "时限", group_key: "分组", cases_due: "应结案数", closed: "结案数",
      closed_on_time: "按期结案数", closure_rate: "结案率", on_time_rate: "按期结案率", rework_rate: "返工率",
      median_hours_to_close: "结案用时中位数(时)", p90_hours_to_close: "结案用时P90(时)", grid_code: "网格",
      worker: "网格员", day: "日期", parked: "挂账数", escalated: "督办数", escalation_rate: "督办率", workers: "网格员数", patrolling: "有巡查", compliant: "达标",
      compliance_rate: "达标率", own_cell_share: "本网格覆盖率", case_no: "执法案件编号", power_name: "执法事项",
      officer_id: "承办人", party_name: "当事人", filed_at: "立案时间", decided_at: "决定时间", decision: "处理决定", overdue: "超时", online_share: "网办占比",
      received: "受理", in_progress: "在办", overdue_in_progress: "在办超时",
      finished: "办结", finished_on_time: "按时办结", fully_online_share: "全程网办占比", period: "统计期",
      places: "地", people: "人", organisations: "组织", objects: "物", closed_at: "结案时间",
      event_id: "上报编号", description: "描述", reporter_id: "上报人", seq: "序号", from_status: "原状态",
      to_status: "新状态", action: "动作", actor: "操作人", actor_role: "角色", at: "时间", note: "说明",
      kind: "类型", key: "编号", evidence: "依据", field: "字段", value: "值", source: "来源",
    },
  },
  en: {
    title: "Menghe linked command centre", token: "Token", enter: "Enter", logout: "Log out", map: "Grid map",
    onTime: "in time", dueSoon: "due soon", overdue: "overdue", kpi: "Case KPIs", by: "by", squad: "squad",
    department: "department", grid: "grid cell", worker: "grid worker", openCases: "Open cases", switchTo: "中文",
    day: "Day", today: "that day", thisMonth: "that month", trend: "Last 30 days", feed: "Live feed",
    patrol: "Patrol compliance by squad", approvals: "Approvals", dedicatedCell: "dedicated cell",
    tracks: "patrol tracks (last hour)", search: "Search", searchHint: "ID, credit code, address or key",
    person: "person", organisation: "organisation", place: "place", object: "object",
    masked: "personal data masked", whole: "personal data shown whole (reads are audited)", period: "period",
    cases: "Cases", workers: "Grid workers", counts: "Base data", reports: "Reports", transitions: "Steps",
    involved: "Involved", enforcement: "Enforcement cases", redispatch: "Re-dispatch", extend: "Extend", cancel: "Cancel", newDue: "new deadline",
    note: "note", sent: "sent, waiting for the case flow…", applied: "applied", refused: "refused",
    overdueAlert: "Overdue", lineage: "Golden record", copies: "Source copies", links: "Links",
    reviews: "Matches to review", notFound: "Not found", photos: "Photos", none: "none", due: "due",
    kinds: {
      report: "new report", merge: "merged report", dispatch: "dispatched", redispatch: "re-dispatched",
      close: "closed", cancel: "cancelled", extend: "extended", overdue: "overdue", reject: "rejected",
      start: "handling", handle: "handled", verify: "verified", rework: "rework", decline: "returned",
      restart: "handling again", resume: "resumed", park: "parked", unpark: "taken up again",
    },
    statuses: {},
    squads: { wansui: "Wansui squad", mengcheng: "Mengcheng squad", xiaohe: "Xiaohe squad" },
    columns: {
      case_id: "case", category_name: "category", department: "department", squad: "squad", status: "status",
      reported_at: "reported", due_at: "due", cases_due: "cases due", closed: "closed", closed_on_time: "closed on time",
      closure_rate: "closure rate", on_time_rate: "on-time rate", rework_rate: "rework rate",
      median_hours_to_close: "median hours to close", p90_hours_to_close: "p90 hours to close", grid_code: "grid cell",
      worker: "grid worker", day: "day", workers: "workers", patrolling: "patrolling", compliant: "compliant",
      compliance_rate: "compliance rate", own_cell_share: "own-cell coverage", case_no: "case number",
      power_name: "power", officer_id: "officer", party_name: "party", filed_at: "filed", decided_at: "decided",
      decision: "decision", overdue: "overdue",
      online_share: "online", received: "received", in_progress: "in progress",
      overdue_in_progress: "overdue in progress", finished: "finished", finished_on_time: "finished on time",
      fully_online_share: "fully online", period: "period", places: "places", people: "people",
      organisations: "organisations", objects: "objects", closed_at: "closed", event_id: "report",
      description: "description", reporter_id: "reporter", seq: "step", from_status: "from", to_status: "to",
      action: "action", actor: "actor", actor_role: "role", at: "at", note: "note", kind: "kind", key: "key",
      evidence: "evidence", field: "field", value: "value", source: "source",
    },
  },
};
const KPI_MEASURES = ["cases_due", "closed", "closure_rate", "on_time_rate", "rework_rate", "median_hours_to_close"];
const TREND_MEASURES = ["cases_due", "closure_rate", "on_time_rate", "rework_rate", "median_hours_to_close"];
const SHARES = /(_rate|_share)$/;
const SVG = "http://www.w3.org/2000/svg";
// Every moment is shown on the town's clock (Asia/Shanghai), whatever the viewer's machine is set to.
const TOWN_TIME = new Intl.DateTimeFormat("sv-SE", {
  timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
});
const state = { grid: null, me: null, language: "zh", cases: [], refreshing: null, alertTimer: null };

const label = (key) => LABELS[state.language][key] ?? LABELS.zh[key] ?? key;
const nested = (group, key) => LABELS[state.language][group][key] ?? (state.language === "zh" ? null : key) ?? LABELS.zh[group][key] ?? key;
const column = (name) => LABELS[state.language].columns[name] ?? (state.language === "zh" ? LABELS.zh.columns[name] : null) ?? name;
const statusName = (status) => (status ? nested("statuses", status) : "");

const MOMENT = /^\d{4}-\d\d-\d\d[T ]\d\d:\d\d/;
// The warehouse writes "2026-11-25 01:00:00+00"; Date wants "2026-11-25T01:00:00+00:00".
const moment = (value) => new Date(value.replace(" ", "T").replace(/([+-]\d\d)$/, "$1:00"));

function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function show(value, name) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number" && SHARES.test(name)) return `${(value * 100).toFixed(1)}%`;
  if (Array.isArray(value)) return value.join(", ");
  if (typeof value === "string" && MOMENT.test(value)) return TOWN_TIME.format(moment(value));
  return String(value);
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401) throw new Error("login");
  const answer = await response.json();
  if (!response.ok) throw Object.assign(new Error(answer.reason ?? response.statusText), { answer, status: response.status });
  return answer;
}

function relabel() {
  document.querySelectorAll("[data-label]").forEach((node) => { node.textContent = label(node.dataset.label); });
  document.querySelectorAll("[data-placeholder]").forEach((node) => { node.placeholder = label(node.dataset.placeholder); });
  document.getElementById("language").textContent = label("switchTo");
  document.documentElement.lang = state.language === "zh" ? "zh-CN" : "en";
  document.title = `${label("title")} · gridhub`;
}

// --- the map ---------------------------------------------------------------------------------------------------

function rings(geometry) {
  if (geometry.type === "Polygon") return geometry.coordinates;
  if (geometry.type === "MultiPolygon") return geometry.coordinates.flat();
  return [];
}

function projection(features, width, height) {
  const bounds = [Infinity, Infinity, -Infinity, -Infinity];
  for (const feature of features) {
    for (const [lon, lat] of rings(feature.geometry).flat()) {
      bounds[0] = Math.min(bounds[0], lon); bounds[1] = Math.min(bounds[1], lat);
      bounds[2] = Math.max(bounds[2], lon); bounds[3] = Math.max(bounds[3], lat);
    }
  }
  // Longitude degrees are shorter than latitude degrees this far north: scale them so the town keeps its shape.
  const squash = Math.cos(((bounds[1] + bounds[3]) / 2) * Math.PI / 180);
  const scale = Math.min(width / ((bounds[2] - bounds[0]) * squash), height / (bounds[3] - bounds[1]));
  return ([lon, lat]) => [(lon - bounds[0]) * squash * scale, height - (lat - bounds[1]) * scale];
}

function svg(tag, attributes, title) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (title) node.append(Object.assign(document.createElementNS(SVG, "title"), { textContent: title }));
  return node;
}

function urgency(item) {
  if (!item.due_at) return "on-time";
  const left = moment(item.due_at) - Date.now();
  const span = moment(item.due_at) - moment(item.reported_at);
  if (left < 0) return "overdue";
  return left < span / 4 ? "due-soon" : "on-time";
}

function drawMap(tracks) {
  const map = document.getElementById("map");
  const width = 1000, height = 800;
  map.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const toXY = projection(state.grid.features, width, height);
  const cells = svg("g", { class: "cells" });
  const squads = squadsOf(state.grid);
  const ordered = [...state.grid.features].sort((a) => (a.properties.kind === "dedicated" ? 1 : -1));
  const communities = new Map();
  for (const feature of ordered) {
    const { code, name, kind, community, squad } = feature.properties;
    const points = rings(feature.geometry).flat().map(toXY);
    const d = rings(feature.geometry).map((ring) => `M${ring.map(toXY).map((p) => p.join(",")).join("L")}Z`).join("");
    const path = svg("path", { d, class: `cell ${kind ?? "basic"} squad-${squads.indexOf(squad)}`, "data-code": code, "data-squad": squad ?? "" },
      `${name ?? code} · ${community ?? ""} · ${squadName(squad)}`);
    path.addEventListener("click", () => openCell(code));
    cells.append(path);
    if (community && kind !== "dedicated") {
      if (!communities.has(community)) communities.set(community, []);
      communities.get(community).push(...points);
    }
  }
  const labels = svg("g", { class: "communities" });
  for (const [community, points] of communities) {
    const [x, y] = [0, 1].map((axis) => points.reduce((sum, p) => sum + p[axis], 0) / points.length);
    const text = svg("text", { x, y, class: "community-label", "text-anchor": "middle", "data-community": community });
    text.textContent = community;
    labels.append(text);
  }
  const lines = svg("g", { class: "tracks" });
  const byWorker = new Map();
  for (const point of asObjects(tracks)) {
    if (!byWorker.has(point.worker_id)) byWorker.set(point.worker_id, []);
    byWorker.get(point.worker_id).push(toXY([point.lon, point.lat]).join(","));
  }
  for (const [worker, points] of byWorker) {
    lines.append(svg("polyline", { points: points.join(" "), class: "track", "data-worker": worker }, worker));
  }
  const dots = svg("g", { class: "cases" });
  for (const item of state.cases) {
    if (item.lon == null || item.lat == null) continue;
    const [x, y] = toXY([item.lon, item.lat]);
    const dot = svg("circle", { cx: x, cy: y, r: 7, class: `case ${urgency(item)}`, "data-case": item.case_id },
      `${item.case_id} ${item.category_name ?? item.category} · ${statusName(item.status)}`);
    dot.addEventListener("click", () => openCase(item.case_id));
    dots.append(dot);
  }
  map.replaceChildren(cells, labels, lines, dots);
  drawSquadLegend(squads);
  state.toXY = toXY;
}

function squadsOf(grid) {
  return [...new Set(grid.features.map((feature) => feature.properties.squad).filter(Boolean))].sort();
}

function squadName(squad) {
  return squad ? nested("squads", squad) : "";
}

function drawSquadLegend(squads) {
  const legend = document.getElementById("squad-legend");
  legend.replaceChildren(...squads.flatMap((squad, index) => [
    element("span", null, { class: `swatch squad-${index}` }), element("span", squadName(squad), { "data-squad": squad }),
  ]));
}

function markLive(item) {
  // A report the feed announced before the warehouse holds it: put it on the map now, the next refresh keeps it.
  if (!state.toXY || item.lon == null || document.querySelector(`circle.case[data-case="${CSS.escape(item.case_id)}"]`)) return;
  const [x, y] = state.toXY([item.lon, item.lat]);
  const dot = svg("circle", { cx: x, cy: y, r: 7, class: "case on-time fresh", "data-case": item.case_id }, `${item.case_id} ${item.category_name ?? ""}`);
  dot.addEventListener("click", () => openCase(item.case_id));
  document.querySelector("#map g.cases")?.append(dot);
}

// --- tables ----------------------------------------------------------------------------------------------------

function asObjects(result) {
  return result.rows.map((row) => Object.fromEntries(result.columns.map((name, i) => [name, row[i]])));
}

function departmentName(key) {
  // The routing rules name a department "综合行政执法局 (integrated enforcement bureau)": one half per language.
  const full = state.me?.departments?.[key];
  const halves = full?.match(/^(.*?) \((.*)\)$/);
  if (!halves) return full ?? key;
  return state.language === "zh" ? halves[1] : halves[2];
}

function shownValue(name, value) {
  // Codes are shown by their names; the cell keeps the code itself in data-value.
  if (name === "status" || name === "from_status" || name === "to_status") return statusName(value);
  if (name === "squad" && value) return squadName(value);
  if (name === "department" && value) return departmentName(value);
  return show(value, name);
}

function drawTable(table, result, { names = result.columns, rowClass = () => "", onRow = null, key = null } = {}) {
  table.replaceChildren();
  const head = table.createTHead().insertRow();
  for (const name of names) head.append(element("th", column(name)));
  const body = table.createTBody();
  for (const row of asObjects(result)) {
    const tr = body.insertRow();
    tr.className = rowClass(row);
    if (key) tr.dataset.key = row[key] ?? "";
    for (const name of names) {
      const value = shownValue(name, row[name]);
      const cell = tr.insertCell();
      cell.textContent = value;
      cell.dataset.column = name;
      cell.dataset.value = row[name] === null || row[name] === undefined ? "" : JSON.stringify(row[name]);
    }
    if (onRow) { tr.classList.add("link"); tr.addEventListener("click", () => onRow(row)); }
  }
}

function drawSummary(today, month) {
  const rows = [["today", today], ["thisMonth", month]].map(([period, result]) => [label(period), ...result.rows[0]]);
  drawTable(document.getElementById("kpi-summary"), { columns: ["period", ...today.columns], rows },
    { names: ["period", ...KPI_MEASURES] });
  [...document.querySelectorAll("#kpi-summary tbody tr")].forEach((tr, i) => { tr.dataset.key = i ? "month" : "day"; });
}

function drawTrends(trend) {
  const box = document.getElementById("trends");
  box.replaceChildren();
  const days = asObjects(trend);
  for (const name of TREND_MEASURES) {
    const values = days.map((day) => day[name]);
    const known = values.filter((v) => v !== null);
    const high = Math.max(...known, SHARES.test(name) ? 1 : 1e-9);
    const chart = svg("svg", { viewBox: "0 0 300 60", class: "spark", "data-measure": name });
    const points = values.map((v, i) => (v === null ? null : `${(i * 300) / Math.max(values.length - 1, 1)},${58 - (v / high) * 54}`));
    chart.append(svg("polyline", { points: points.filter(Boolean).join(" ") }));
    for (const point of points.filter(Boolean)) {
      const [x, y] = point.split(",");
      chart.append(svg("circle", { cx: x, cy: y, r: 2.5 }));
    }
    const figure = element("figure", null, { "data-measure": name });
    figure.append(element("figcaption", `${column(name)}: ${show(known.at(-1) ?? null, name) || "–"}`), chart);
    box.append(figure);
  }
}

function drawApprovals(today, month) {
  const rows = [["today", today], ["thisMonth", month]].map(([period, result]) => [label(period), ...result.rows[0]]);
  drawTable(document.getElementById("approvals"), { columns: ["period", ...today.columns], rows });
  [...document.querySelectorAll("#approvals tbody tr")].forEach((tr, i) => { tr.dataset.key = i ? "month" : "day"; });
}

// --- the feed --------------------------------------------------------------------------------------------------

function feedLine(item) {
  const when = show(item.at).slice(11) || show(item.at);
  const what = nested("kinds", item.kind);
  const where = [item.category_name, item.grid_code, item.department && departmentName(item.department)].filter(Boolean).join(" · ");
  return `${when} ${what} ${item.case_id ?? ""} ${where}${item.status ? ` → ${statusName(item.status)}` : ""}`;
}

function addToFeed(item) {
  const list = document.getElementById("feed");
  const entry = element("li", feedLine(item), { "data-kind": item.kind, "data-case": item.case_id ?? "" });
  entry.addEventListener("click", () => item.case_id && openCase(item.case_id));
  list.prepend(entry);
  while (list.children.length > 60) list.lastElementChild.remove();
  if (item.kind === "overdue") raiseAlert(item);
  if (item.kind === "report" || item.kind === "merge") markLive(item);
  scheduleRefresh();
}

function raiseAlert(item) {
  const banner = document.getElementById("alert");
  banner.textContent = `${label("overdueAlert")}: ${item.case_id} ${item.category_name ?? ""} ${item.grid_code ?? ""}`;
  banner.hidden = false;
  banner.classList.remove("flash");
  void banner.offsetWidth; // restart the animation for each new alert
  banner.classList.add("flash");
  clearTimeout(state.alertTimer);
  state.alertTimer = setTimeout(() => { banner.hidden = true; }, 30000);
}

function follow() {
  const source = new EventSource("/api/feed");
  source.addEventListener("case", (event) => addToFeed(JSON.parse(event.data)));
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) setTimeout(follow, 3000); };
}

// --- drill-down and actions ------------------------------------------------------------------------------------

function openDetail(...nodes) {
  document.getElementById("detail-body").replaceChildren(...nodes);
  document.getElementById("detail").hidden = false;
}

function section(title, result, options) {
  const part = element("section");
  part.append(element("h3", title));
  if (!result.rows.length) { part.append(element("p", label("none"))); return part; }
  const table = element("table");
  drawTable(table, result, options);
  part.append(table);
  return part;
}

async function openCell(code) {
  const answer = await api(`/api/cells/${encodeURIComponent(code)}`);
  const { cell, counts } = answer;
  const heading = element("h2", `${label("grid")} ${cell.code} ${cell.name ?? ""}`, { id: "detail-title", "data-cell": cell.code });
  const facts = element("p", [cell.community, cell.squad, cell.kind].filter(Boolean).join(" · "));
  const totals = section(label("counts"), { columns: Object.keys(counts), rows: [Object.values(counts)] });
  totals.querySelector("table")?.setAttribute("id", "cell-counts");
  const workers = element("p", `${label("workers")}: ${(cell.workers ?? []).join(", ") || "—"}`, { id: "cell-workers" });
  openDetail(heading, facts, totals, workers, section(label("cases"), answer.cases, { onRow: (row) => openCase(row.case_id), key: "case_id" }));
}

async function openCase(caseId) {
  let answer;
  try {
    answer = await api(`/api/cases/${encodeURIComponent(caseId)}`);
  } catch (error) {
    if (error.status === 404) { openDetail(element("h2", `${caseId}: ${label("notFound")}`)); return; }
    throw error;
  }
  const { case: item } = answer;
  const heading = element("h2", `${label("cases")} ${item.case_id}`, { id: "detail-title", "data-case": item.case_id });
  const facts = element("p", `${item.category_name ?? item.category} · ${statusName(item.status)} · ${item.department ? departmentName(item.department) : ""} · ${item.grid_code ?? ""} · ${label("due")} ${show(item.due_at)}`);
  const parts = [heading, facts];
  if (state.me.can_dispatch) parts.push(actionsForm(item));
  parts.push(
    section(label("reports"), answer.reports, { names: ["event_id", "reported_at", "reporter_id", "description", "subject_id_number", "subject_uscc", "object_id"] }),
    photoList(answer),
    section(label("transitions"), answer.transitions, { names: ["seq", "at", "from_status", "to_status", "action", "actor", "actor_role", "note"] }),
    section(label("involved"), answer.involved, { onRow: (row) => search(row.kind, row.key) }),
    section(label("enforcement"), answer.enforcement, { names: ["case_no", "status", "power_name", "squad", "officer_id", "party_name", "filed_at", "decided_at", "decision"] }),
  );
  openDetail(...parts);
}

function photoList(answer) {
  const refs = [
    ...asObjects(answer.reports).flatMap((report) => report.photo_refs ?? []),
    ...asObjects(answer.transitions).map((step) => step.photo_ref).filter(Boolean),
  ];
  const part = element("section");
  part.append(element("h3", label("photos")));
  if (!refs.length || !state.me.can_dispatch) { part.append(element("p", refs.length ? `${refs.length}` : label("none"))); return part; }
  for (const ref of refs) part.append(element("img", null, { src: `/api/photos/${encodeURIComponent(ref)}`, alt: ref, class: "photo" }));
  return part;
}

function actionsForm(item) {
  const form = element("form", null, { id: "actions" });
  const due = element("input", null, { type: "datetime-local", id: "extend-due", "aria-label": label("newDue") });
  const note = element("input", null, { type: "text", id: "action-note", placeholder: label("note"), maxlength: "500" });
  const result = element("p", null, { id: "act-result", role: "status" });
  const department = element("select", null, { id: "redispatch-department", "aria-label": label("department") });
  for (const key of Object.keys(state.me.departments ?? {})) {
    const option = element("option", departmentName(key), { value: key });
    option.selected = key === item.department;
    department.append(option);
  }
  form.append(note);
  for (const action of ["redispatch", "extend", "cancel"]) {
    const button = element("button", label(action), { type: "button", id: `act-${action}` });
    button.addEventListener("click", () => act(item, action, { due, note, result, department }));
    if (action === "redispatch") form.append(department);
    form.append(button);
    if (action === "extend") form.append(due);
  }
  form.append(result);
  return form;
}

async function act(item, action, { due, note, result, department }) {
  const caseId = item.case_id;
  const body = { action, note: note.value || undefined };
  if (action === "extend" && due.value) body.due_at = new Date(due.value).toISOString();
  if (action === "redispatch" && department.value && department.value !== item.department) body.department = department.value;
  result.className = "";
  try {
    const answer = await api(`/api/cases/${encodeURIComponent(caseId)}/actions`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    result.textContent = label("sent");
    result.dataset.update = answer.update_id;
    settle(caseId, answer.update_id, result, 0);
  } catch (error) {
    result.textContent = `${label("refused")}: ${error.message}`;
    result.className = "refused";
  }
}

async function settle(caseId, updateId, result, attempt) {
  const outcome = await api(`/api/updates/${encodeURIComponent(updateId)}`);
  if (outcome.state === "pending" && attempt < 30) { setTimeout(() => settle(caseId, updateId, result, attempt + 1), 1000); return; }
  result.className = outcome.state;
  result.textContent = outcome.state === "refused" ? `${label("refused")}: ${outcome.reason}` : `${label(outcome.state)} ${statusName(outcome.status)}`;
  if (outcome.state === "applied") { scheduleRefresh(); }
}

async function search(kind, key) {
  try {
    const profile = await api(`/api/search?kind=${encodeURIComponent(kind)}&q=${encodeURIComponent(key)}`);
    const heading = element("h2", `${label(kind)} ${profile.key}`, { id: "detail-title", "data-entity": profile.key });
    const parts = [heading];
    for (const name of ["lineage", "copies", "links", "reviews"]) {
      const rows = profile[name];
      parts.push(section(label(name), { columns: rows.length ? Object.keys(rows[0]) : [], rows: rows.map(Object.values) }));
    }
    openDetail(...parts);
  } catch (error) {
    if (error.message === "login") throw error;
    openDetail(element("h2", `${label("notFound")}: ${key}`, { id: "detail-title" }), element("p", error.message));
  }
}

// --- refreshing ------------------------------------------------------------------------------------------------

function chosenDay() {
  return document.getElementById("day").value || state.me.today;
}

async function refresh() {
  const day = chosenDay();
  const month = day.slice(0, 7);
  const grouping = document.getElementById("grouping").value;
  const groupPeriod = document.getElementById("grouping-period").value === "month" ? `month=${month}` : `date=${day}`;
  const [cases, tracks, today, thisMonth, grouped, trend, patrol, approvalsToday, approvalsMonth] = await Promise.all([
    api("/api/cases"), api("/api/tracks"), api(`/api/kpi?date=${day}`), api(`/api/kpi?month=${month}`),
    api(`/api/kpi?by=${grouping}&${groupPeriod}`), api(`/api/kpi/trend?end=${day}`), api(`/api/kpi/patrol?date=${day}`),
    api(`/api/kpi/approvals?date=${day}`), api(`/api/kpi/approvals?month=${month}`),
  ]);
  state.cases = asObjects(cases);
  drawMap(tracks);
  document.getElementById("case-count").textContent = `(${state.cases.length})`;
  drawTable(document.getElementById("cases"), cases, {
    names: ["case_id", "category_name", "department", "squad", "status", "reported_at", "due_at"],
    rowClass: (row) => (urgency(row) === "overdue" ? "overdue" : ""), onRow: (row) => openCase(row.case_id), key: "case_id",
  });
  drawSummary(today, thisMonth);
  const groupColumn = grouped.columns[0];
  drawTable(document.getElementById("kpi"), grouped, { names: [groupColumn, ...KPI_MEASURES], key: groupColumn });
  drawTrends(trend);
  drawTable(document.getElementById("patrol"), patrol, { key: "squad" });
  drawApprovals(approvalsToday, approvalsMonth);
  document.body.dataset.refreshed = String(Date.now());
}

function scheduleRefresh() {
  // Many feed items in a burst make one refresh, a second after the first.
  if (state.refreshing) return;
  state.refreshing = setTimeout(() => { state.refreshing = null; refresh().catch(report); }, 1000);
}

function report(error) {
  if (error.message === "login") { location.reload(); return; }
  console.error(error);
}

async function start() {
  try {
    state.me = await api("/api/me");
  } catch (error) {
    if (error.message !== "login") throw error;
    document.getElementById("login").hidden = false;
    return;
  }
  document.getElementById("viewer").textContent = `${state.me.name} · ${state.me.role} · ${label(state.me.masked ? "masked" : "whole")}`;
  document.body.dataset.role = state.me.role;
  document.getElementById("login").hidden = true;
  document.getElementById("screen").hidden = false;
  document.getElementById("search").hidden = false;
  document.getElementById("logout").hidden = false;
  const wanted = new URLSearchParams(location.search).get("date");
  document.getElementById("day").value = /^\d{4}-\d\d-\d\d$/.test(wanted ?? "") ? wanted : state.me.today;
  state.grid = await api("/api/grid");
  await refresh();
  follow();
  setInterval(() => refresh().catch(report), 30000);
}

document.addEventListener("DOMContentLoaded", () => {
  relabel();
  document.getElementById("language").addEventListener("click", () => {
    state.language = state.language === "zh" ? "en" : "zh";
    relabel();
    if (state.me) refresh().catch(report);
  });
  for (const id of ["grouping", "grouping-period", "day"]) document.getElementById(id).addEventListener("change", () => refresh().catch(report));
  document.getElementById("detail-close").addEventListener("click", () => { document.getElementById("detail").hidden = true; });
  document.getElementById("logout").addEventListener("click", async () => { await fetch("/logout", { method: "POST" }); location.reload(); });
  document.getElementById("search").addEventListener("submit", (event) => {
    event.preventDefault();
    search(document.getElementById("search-kind").value, document.getElementById("search-q").value.trim()).catch(report);
  });
  document.getElementById("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    const response = await fetch("/login", { method: "POST", body: new FormData(event.target), credentials: "same-origin" });
    if (response.ok) start().catch(report);
    else document.getElementById("login-error").textContent = (await response.json()).reason;
  });
  start().catch(report);
});
