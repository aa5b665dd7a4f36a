// The reviewer page (/review): compensation orders with filters (status, level, scene,
// time, creator), approve / reject / close one by one or in batches (a result per order),
// the order's details and history, refreshed live over the /review socket.
import { $, api, can, h, LANG, loadAuth, money, saveAuth, signIn, toast } from "./common.js";

const EN = {
  title: "Compensation review", finance: "Payouts", status: "Status", stage: "Level", scene: "Scene",
  since: "Submitted from", until: "to", creator: "Submitted by", search: "Order / after-sales no. / phone",
  apply: "Search", all: "All", selected: "Selected", batchApprove: "Approve", batchReject: "Reject",
  batchClose: "Close", no: "No.", created: "Submitted", asset: "Asset", amount: "Amount", review: "Review",
  actions: "", nothing: "No compensation orders match", rejectTitle: "Reject", cancel: "Cancel",
  rejectReason: "Why (the creator sees it)", reject: "Reject",
};
const T = {
  approve: LANG === "en" ? "Approve" : "通过",
  reject: LANG === "en" ? "Reject" : "驳回",
  close: LANG === "en" ? "Close" : "关闭",
  l1: LANG === "en" ? "L1 business" : "一级 业务",
  l2: LANG === "en" ? "L2 finance" : "二级 财务",
  auto: LANG === "en" ? "no review" : "免审",
  done: LANG === "en" ? "{ok} done, {failed} refused" : "成功 {ok} 单，失败 {failed} 单",
  total: LANG === "en" ? "{n} orders" : "共 {n} 单",
  live: LANG === "en" ? "Live" : "实时",
  offline: LANG === "en" ? "Reconnecting" : "重连中",
  reason: LANG === "en" ? "Reason" : "赔付原因",
  evidence: LANG === "en" ? "Evidence" : "凭证",
  items: LANG === "en" ? "Items" : "赔付商品",
  history: LANG === "en" ? "History" : "处理记录",
  order: LANG === "en" ? "Order" : "订单",
  customer: LANG === "en" ? "Customer" : "客户",
  asset: { coupon: LANG === "en" ? "Coupon" : "优惠券", cash: LANG === "en" ? "Cash" : "现金", balance: LANG === "en" ? "Balance" : "余额" },
  payout: { pending: LANG === "en" ? "paying" : "发放中", succeeded: LANG === "en" ? "paid" : "已到账", failed: LANG === "en" ? "payout failed" : "发放失败" },
};
const fmt = (s, v) => s.replace(/\{(\w+)\}/g, (_, k) => String(v[k] ?? ""));
const STATUS_CLASS = { pending_review: "warn", rejected: "danger", approved: "info", paid: "ok", closed: "" };

const state = { auth: null, scenes: new Map(), flows: [], rows: [], selected: new Set(), open: null, errors: new Map() };

/** Does the approval flow give this order's current level to my role? (the server checks) */
function myLevel(r) {
  const flow = state.flows.find((f) => f.region === r.region) || state.flows.find((f) => f.region === "*");
  const roles = flow ? (r.stage === "l2" ? flow.l2_roles : flow.l1_roles) : [];
  return roles.includes(state.auth.role);
}

function query() {
  const fd = new FormData($("#filters"));
  const params = new URLSearchParams();
  for (const [k, v] of fd.entries()) {
    if (!v) continue;
    if (k === "since" || k === "until") {
      const d = new Date(`${v}T00:00:00`);
      if (k === "until") d.setDate(d.getDate() + 1);
      params.set(k, d.toISOString());
    } else params.set(k, String(v));
  }
  params.set("limit", "200");
  return params;
}

async function load() {
  const page = await api(state.auth, "GET", `/api/v1/compensations?${query()}`);
  state.rows = page.items;
  const ids = new Set(page.items.map((r) => r.id));
  for (const id of [...state.selected]) if (!ids.has(id)) state.selected.delete(id);
  $("#list-meta").textContent = fmt(T.total, { n: page.total });
  render();
}

let reloadTimer = null;
function reloadSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => load().catch((e) => toast(e.message, "error")), 250);
}

function stageText(r) {
  if (r.status !== "pending_review") return r.manual_review ? [r.l1_by, r.l2_by].filter(Boolean).join(" → ") : T.auto;
  return r.stage === "l2" ? T.l2 : T.l1;
}

