// The case dashboard: counts by time / type (scene) / status, amounts by asset type,
// response and resolution times, repeat purchase after compensation, and the compensated
// customers by region, gender and age band. Charts are hand-drawn SVG (no chart library).
import { $, api, can, h, LANG, loadAuth, money, signIn } from "./common.js";

const TEXT = {
  zh: {
    title: "售后与赔付看板", username: "账号", password: "密码", signIn: "登录", desk: "售后工单", range: "时间范围",
    d1: "今天", d7: "近 7 天", d30: "近 30 天", d90: "近 90 天", bucket: "粒度", byDay: "按天", byHour: "按小时",
    refresh: "刷新", tickets: "售后工单", compensations: "赔付单", paidAmount: "赔付金额（已审批）",
    response: "平均响应", resolution: "平均解决", trend: "趋势", byType: "工单 · 按类型", byState: "工单 · 按状态",
    byScene: "赔付 · 按场景", byStatus: "赔付 · 按状态", byAsset: "赔付金额 · 按资产类型",
    repeat: "复购率：被赔付客户 vs 全部客户", compensated: "被赔付客户", all: "全部客户", within7: "7 天内复购",
    within30: "30 天内复购", region: "被赔付客户 · 地区", gender: "被赔付客户 · 性别", ageBand: "被赔付客户 · 年龄段",
    none: "暂无数据", noPerm: "需要 dashboard.view 权限", customers: "{n} 位客户", noDirectory: "目录数据不可用（HTTP 目录）",
    ticketTiming: "工单", compTiming: "赔付单", auditExport: "导出审计日志（所选时间）",
  },
  en: {
    title: "After-sales & compensation", username: "Username", password: "Password", signIn: "Sign in", desk: "Tickets",
    range: "Range", d1: "Today", d7: "Last 7 days", d30: "Last 30 days", d90: "Last 90 days", bucket: "Bucket",
    byDay: "Daily", byHour: "Hourly", refresh: "Refresh", tickets: "Tickets", compensations: "Compensation orders",
    paidAmount: "Compensation (approved)", response: "Avg response", resolution: "Avg resolution", trend: "Trend",
    byType: "Tickets by type", byState: "Tickets by status", byScene: "Compensation by scene",
    byStatus: "Compensation by status", byAsset: "Amount by asset type", repeat: "Repeat purchase: compensated vs all",
    compensated: "Compensated", all: "All customers", within7: "within 7 days", within30: "within 30 days",
    region: "Compensated by region", gender: "Compensated by gender", ageBand: "Compensated by age band",
    none: "No data", noPerm: "Needs dashboard.view", customers: "{n} customers", noDirectory: "No directory rows (HTTP directory)",
    ticketTiming: "tickets", compTiming: "compensation", auditExport: "Export audit log (this range)",
  },
}[LANG];
const t = (k, v) => (TEXT[k] ?? k).replace(/\{(\w+)\}/g, (_, x) => (v && v[x] != null ? String(v[x]) : ""));
const SVG = "http://www.w3.org/2000/svg";
const COLORS = { tickets: "#1662d6", compensations: "#f59e0b", c7: "#12a150", c30: "#8b5cf6" };

function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of kids) if (c != null) el.append(typeof c === "string" ? document.createTextNode(c) : c);
  return el;
}
function secs(x) {
  if (x == null) return "—";
  if (x < 60) return `${x.toFixed(0)}s`;
  if (x < 3600) return `${(x / 60).toFixed(1)}${LANG === "en" ? "m" : "分钟"}`;
  if (x < 86400) return `${(x / 3600).toFixed(1)}${LANG === "en" ? "h" : "小时"}`;
  return `${(x / 86400).toFixed(1)}${LANG === "en" ? "d" : "天"}`;
}
function pct(x) {
  return x == null ? "—" : `${(x * 100).toFixed(1)}%`;
}

function card(title, body, testid, wide) {
  return h("div", { class: `card ${wide ? "wide" : ""}`, "data-testid": testid }, h("h3", null, title), body);
}

