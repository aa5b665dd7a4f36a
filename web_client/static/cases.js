// The after-sales ticket desk: my queue, the to-be-claimed pools (claim), every open or
// stalled ticket (with tickets.view), a ticket's detail with its timeline and the actions
// its state allows, and assign / transfer / dispatch / priority by permission.
import { $, age, api, can, h, LANG, loadAuth, money, signIn, toast, when } from "./common.js";
import { TYPE_LABELS } from "./cases-form.js";

const TEXT = {
  zh: {
    deskTitle: "售后工单", loginHint: "使用您的员工账号登录", username: "账号", password: "密码", signIn: "登录",
    workspace: "客服工作台", dashboard: "数据看板", myQueue: "我的队列", pools: "待领取", overview: "全部",
    allOpen: "进行中", stalled: "停滞", closedView: "已完结", ticketNo: "工单号", type: "类型", customer: "客户",
    amount: "金额", status: "状态", priority: "优先级", age: "时长", nothing: "这里暂时没有工单",
    pickTicket: "选择一张工单查看详情", claim: "领取", claimed: "已领取到我的队列", order: "订单", items: "商品",
    reason: "原因", owner: "处理人", queue: "队列", created: "创建", customerSees: "客户看到", timeline: "处理进度",
    assign: "分配", transfer: "转移", dispatch: "调度到队列", setPriority: "调整优先级", note: "备注",
    addNote: "添加备注", agentId: "客服账号", done: "已完成", poolOf: "待领取 · {q}", oldest: "最久 {age}",
    urges: "催单 {n} 次", urged: "客户催单：{id}", stalledWarn: "停滞", auto_fast_review: "极速审核",
    auto_lightning_refund: "闪电退款", unclaimed: "待领取", system: "系统", tickets: "{n} 张",
    a_approve: "审核通过", a_reject: "驳回", a_cancel: "取消工单", a_start_refund: "提交退款", a_complete_refund: "退款完成",
    a_start_pickup: "安排取件", a_receive_return: "取件完成", a_start_picking: "开始拣货", a_ship: "已发货",
    a_deliver: "已签收", a_start_payout: "发放赔付", a_complete_payout: "赔付到账", a_start_processing: "开始处理",
    a_resolve: "已解决", confirmReject: "驳回原因（客户可见）",
    searchHint: "订单号或客户 ID", searchOf: "搜索：{q}", evidence: "凭证",
    live: "实时", followups: "机器人转人工", requestNo: "申请号", whyPerson: "转人工原因", k_refund: "退款申请",
    k_address_change: "修改地址", r_recorded: "机器人无法办理", r_ticket_failed: "未能生成工单",
    requests: "{n} 条", noFollowups: "没有待跟进的机器人请求", session: "服务会话", details: "客户填写",
    handledNote: "处理说明（必填）", handledTicket: "人工工单号（可选）", markHandled: "标记已处理",
    handledOk: "已处理：{id}", pickRequest: "选择一条请求处理", customerReason: "客户说明",
  },
  en: {
    deskTitle: "After-sales tickets", loginHint: "Sign in with your staff account", username: "Username",
    password: "Password", signIn: "Sign in", workspace: "Workspace", dashboard: "Dashboard", myQueue: "My queue",
    pools: "To be claimed", overview: "Overview", allOpen: "Open", stalled: "Stalled", closedView: "Closed",
    ticketNo: "Ticket", type: "Type", customer: "Customer", amount: "Amount", status: "Status", priority: "Priority",
    age: "Age", nothing: "No tickets here", pickTicket: "Pick a ticket to see it", claim: "Claim",
    claimed: "Claimed into your queue", order: "Order", items: "Items", reason: "Reason", owner: "Owner",
    queue: "Queue", created: "Created", customerSees: "Customer sees", timeline: "Timeline", assign: "Assign",
    transfer: "Transfer", dispatch: "Send to pool", setPriority: "Priority", note: "Note", addNote: "Add note",
    agentId: "Staff username", done: "Done", poolOf: "Pool · {q}", oldest: "oldest {age}", urges: "urged {n}×",
    urged: "Customer urged {id}", stalledWarn: "stalled", auto_fast_review: "fast review",
    auto_lightning_refund: "lightning refund", unclaimed: "unclaimed", system: "System", tickets: "{n}",
    a_approve: "Approve", a_reject: "Reject", a_cancel: "Cancel", a_start_refund: "Start refund",
    a_complete_refund: "Refund done", a_start_pickup: "Arrange pickup", a_receive_return: "Goods back",
    a_start_picking: "Start picking", a_ship: "Shipped", a_deliver: "Delivered", a_start_payout: "Pay out",
    a_complete_payout: "Paid", a_start_processing: "Start", a_resolve: "Resolved", confirmReject: "Why (the customer sees it)",
    searchHint: "Order no. or customer id", searchOf: "Search: {q}", evidence: "Evidence",
    live: "Live", followups: "Bot follow-ups", requestNo: "Request", whyPerson: "Why a person", k_refund: "Refund",
    k_address_change: "Address change", r_recorded: "the bot cannot do it", r_ticket_failed: "no ticket could be opened",
    requests: "{n}", noFollowups: "Nothing the bot left for a person", session: "Session", details: "Customer said",
    handledNote: "What you did (required)", handledTicket: "Ticket opened by hand (optional)", markHandled: "Mark handled",
    handledOk: "Handled: {id}", pickRequest: "Pick a request to handle it", customerReason: "Customer's reason",
  },
}[LANG];
const t = (k, vars) => (TEXT[k] ?? k).replace(/\{(\w+)\}/g, (_, x) => (vars && vars[x] != null ? String(vars[x]) : ""));