function canAct(r, action) {
  const mine = r.creator_kind === "staff" && r.creator_name === state.auth.username;
  if (action === "close") return r.status === "rejected" || (r.status === "pending_review" && !mine && myLevel(r));
  return r.status === "pending_review" && !mine && can(state.auth, "compensation.review") && myLevel(r);
}

function render() {
  const tbody = $("#rows");
  tbody.replaceChildren();
  for (const r of state.rows) {
    const scene = state.scenes.get(r.scene);
    const err = state.errors.get(r.id);
    const tr = h(
      "tr",
      { "data-id": r.id, "data-testid": "comp-row", "data-status": r.status, class: state.open === r.id ? "sel" : "" },
      h("td", null, h("input", { type: "checkbox", checked: state.selected.has(r.id), "data-testid": "row-select", "aria-label": r.id })),
      h("td", { class: "mono" }, r.id),
      h("td", { class: "num" }, new Date(r.created_at).toLocaleString()),
      h("td", null, r.creator_name),
      h("td", null, scene ? `${scene.group_name.split(" ")[0]} / ${scene.name.split(" ")[0]}` : r.scene),
      h("td", null, T.asset[r.asset_type] || r.asset_type),
      h("td", { class: "num" }, money(r.amount)),
      h("td", { "data-testid": "row-stage" }, stageText(r)),
      h(
        "td",
        null,
        h("span", { class: `tag ${STATUS_CLASS[r.status] || ""}`, "data-testid": "row-status" }, r.status_label),
        r.payout_state && r.status !== "paid" ? h("span", { class: "tag" }, T.payout[r.payout_state]) : null,
        err ? h("div", { class: "row-error small", "data-testid": "row-error" }, err) : null,
      ),
      h(
        "td",
        { class: "row-actions" },
        canAct(r, "approve") ? h("button", { type: "button", class: "btn small primary", "data-act": "approve", "data-testid": "row-approve" }, T.approve) : null,
        canAct(r, "reject") ? h("button", { type: "button", class: "btn small", "data-act": "reject", "data-testid": "row-reject" }, T.reject) : null,
        canAct(r, "close") ? h("button", { type: "button", class: "btn small", "data-act": "close", "data-testid": "row-close" }, T.close) : null,
      ),
    );
    tbody.append(tr);
    if (state.open === r.id) tbody.append(detailRow(r));
  }
  $("#list-empty").hidden = state.rows.length > 0;
  $("#sel-count").textContent = String(state.selected.size);
  $("#sel-all").checked = state.rows.length > 0 && state.rows.every((r) => state.selected.has(r.id));
}

function detailRow(r) {
  const cell = h("td", { colspan: 10 });
  const history = h("ol", { class: "comp-history", "data-testid": "comp-history" });
  api(state.auth, "GET", `/api/v1/compensations/${encodeURIComponent(r.id)}/history`)
    .then((entries) =>
      history.replaceChildren(
        ...entries.map((e) => h("li", null, h("span", { class: "muted" }, new Date(e.at).toLocaleString()), ` ${e.actor_name || "system"} · ${e.action.replace("compensation.", "")}`)),
      ),
    )
    .catch(() => {});
  cell.append(
    h(
      "div",
      { class: "comp-detail", "data-testid": "comp-detail" },
      h("div", null, h("b", null, T.customer), ` ${r.customer_phone.slice(0, 3)}****${r.customer_phone.slice(-4)} · ${r.region}`),
      h("div", null, h("b", null, T.order), ` ${r.order_no || "—"}${r.after_sales_no ? ` · ${r.after_sales_no}` : ""}`),
      r.items.length ? h("div", null, h("b", null, T.items), " ", r.items.map((i) => `${i.name || i.sku} ×${i.qty}`).join("，")) : null,
      h("div", null, h("b", null, T.reason), ` ${r.reason}`),
      r.attachments.length
        ? h("div", { "data-testid": "comp-attachments" }, h("b", null, T.evidence), " ",
            r.attachments.map((a) => h("a", { href: a.url, target: "_blank", rel: "noopener", class: "comp-att" }, a.name)))
        : null,
      r.reject_reason ? h("div", { class: "row-error" }, r.reject_reason) : null,
      h("div", null, h("b", null, T.history)),
      history,
    ),
  );
  return h("tr", { class: "detail" }, cell);
}

