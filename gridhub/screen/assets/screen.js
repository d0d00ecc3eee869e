// The command centre's screen: the grid map, the open cases and the KPIs, from the hub's own JSON.
"use strict";

const LABELS = {
  zh: {
    title: "孟河镇联动指挥中心", token: "令牌", enter: "进入", map: "网格地图", onTime: "未超时",
    dueSoon: "临近时限", overdue: "已超时", kpi: "案件考核指标", by: "按", all: "全镇", squad: "片区",
    department: "部门", grid: "网格", worker: "网格员", openCases: "在办案件", switchTo: "English",
    masked: "个人信息已脱敏", whole: "可见完整个人信息（查询留痕）",
    columns: {
      case_id: "案件", category_name: "类别", department: "部门", squad: "片区", status: "状态",
      reported_at: "上报时间", due_at: "时限", group_key: "分组", cases_due: "应结案数", closed: "结案数",
      closed_on_time: "按期结案数", closure_rate: "结案率", on_time_rate: "按期结案率", rework_rate: "返工率",
      median_hours_to_close: "结案用时中位数(时)", p90_hours_to_close: "结案用时P90(时)",
    },
  },
  en: {
    title: "Menghe linked command centre", token: "Token", enter: "Enter", map: "Grid map", onTime: "in time",
    dueSoon: "due soon", overdue: "overdue", kpi: "Case KPIs", by: "by", all: "whole town", squad: "squad",
    department: "department", grid: "grid cell", worker: "grid worker", openCases: "Open cases", switchTo: "中文",
    masked: "personal data masked", whole: "personal data shown whole (reads are audited)",
    columns: {},
  },
};
let language = "zh";
const label = (key) => LABELS[language][key] ?? LABELS.zh[key] ?? key;
const column = (name) => LABELS[language].columns[name] ?? (language === "zh" ? LABELS.zh.columns[name] : null) ?? name;

async function api(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  if (response.status === 401) throw new Error("login");
  if (!response.ok) throw new Error((await response.json()).reason);
  return response.json();
}

function relabel() {
  document.querySelectorAll("[data-label]").forEach((node) => { node.textContent = label(node.dataset.label); });
  document.getElementById("language").textContent = label("switchTo");
  document.documentElement.lang = language === "zh" ? "zh-CN" : "en";
}

function project(bounds, width, height) {
  const [minLon, minLat, maxLon, maxLat] = bounds;
  const scale = Math.min(width / (maxLon - minLon), height / (maxLat - minLat));
  return ([lon, lat]) => [(lon - minLon) * scale, height - (lat - minLat) * scale];
}

function boundsOf(features) {
  const bounds = [Infinity, Infinity, -Infinity, -Infinity];
  for (const feature of features) {
    for (const ring of rings(feature.geometry)) {
      for (const [lon, lat] of ring) {
        bounds[0] = Math.min(bounds[0], lon); bounds[1] = Math.min(bounds[1], lat);
        bounds[2] = Math.max(bounds[2], lon); bounds[3] = Math.max(bounds[3], lat);
      }
    }
  }
  return bounds;
}

function rings(geometry) {
  if (geometry.type === "Polygon") return geometry.coordinates;
  if (geometry.type === "MultiPolygon") return geometry.coordinates.flat();
  return [];
}

const SVG = "http://www.w3.org/2000/svg";
function drawMap(grid, cases) {
  const map = document.getElementById("map");
  const width = 1000, height = 800;
  map.setAttribute("viewBox", `0 0 ${width} ${height}`);
  map.replaceChildren();
  const toXY = project(boundsOf(grid.features), width, height);
  const basic = grid.features.filter((f) => f.properties.kind !== "dedicated");
  const dedicated = grid.features.filter((f) => f.properties.kind === "dedicated");
  for (const feature of [...basic, ...dedicated]) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", rings(feature.geometry).map((ring) => "M" + ring.map(toXY).map((p) => p.join(",")).join("L") + "Z").join(""));
    path.setAttribute("class", `cell ${feature.properties.kind ?? "basic"}`);
    path.dataset.code = feature.properties.code;
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${feature.properties.name ?? feature.properties.code} · ${feature.properties.community ?? ""}`;
    path.append(title);
    map.append(path);
  }
  for (const item of cases) {
    if (item.lon == null || item.lat == null) continue;
    const [x, y] = toXY([item.lon, item.lat]);
    const dot = document.createElementNS(SVG, "circle");
    dot.setAttribute("cx", x); dot.setAttribute("cy", y); dot.setAttribute("r", 6);
    dot.setAttribute("class", `case ${urgency(item)}`);
    dot.dataset.case = item.case_id;
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${item.case_id} ${item.category_name ?? item.category} · ${item.status}`;
    dot.append(title);
    map.append(dot);
  }
}

function urgency(item) {
  if (!item.due_at) return "on-time";
  const left = new Date(item.due_at) - Date.now();
  const span = new Date(item.due_at) - new Date(item.reported_at);
  if (left < 0) return "overdue";
  return left < span / 4 ? "due-soon" : "on-time";
}

function drawTable(table, result, rowClass = () => "") {
  table.replaceChildren();
  const head = table.createTHead().insertRow();
  for (const name of result.columns) {
    const cell = document.createElement("th");
    cell.textContent = column(name);
    head.append(cell);
  }
  const body = table.createTBody();
  for (const row of result.rows) {
    const tr = body.insertRow();
    tr.className = rowClass(row);
    for (const value of row) tr.insertCell().textContent = value ?? "";
  }
}

function asObjects(result) {
  return result.rows.map((row) => Object.fromEntries(result.columns.map((name, i) => [name, row[i]])));
}

async function refresh() {
  const grouping = document.getElementById("grouping").value;
  const [grid, cases, kpi] = await Promise.all([
    state.grid ?? api("/api/grid"), api("/api/cases"), api(`/api/kpi${grouping ? `?by=${grouping}` : ""}`),
  ]);
  state.grid = grid;
  const open = asObjects(cases);
  drawMap(grid, open);
  const shown = { columns: ["case_id", "category_name", "department", "squad", "status", "reported_at", "due_at"] };
  shown.rows = open.map((item) => shown.columns.map((name) => item[name]));
  drawTable(document.getElementById("cases"), shown, (row) => (urgency(open.find((c) => c.case_id === row[0])) === "overdue" ? "overdue" : ""));
  document.getElementById("case-count").textContent = `(${open.length})`;
  drawTable(document.getElementById("kpi"), kpi);
}

const state = { grid: null };

async function start() {
  try {
    const me = await api("/api/me");
    document.getElementById("viewer").textContent = `${me.name} · ${me.role} · ${label(me.masked ? "masked" : "whole")}`;
    document.getElementById("login").hidden = true;
    document.getElementById("screen").hidden = false;
    await refresh();
    setInterval(refresh, 5000);
  } catch (error) {
    if (error.message !== "login") throw error;
    document.getElementById("login").hidden = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  relabel();
  document.getElementById("language").addEventListener("click", () => {
    language = language === "zh" ? "en" : "zh";
    relabel();
    if (state.grid) refresh();
  });
  document.getElementById("grouping").addEventListener("change", refresh);
  document.getElementById("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    const response = await fetch("/login", { method: "POST", body: new FormData(event.target), credentials: "same-origin" });
    if (response.ok) start();
    else document.getElementById("login-error").textContent = (await response.json()).reason;
  });
  start();
});