const state = { auth: null, view: "mine", pool: null, query: "", tickets: [], requests: [], current: null, pools: [], timer: null, queues: {} };

function applyLabels() {
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  for (const el of document.querySelectorAll("[data-t-placeholder]")) el.placeholder = t(el.dataset.tPlaceholder);
  document.title = `${t("deskTitle")} · contactd`;
}

function statusTag(x) {
  const cls = x.final ? (["rejected", "cancelled"].includes(x.state) ? "danger" : "ok") : x.stalled ? "warn" : "accent";
  return h("span", { class: `tag ${cls}`, "data-testid": "ticket-state" }, x.state_label);
}
function priorityTag(p) {
  return h("span", { class: `prio p${p >= 6 ? "hi" : p >= 3 ? "mid" : "lo"}`, title: t("priority") }, `P${p}`);
}

async function loadPools() {
  const res = await api(state.auth, "GET", "/api/v1/tickets/pools");
  state.pools = res.pools;
  const box = $("#pools");
  box.textContent = "";
  for (const p of res.pools) {
    box.append(
      h(
        "button",
        {
          type: "button",
          class: `nav-item ${state.view === "pool" && state.pool === p.queue_id ? "active" : ""}`,
          "data-view": "pool",
          "data-queue": p.queue_id,
          "data-testid": `pool-${p.queue_id}`,
          onclick: () => show("pool", p.queue_id),
        },
        h("span", null, state.queues[p.queue_id] || p.queue_id),
        p.oldest_age_s != null ? h("span", { class: "muted small" }, age(p.oldest_created_at)) : null,
        h("b", { class: `count ${p.urgent ? "warn" : ""}`, "data-testid": `pool-count-${p.queue_id}` }, String(p.count)),
      ),
    );
  }
}

const FOLLOWUPS = "/api/v1/bot/requests?status=recorded,ticket_failed&limit=200";
const followUps = (auth) => can(auth, "tickets.handle") || can(auth, "contacts.view");

function listPath() {
  switch (state.view) {
    case "followups":
      return FOLLOWUPS;
    case "pool":
      return `/api/v1/tickets/pools/${encodeURIComponent(state.pool)}`;
    case "open":
      return "/api/v1/tickets?open=true&limit=300";
    case "stalled":
      return "/api/v1/tickets/stalled";
    case "closed":
      return "/api/v1/tickets?limit=200";
    case "search": {
      const q = encodeURIComponent(state.query);
      return /^O\d/.test(state.query) ? `/api/v1/tickets?order_no=${q}` : `/api/v1/tickets?customer_id=${q}`;
    }
    default:
      return "/api/v1/tickets/mine";
  }
}