function askComment() {
  const dialog = $("#reject-dialog");
  const form = $("#reject-form");
  form.reset();
  dialog.showModal();
  return new Promise((resolve) => {
    const done = (value) => {
      form.removeEventListener("submit", onSubmit);
      dialog.close();
      resolve(value);
    };
    const onSubmit = (ev) => {
      ev.preventDefault();
      done(String(new FormData(form).get("comment") || "").trim() || null);
    };
    form.addEventListener("submit", onSubmit);
    dialog.querySelector("[data-close]").onclick = () => done(null);
  });
}

async function act(action, ids) {
  const items = ids.map((id) => state.rows.find((r) => r.id === id)).filter(Boolean).map((r) => ({ id: r.id, version: r.version }));
  if (!items.length) return;
  let comment = "";
  if (action === "reject") {
    comment = await askComment();
    if (!comment) return;
  }
  const out = await api(state.auth, "POST", "/api/v1/compensations/batch", { action, items, comment });
  state.errors.clear();
  for (const r of out.results) {
    if (r.ok) state.selected.delete(r.id);
    else state.errors.set(r.id, r.error.message);
  }
  toast(fmt(T.done, { ok: out.succeeded, failed: out.failed }), out.failed ? "error" : "ok");
  await load();
}

function connectLive() {
  if (!window.io) return;
  const socket = window.io("/review", { auth: { token: state.auth.token }, transports: ["websocket"] });
  const label = (ok) => {
    $("#live").classList.toggle("ok", ok);
    $("#live-label").textContent = ok ? T.live : T.offline;
  };
  socket.on("connect", () => label(true));
  socket.on("disconnect", () => label(false));
  socket.on("compensation.updated", reloadSoon);
  socket.on("compensation.to_review", reloadSoon);
}

function translate() {
  if (LANG !== "en") return;
  for (const el of document.querySelectorAll("[data-t]")) if (EN[el.dataset.t] != null) el.textContent = EN[el.dataset.t];
}

async function start(auth) {
  state.auth = auth;
  $("#app").hidden = false;
  $("#me").textContent = auth.username;
  $("#to-finance").hidden = !can(auth, "compensation.pay");
  const [{ scenes }, config] = await Promise.all([
    api(auth, "GET", "/api/v1/compensation-scenes"),
    api(auth, "GET", "/api/v1/case-config/compensation"),
  ]);
  state.flows = config.policy.flows;
  const sel = $('[name="scene"]');
  for (const s of scenes) {
    state.scenes.set(s.id, s);
    sel.append(h("option", { value: s.id }, `${s.group_name.split(" ")[0]} / ${s.name}`));
  }
  const preset = new URLSearchParams(location.search);
  for (const [k, v] of preset.entries()) {
    const input = $(`#filters [name="${CSS.escape(k)}"]`);
    if (input) input.value = v;
  }
  $("#filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    load().catch((e) => toast(e.message, "error"));
  });
  $("#rows").addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr[data-id]");
    if (!tr) return;
    const id = tr.dataset.id;
    const button = ev.target.closest("button[data-act]");
    if (button) {
      act(button.dataset.act, [id]).catch((e) => toast(e.message, "error"));
      return;
    }
    if (ev.target.matches("input[type=checkbox]")) {
      if (ev.target.checked) state.selected.add(id);
      else state.selected.delete(id);
      render();
      return;
    }
    state.open = state.open === id ? null : id;
    render();
  });
  $("#sel-all").addEventListener("change", (ev) => {
    for (const r of state.rows) (ev.target.checked ? state.selected.add(r.id) : state.selected.delete(r.id));
    render();
  });
  for (const b of document.querySelectorAll("[data-batch]")) {
    b.addEventListener("click", () => act(b.dataset.batch, [...state.selected]).catch((e) => toast(e.message, "error")));
  }
  connectLive();
  await load();
}

translate();
const stored = loadAuth();
if (stored && can(stored, "compensation.view")) start(stored).catch((e) => toast(e.message, "error"));
else {
  saveAuth(null);
  signIn((auth) => start(auth).catch((e) => toast(e.message, "error")));
}