/** Horizontal bars: rows of {label, value, text}. */
function bars(rows, testid) {
  if (!rows.length) return h("div", { class: "muted small", "data-testid": testid }, t("none"));
  const max = Math.max(...rows.map((r) => r.value), 1);
  return h(
    "div",
    { class: "bars", "data-testid": testid },
    rows.map((r) =>
      h(
        "div",
        { class: "bar-row", "data-key": r.key },
        h("span", null, r.label),
        h("div", { class: "bar-track" }, h("div", { class: "bar-fill", style: `width:${(100 * r.value) / max}%;${r.color ? `background:${r.color}` : ""}` })),
        h("span", { class: "val" }, r.text),
      ),
    ),
  );
}
const countRows = (list, withAmount) =>
  list.map((c) => ({ key: c.key, label: c.label, value: c.count, text: withAmount && c.amount ? `${c.count} · ${money(c.amount)}` : String(c.count) }));

/** Grouped columns over time: tickets and compensation orders per bucket. */
function trend(series, bucket) {
  const W = 900, H = 220, L = 36, B = 26, T = 10;
  const n = Math.max(series.length, 1);
  const max = Math.max(1, ...series.map((x) => Math.max(x.tickets, x.compensations)));
  const step = (W - L - 8) / n;
  const bw = Math.max(1, Math.min(14, step / 2 - 1));
  const y = (v) => H - B - ((H - B - T) * v) / max;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", width: "100%", role: "img", "data-testid": "dash-trend" });
  for (let i = 0; i <= 4; i++) {
    const v = Math.round((max * i) / 4);
    svg.append(s("line", { x1: L, x2: W, y1: y(v), y2: y(v), stroke: "#eef1f5" }), s("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, String(v)));
  }
  const every = Math.ceil(n / 12);
  series.forEach((x, i) => {
    const x0 = L + i * step + step / 2;
    for (const [k, dx] of [["tickets", -bw], ["compensations", 0]]) {
      const v = x[k];
      if (v) svg.append(s("rect", { x: x0 + dx, y: y(v), width: bw, height: H - B - y(v), fill: COLORS[k], rx: 2 }, s("title", null, `${k}: ${v}`)));
    }
    if (i % every === 0) {
      const d = new Date(x.bucket_start);
      const label = bucket === "hour" ? `${d.getDate()}日${d.getHours()}时` : `${d.getMonth() + 1}/${d.getDate()}`;
      svg.append(s("text", { x: x0, y: H - 8, "text-anchor": "middle" }, label));
    }
  });
  return h(
    "div",
    null,
    svg,
    h("div", { class: "legend" }, h("span", null, h("i", { style: `background:${COLORS.tickets}` }), t("tickets")), h("span", null, h("i", { style: `background:${COLORS.compensations}` }), t("compensations"))),
  );
}

function repeatChart(list) {
  const rows = [];
  for (const r of list) {
    const name = r.group === "compensated" ? t("compensated") : t("all");
    rows.push({ key: `${r.group}-7`, label: `${name} · ${t("within7")}`, value: (r.rate_7d || 0) * 1000, text: pct(r.rate_7d), color: COLORS.c7 });
    rows.push({ key: `${r.group}-30`, label: `${name} · ${t("within30")}`, value: (r.rate_30d || 0) * 1000, text: pct(r.rate_30d), color: COLORS.c30 });
  }
  const counts = list.map((r) => `${r.group === "compensated" ? t("compensated") : t("all")}: ${t("customers", { n: r.customers })}`).join(" · ");
  return h("div", null, bars(rows, "dash-repeat-bars"), h("div", { class: "legend" }, counts));
}

function kpi(label, value, testid) {
  return h("div", { class: "kpi", "data-testid": testid }, h("div", { class: "label" }, label), h("div", { class: "value" }, value));
}

function range() {
  const days = Number($("#filters").days.value);
  const until = Date.now();
  return { days, until, since: days === 1 ? new Date().setHours(0, 0, 0, 0) : until - days * 86400000 };
}

/** The audit log of the chosen range as CSV (the export needs the token, so fetch it). */
async function exportAudit(auth) {
  const { since, until } = range();
  const r = await fetch(`/api/v1/audit/export?since=${since}&until=${until}`, {
    headers: { Authorization: `Bearer ${auth.token}` },
  });
  if (!r.ok) {
    $("#dash-error").textContent = `${r.status} ${r.statusText}`;
    $("#dash-error").hidden = false;
    return;
  }
  const url = URL.createObjectURL(await r.blob());
  const name = (r.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
  const a = h("a", { href: url, download: name ? name[1] : "audit.csv" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function load(auth) {
  const form = $("#filters");
  const { days, until, since } = range();
  const bucket = form.bucket.value === "hour" && days <= 31 ? "hour" : "day";
  const err = $("#dash-error");
  err.hidden = true;
  let d;
  try {
    d = await api(auth, "GET", `/api/v1/dashboard/cases?since=${since}&until=${until}&bucket=${bucket}`);
  } catch (e) {
    err.textContent = e.message;
    err.hidden = false;
    return;
  }
  const tickets = d.tickets_by_type.reduce((a, c) => a + c.count, 0);
  const comps = d.compensations_by_status.reduce((a, c) => a + c.count, 0);
  const amount = d.amounts_by_asset.reduce((a, c) => a + c.amount, 0);
  $("#kpis").replaceChildren(
    kpi(t("tickets"), String(tickets), "kpi-tickets"),
    kpi(t("compensations"), String(comps), "kpi-compensations"),
    kpi(t("paidAmount"), money(amount), "kpi-amount"),
    kpi(`${t("response")} / ${t("resolution")}`, `${secs(d.ticket_timing.avg_response_s)} / ${secs(d.ticket_timing.avg_resolution_s)}`, "kpi-timing"),
  );
  $("#cards").replaceChildren(
    card(t("trend"), trend(d.series, d.bucket), "card-trend", true),
    card(t("byType"), bars(countRows(d.tickets_by_type, true), "dash-by-type"), "card-type"),
    card(t("byState"), bars(countRows(d.tickets_by_state), "dash-by-state"), "card-state"),
    card(t("byScene"), bars(countRows(d.compensations_by_scene, true), "dash-by-scene"), "card-scene"),
    card(t("byStatus"), bars(countRows(d.compensations_by_status, true), "dash-by-status"), "card-status"),
    card(t("byAsset"), bars(d.amounts_by_asset.map((c) => ({ key: c.key, label: c.label, value: c.amount, text: `${money(c.amount)} · ${c.count}` })), "dash-by-asset"), "card-asset"),
    card(
      `${t("response")} / ${t("resolution")}`,
      bars(
        [
          { key: "tr", label: `${t("ticketTiming")} · ${t("response")}`, value: d.ticket_timing.avg_response_s || 0, text: secs(d.ticket_timing.avg_response_s) },
          { key: "ts", label: `${t("ticketTiming")} · ${t("resolution")}`, value: d.ticket_timing.avg_resolution_s || 0, text: secs(d.ticket_timing.avg_resolution_s) },
          { key: "cr", label: `${t("compTiming")} · ${t("response")}`, value: d.compensation_timing.avg_response_s || 0, text: secs(d.compensation_timing.avg_response_s) },
          { key: "cs", label: `${t("compTiming")} · ${t("resolution")}`, value: d.compensation_timing.avg_resolution_s || 0, text: secs(d.compensation_timing.avg_resolution_s) },
        ],
        "dash-timing",
      ),
      "card-timing",
    ),
    card(t("repeat"), d.directory_rows ? repeatChart(d.repeat_purchase) : h("div", { class: "muted" }, t("noDirectory")), "card-repeat"),
    card(t("region"), bars(countRows(d.by_region, true), "dash-by-region"), "card-region"),
    card(t("gender"), bars(countRows(d.by_gender, true), "dash-by-gender"), "card-gender"),
    card(t("ageBand"), bars(countRows(d.by_age_band, true), "dash-by-age"), "card-age"),
  );
}

function start(auth) {
  $("#app").hidden = false;
  $("#me").textContent = auth.username;
  if (can(auth, "audit.view")) {
    $("#audit-export").hidden = false;
    $("#audit-export").addEventListener("click", () => exportAudit(auth));
  }
  if (!can(auth, "dashboard.view")) {
    $("#dash-error").textContent = t("noPerm");
    $("#dash-error").hidden = false;
    return;
  }
  $("#filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    load(auth);
  });
  for (const sel of document.querySelectorAll("#filters select")) sel.addEventListener("change", () => load(auth));
  load(auth);
}

for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
document.title = `${t("title")} · contactd`;
const auth = loadAuth();
if (auth) start(auth);
else signIn(start);