async function refresh() {
  try {
    const tasks = [loadPools()];
    if (can(state.auth, "tickets.handle")) {
      tasks.push(api(state.auth, "GET", "/api/v1/tickets/mine").then((r) => ($("#count-mine").textContent = String(r.items.length))));
    }
    if (can(state.auth, "tickets.view")) {
      tasks.push(api(state.auth, "GET", "/api/v1/tickets/stalled").then((r) => ($("#count-stalled").textContent = String(r.items.length))));
    }
    if (followUps(state.auth) && state.view !== "followups") {
      tasks.push(api(state.auth, "GET", FOLLOWUPS).then((r) => ($("#count-followups").textContent = String(r.length))));
    }
    const list = await api(state.auth, "GET", listPath());
    await Promise.all(tasks);
    if (state.view === "followups") {
      state.requests = list;
      $("#count-followups").textContent = String(list.length);
      renderFollowUps();
      if (state.current) openRequest(state.current, true);
      return;
    }
    state.tickets = state.view === "closed" ? list.items.filter((x) => x.final) : list.items;
    renderList();
    if (state.current) await openTicket(state.current, true);
  } catch (e) {
    toast(e.message, "error");
  }
}

function show(view, pool) {
  if ((view === "followups") !== (state.view === "followups")) {
    state.current = null;
    $("#detail").textContent = "";
    $("#detail").append(h("div", { class: "empty big" }, t(view === "followups" ? "pickRequest" : "pickTicket")));
  }
  state.view = view;
  state.pool = pool || null;
  for (const el of document.querySelectorAll(".desk-nav .nav-item")) {
    el.classList.toggle("active", el.dataset.view === view && (view !== "pool" || el.dataset.queue === pool));
  }
  const titles = {
    mine: t("myQueue"),
    open: t("allOpen"),
    stalled: t("stalled"),
    closed: t("closedView"),
    search: t("searchOf", { q: state.query }),
    followups: t("followups"),
  };
  $("#list-title").textContent = view === "pool" ? t("poolOf", { q: state.queues[pool] || pool }) : titles[view];
  refresh();
}

function renderList() {
  $("#ticket-head").hidden = false;
  $("#followup-head").hidden = true;
  const rows = $("#rows");
  rows.textContent = "";
  for (const x of state.tickets) {
    rows.append(
      h(
        "tr",
        {
          class: `${x.id === state.current ? "sel" : ""} ${x.stalled ? "stalled" : ""}`,
          "data-id": x.id,
          "data-testid": "ticket-row",
          onclick: () => openTicket(x.id),
        },
        h("td", { class: "mono" }, x.id),
        h("td", null, TYPE_LABELS[x.type] || x.type_label),
        h("td", null, x.customer_name || "-", h("div", { class: "muted small" }, x.order_no || "")),
        h("td", { class: "num" }, x.amount ? money(x.amount) : "—"),
        h("td", null, statusTag(x), x.urges ? h("span", { class: "tag warn" }, t("urges", { n: x.urges })) : null),
        h("td", null, priorityTag(x.priority)),
        h("td", { class: "muted" }, age(x.created_at)),
      ),
    );
  }
  $("#list-empty").textContent = t("nothing");
  $("#list-empty").hidden = state.tickets.length > 0;
  $("#list-meta").textContent = t("tickets", { n: state.tickets.length });
}

// --- what the bot could not finish: a person follows it up and marks it handled ---
const whyPerson = (r) => (r.status === "ticket_failed" ? t("r_ticket_failed") : t("r_recorded"));

function renderFollowUps() {
  $("#ticket-head").hidden = true;
  $("#followup-head").hidden = false;
  const rows = $("#rows");
  rows.textContent = "";
  for (const r of state.requests) {
    rows.append(
      h(
        "tr",
        { class: r.id === state.current ? "sel" : "", "data-id": r.id, "data-testid": "followup-row", onclick: () => openRequest(r.id) },
        h("td", { class: "mono" }, r.id),
        h("td", null, t("k_" + r.kind)),
        h("td", { class: "mono" }, r.order_no),
        h("td", null, r.customer_id || "—"),
        h("td", null, h("span", { class: `tag ${r.status === "ticket_failed" ? "danger" : "warn"}` }, whyPerson(r))),
        h("td", { class: "muted" }, age(r.created_at)),
      ),
    );
  }
  $("#list-empty").textContent = t("noFollowups");
  $("#list-empty").hidden = state.requests.length > 0;
  $("#list-meta").textContent = t("requests", { n: state.requests.length });
}

function openRequest(id, quiet) {
  const r = (state.requests || []).find((x) => x.id === id);
  const pane = $("#detail");
  if (!r) {
    state.current = null;
    if (!quiet) return;
    pane.textContent = "";
    pane.append(h("div", { class: "empty big" }, t("pickRequest")));
    return;
  }
  if (quiet && state.current === id && pane.querySelector("[data-testid=handle-form]")) return; // keep what is being typed
  state.current = id;
  for (const tr of document.querySelectorAll("#rows tr")) tr.classList.toggle("sel", tr.dataset.id === id);
  const { ticket_error: ticketError, reason, ...rest } = r.details || {};
  const note = h("textarea", { name: "note", rows: "3", maxlength: "1000", required: true, placeholder: t("handledNote"), "data-testid": "handled-note" });
  const ticket = h("input", { name: "ticket_id", maxlength: "64", placeholder: t("handledTicket"), "data-testid": "handled-ticket" });
  const form = h(
    "form",
    { class: "handle-form", "data-testid": "handle-form" },
    note,
    ticket,
    h("button", { type: "submit", class: "btn primary", "data-testid": "mark-handled" }, t("markHandled")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { note: note.value.trim() };
    if (ticket.value.trim()) body.ticket_id = ticket.value.trim();
    try {
      await api(state.auth, "POST", `/api/v1/bot/requests/${encodeURIComponent(r.id)}/handled`, body);
      toast(t("handledOk", { id: r.id }), "ok");
      state.current = null;
      pane.textContent = "";
      pane.append(h("div", { class: "empty big" }, t("pickRequest")));
    } catch (e) {
      toast(e.message, "error");
    }
    await refresh();
  });
  pane.textContent = "";
  pane.append(
    h(
      "div",
      { class: "detail-head" },
      h("div", null, h("div", { class: "mono muted" }, r.id), h("h2", null, t("k_" + r.kind))),
      h("div", { class: "detail-tags" }, h("span", { class: `tag ${r.status === "ticket_failed" ? "danger" : "warn"}`, "data-testid": "followup-why" }, whyPerson(r))),
    ),
    h(
      "dl",
      { class: "facts" },
      fact(t("order"), r.order_no),
      fact(t("customer"), r.customer_id || "—"),
      fact(t("session"), h("span", { class: "mono" }, r.session_id)),
      reason ? fact(t("customerReason"), reason) : null,
      Object.keys(rest).length ? fact(t("details"), Object.values(rest).join("，")) : null,
      ticketError ? fact(t("whyPerson"), h("span", { "data-testid": "ticket-error" }, ticketError)) : null,
      fact(t("created"), when(r.created_at)),
    ),
    can(state.auth, "tickets.handle") ? form : null,
  );
}

async function act(id, path, body, okText) {
  try {
    await api(state.auth, "POST", `/api/v1/tickets/${encodeURIComponent(id)}/${path}`, body);
    if (okText) toast(okText, "ok");
  } catch (e) {
    toast(e.message, "error");
  }
  await refresh();
}

function inlineForm(label, input, onSubmit, testid) {
  const form = h("form", { class: "inline-form", "data-testid": testid }, input, h("button", { type: "submit", class: "btn small" }, label));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    onSubmit(input.value.trim());
  });
  return form;
}

async function openTicket(id, quiet) {
  state.current = id;
  for (const tr of document.querySelectorAll("#rows tr")) tr.classList.toggle("sel", tr.dataset.id === id);
  let d;
  try {
    d = await api(state.auth, "GET", `/api/v1/tickets/${encodeURIComponent(id)}`);
  } catch (e) {
    if (!quiet) toast(e.message, "error");
    state.current = null;
    $("#detail").textContent = "";
    return;
  }
  const x = d.ticket;
  const me = state.auth.username;
  const mine = x.owner_id === me;
  const pane = $("#detail");
  pane.textContent = "";
  const buttons = [];
  if (!x.final && !x.owner_id && can(state.auth, "tickets.claim")) {
    buttons.push(h("button", { type: "button", class: "btn primary", "data-testid": "claim", onclick: () => act(x.id, "claim", undefined, t("claimed")) }, t("claim")));
  }
  if (mine && can(state.auth, "tickets.handle")) {
    for (const a of x.actions) {
      const danger = a === "reject" || a === "cancel";
      buttons.push(
        h(
          "button",
          {
            type: "button",
            class: `btn ${danger ? "danger" : a === x.actions[0] ? "primary" : ""}`,
            "data-testid": `action-${a}`,
            onclick: () => {
              let note;
              if (a === "reject") {
                note = prompt(t("confirmReject"));
                if (note === null) return;
              }
              act(x.id, "actions", { action: a, version: x.version, ...(note ? { note } : {}) });
            },
          },
          t("a_" + a),
        ),
      );
    }
  }
  const manage = [];
  if (!x.final) {
    if (can(state.auth, "tickets.assign")) {
      manage.push(inlineForm(t("assign"), h("input", { placeholder: t("agentId"), required: true, "data-testid": "assign-to" }), (v) => v && act(x.id, "assign", { agent_id: v }), "assign-form"));
    }
    if (x.owner_id && can(state.auth, "tickets.transfer") && (mine || can(state.auth, "tickets.assign"))) {
      manage.push(inlineForm(t("transfer"), h("input", { placeholder: t("agentId"), required: true, "data-testid": "transfer-to" }), (v) => v && act(x.id, "transfer", { agent_id: v }), "transfer-form"));
    }
    if (can(state.auth, "tickets.dispatch")) {
      const sel = h("select", { "data-testid": "dispatch-to" }, Object.entries(state.queues).map(([id, name]) => h("option", { value: id }, name)));
      manage.push(inlineForm(t("dispatch"), sel, (v) => act(x.id, "dispatch", { queue_id: v }), "dispatch-form"));
    }
    if (mine || can(state.auth, "tickets.assign")) {
      const sel = h("select", { "data-testid": "priority-select" }, Array.from({ length: 10 }, (_, p) => h("option", { value: String(p), selected: p === x.priority }, `P${p}`)));
      manage.push(
        inlineForm(t("setPriority"), sel, async (v) => {
          try {
            await api(state.auth, "PUT", `/api/v1/tickets/${encodeURIComponent(x.id)}/priority`, { priority: Number(v) });
          } catch (e) {
            toast(e.message, "error");
          }
          refresh();
        }, "priority-form"),
      );
    }
    if (mine) {
      manage.push(inlineForm(t("addNote"), h("input", { placeholder: t("note"), required: true, maxlength: "1000", "data-testid": "note-text" }), (v) => v && act(x.id, "notes", { text: v }), "note-form"));
    }
  }
  pane.append(
    h(
      "div",
      { class: "detail-head" },
      h("div", null, h("div", { class: "mono muted" }, x.id), h("h2", null, `${TYPE_LABELS[x.type] || x.type_label}`)),
      h("div", { class: "detail-tags" }, statusTag(x), priorityTag(x.priority), x.stalled ? h("span", { class: "tag warn" }, t("stalledWarn")) : null, x.auto_rule ? h("span", { class: "tag gold" }, t("auto_" + x.auto_rule)) : null),
    ),
    h(
      "dl",
      { class: "facts" },
      fact(t("customer"), `${x.customer_name || "-"} ${x.customer_phone || ""}`),
      fact(t("order"), x.order_no || "—"),
      fact(t("amount"), x.amount ? money(x.amount) : "—"),
      fact(t("items"), (x.items || []).map((i) => `${i.name || i.sku} ×${i.qty}`).join("，") || "—"),
      fact(t("reason"), x.reason),
      x.attachments && x.attachments.length
        ? fact(
            t("evidence"),
            h(
              "div",
              { class: "ticket-evidence", "data-testid": "ticket-attachments" },
              x.attachments.map((a) =>
                h(
                  "a",
                  { class: "evidence", href: a.url, target: "_blank", title: a.name },
                  a.content_type.startsWith("image/") ? h("img", { src: a.url, alt: a.name }) : h("span", { class: "file" }, a.name),
                ),
              ),
            ),
          )
        : null,
      fact(t("owner"), x.owner_name || h("span", { class: "tag" }, t("unclaimed"))),
      fact(t("queue"), state.queues[x.queue_id] || x.queue_id),
      fact(t("customerSees"), h("span", { "data-testid": "customer-status" }, x.customer_status)),
      fact(t("created"), `${when(x.created_at)} · ${x.created_by}`),
    ),
    buttons.length ? h("div", { class: "detail-actions", "data-testid": "ticket-actions" }, buttons) : null,
    manage.length ? h("div", { class: "detail-manage" }, manage) : null,
    h("h3", null, t("timeline")),
    h(
      "ol",
      { class: "timeline", "data-testid": "timeline" },
      d.timeline.map((n) =>
        h(
          "li",
          { class: `node ${n.actor_type}` },
          h("div", { class: "node-head" }, h("b", null, n.label), h("span", { class: "muted small" }, when(n.at))),
          h(
            "div",
            { class: "muted small" },
            n.actor_type === "system" ? t("system") : n.actor_name || n.actor_id || "",
            n.to_state && n.to_state !== n.from_state ? ` → ${n.to_state_label || n.to_state}` : "",
            n.data && n.data.to ? ` → ${n.data.to}` : "",
            n.data && n.data.queue_id ? ` → ${state.queues[n.data.queue_id] || n.data.queue_id}` : "",
          ),
          n.note ? h("div", { class: "node-note" }, n.note) : null,
        ),
      ),
    ),
  );
}
function fact(label, value) {
  return [h("dt", null, label), h("dd", null, value)];
}

// Live: a listening socket of this staff member (it does not count as being at the
// workspace) pushes their ticket events and the pools' counts; the list is fetched again
// on each (a burst once). The poll stays as a safety net: every 60 s while the socket is
// up, every 10 s while it is not.
const POLL_LIVE_MS = 60000;
const POLL_MS = 10000;
let pending = null;
function soon() {
  clearTimeout(pending);
  pending = setTimeout(refresh, 250);
}
function poll(ms) {
  clearInterval(state.timer);
  state.timer = setInterval(refresh, ms);
}
function listen(auth) {
  poll(POLL_MS);
  if (!window.io) return;
  const socket = window.io("/agent", {
    transports: ["websocket"],
    auth: (cb) => cb({ token: (loadAuth() || auth).token, passive: true }),
  });
  socket.on("connect", () => {
    $("#live").hidden = false;
    poll(POLL_LIVE_MS);
    soon(); // what changed while it was down
  });
  socket.on("disconnect", () => {
    $("#live").hidden = true;
    poll(POLL_MS);
  });
  for (const name of ["ticket.updated", "tickets.pool", "ticket.urged", "ticket.stalled"]) socket.on(name, soon);
}

async function start(auth) {
  state.auth = auth;
  $("#app").hidden = false;
  $("#me").textContent = auth.username;
  $("#nav-all").hidden = !can(auth, "tickets.view");
  $("[data-view=followups]").hidden = !followUps(auth);
  $("#search").hidden = !can(auth, "tickets.view");
  $("#search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.query = ev.target.q.value.trim();
    if (state.query) show("search");
  });
  $("#to-dashboard").hidden = !can(auth, "dashboard.view");
  try {
    const queues = await api(auth, "GET", "/api/v1/queues");
    for (const q of queues) state.queues[q.queue_id || q.id] = q.name || q.queue_id || q.id;
  } catch {
    /* names are a nicety */
  }
  for (const el of document.querySelectorAll(".desk-nav [data-view]:not([data-view=pool])")) {
    el.addEventListener("click", () => show(el.dataset.view));
  }
  const wanted = new URLSearchParams(location.search).get("ticket");
  show(can(auth, "tickets.handle") ? "mine" : "open");
  if (wanted) openTicket(wanted);
  listen(auth);
  // back to the desk (e.g. from the workspace tab): show what changed meanwhile at once
  document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && refresh());
}

applyLabels();
const auth = loadAuth();
if (auth) start(auth);
else signIn(start);
