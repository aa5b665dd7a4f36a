// contactd live monitor. Listens to the /supervisor namespace (docs/protocol.md) for
// snapshots pushed on change, acts through the REST API (/api/v1/monitor/...), and
// downloads reports as CSV. No framework: pages/supervisor.html holds the markup.
import { $, api as apiAs, can as canAs, h, toast } from "./common.js";

const AUTH_KEY = "contactd.supervisor.auth";
const HISTORY_MS = 10 * 60 * 1000;
const STATES = ["available", "away", "wrap_up", "offline"];
const STATE_LABEL = { available: "在线", away: "小休", wrap_up: "整理中", offline: "离线" };
const STATE_COLOR = { available: "#12a150", away: "#d97706", wrap_up: "#1662d6", offline: "#98a2b3" };
const QUEUE_COLORS = ["#1662d6", "#12a150", "#d97706", "#9333ea", "#d92d20", "#0891b2"];
const ALERT_TEXT = {
  longest_wait: "最长等待超过警戒线 · longest wait over the line",
  service_level: "服务水平低于目标 · service level under target",
};

const app = {
  auth: null,
  socket: null,
  snap: null,
  receivedAt: 0,
  window: "15m",
  history: [], // [{t, waiting: {queue: n}}]
  watching: null, // {session_id, mode}
  timer: null,
};

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children.flat()) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

const can = (perm) => canAs(app.auth, perm);

function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

const pct = (v) => (v === null || v === undefined ? "—" : `${Math.round(v * 1000) / 10}%`);
const secs = (v) => (v === null || v === undefined ? "—" : `${Math.round(v)}s`);

// ------------------------------------------------------------------- REST --
// as the signed-in supervisor
const api = (method, path, body) => apiAs(app.auth, method, path, body);

async function act(label, method, path, body) {
  try {
    await api(method, path, body);
    toast(`${label} ✓`, "ok");
    app.socket?.emit("refresh", null, (res) => res && res.ok && onSnapshot(res.snapshot));
  } catch (e) {
    toast(`${label}: ${e.message}`, "error");
  }
}

// ---------------------------------------------------------------- sign in --
function showLogin(message) {
  $("#app").hidden = true;
  $("#login").hidden = false;
  const err = $("#login-error");
  err.hidden = !message;
  err.textContent = message || "";
}

async function onLoginSubmit(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  try {
    const res = await api("POST", "/api/v1/auth/login", {
      username: form.username.value.trim(),
      password: form.password.value,
    });
    if (!(res.permissions || []).includes("monitor.view")) {
      showLogin("此账号没有监控权限 · this account may not use the monitor");
      return;
    }
    app.auth = res;
    sessionStorage.setItem(AUTH_KEY, JSON.stringify(res));
    form.password.value = "";
    start();
  } catch (e) {
    showLogin(`登录失败 · ${e.message}`);
  }
}

function signOut(message) {
  api("POST", "/api/v1/auth/logout").catch(() => {});
  sessionStorage.removeItem(AUTH_KEY);
  app.auth = null;
  app.socket?.disconnect();
  app.socket = null;
  clearInterval(app.timer);
  showLogin(message);
}

function start() {
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#me").textContent = app.auth.username;
  const today = new Date().toISOString().slice(0, 10);
  const form = $("#report-form");
  form.from.value = form.from.value || today;
  form.to.value = form.to.value || today;
  const socket = window.io("/supervisor", {
    transports: ["websocket"],
    auth: (cb) => cb({ token: app.auth ? app.auth.token : "" }),
  });
  app.socket = socket;
  socket.on("connect", () => setConn(true));
  socket.on("disconnect", () => setConn(false));
  socket.on("connect_error", (err) => {
    const code = err && err.data && err.data.code;
    if (code === "unauthenticated" || code === "token_expired") signOut("登录已过期 · please sign in again");
    else if (code === "forbidden") signOut("此账号没有监控权限 · this account may not use the monitor");
    else setConn(false);
  });
  socket.on("snapshot", onSnapshot);
  socket.on("message", (p) => p && p.message && addMessage(p.message));
  socket.on("alert", (a) => toast(`回复超时 · reply overdue: ${a.session_id} (${a.agent_id}, ${a.waiting_s}s)`, "error"));
  app.timer = setInterval(tick, 1000);
}

function setConn(up) {
  $("#conn").className = `conn ${up ? "up" : "down"}`;
  $("#conn-label").textContent = up ? "实时 Live" : "重连中 Reconnecting…";
}

// ---------------------------------------------------------------- render --
function onSnapshot(snap) {
  if (!snap || !snap.queues) return;
  app.snap = snap;
  app.receivedAt = Date.now();
  const waiting = {};
  for (const q of snap.queues) waiting[q.queue_id] = q.waiting;
  app.history.push({ t: app.receivedAt, waiting });
  app.history = app.history.filter((p) => p.t >= app.receivedAt - HISTORY_MS);
  render();
}

function age() {
  return app.snap ? Date.now() - app.receivedAt : 0;
}

function render() {
  if (!app.snap) return;
  renderAlerts();
  renderTiles();
  renderWaiting();
  renderAgents();
  renderSessions();
  drawWaiting();
  drawSl();
  drawStates();
  tick();
}

function tick() {
  const fresh = $("#fresh");
  if (app.snap) fresh.textContent = `更新于 ${Math.floor(age() / 1000)}s 前 · updated`;
  for (const el of document.querySelectorAll("[data-since]:not([data-since=\"\"])")) {
    el.textContent = duration(Number(el.dataset.since) + age());
  }
}

function renderAlerts() {
  const box = $("#alerts");
  box.textContent = "";
  for (const q of app.snap.queues) {
    for (const code of q.alerts) {
      box.append(
        h("div", { class: "sv-alert", "data-testid": `alert-${q.queue_id}-${code}` },
          h("b", {}, q.name), " · ", ALERT_TEXT[code] || code),
      );
    }
  }
}

function renderTiles() {
  const box = $("#queues");
  box.textContent = "";
  for (const q of app.snap.queues) {
    const s = q.stats[app.window];
    const alert = q.alerts.length > 0;
    box.append(
      h("article", { class: `sv-tile${alert ? " alert" : ""}`, "data-testid": `queue-${q.queue_id}` },
        h("header", {}, h("b", {}, q.name), h("span", { class: "tag" }, q.channel === "voice" ? "电话 voice" : "在线 chat")),
        h("div", { class: "sv-big" },
          h("span", { "data-testid": "waiting" }, q.waiting), h("small", {}, "排队 waiting")),
        h("dl", {},
          kv("最长等待 Longest", h("span", { "data-since": q.waiting ? q.longest_wait_ms : "", "data-testid": "longest" }, q.waiting ? duration(q.longest_wait_ms) : "—")),
          kv("SL", h("span", { "data-testid": "sl" }, pct(s.service_level))),
          kv("SL2", pct(s.service_level2)),
          kv("进线 Offered", h("span", { "data-testid": "offered" }, s.offered)),
          kv("接通 Answered", h("span", { "data-testid": "answered" }, s.answered)),
          kv("放弃 Abandoned", h("span", { "data-testid": "abandoned" }, s.abandoned)),
          kv("ASA", secs(s.asa_s)),
          kv("AHT", secs(s.aht_s)),
          kv("可用坐席 Agents", q.eligible_agents),
        ),
      ),
    );
  }
}

function kv(k, v) {
  return h("div", {}, h("dt", {}, k), h("dd", {}, v));
}

function queueName(id) {
  return app.snap.queues.find((q) => q.queue_id === id)?.name || id;
}

function renderWaiting() {
  const body = $("#waiting");
  body.textContent = "";
  const rows = app.snap.queues.flatMap((q) => q.waiting_list);
  rows.sort((a, b) => b.waited_ms - a.waited_ms);
  $("#waiting-empty").hidden = rows.length > 0;
  $("#waiting-count").textContent = rows.length ? `(${rows.length})` : "";
  const acting = can("monitor.act");
  for (const w of rows) {
    const channel = app.snap.queues.find((q) => q.queue_id === w.queue_id)?.channel;
    const sameChannel = app.snap.queues.filter((q) => q.queue_id !== w.queue_id && q.channel === channel);
    const moveSel = h("select", { "aria-label": "move to queue", "data-testid": "move-queue" },
      ...sameChannel.map((q) => h("option", { value: q.queue_id }, q.name)));
    const offerSel = h("select", { "aria-label": "offer to agent", "data-testid": "offer-agent" },
      ...app.snap.agents.filter((a) => a.state !== "offline").map((a) => h("option", { value: a.agent_id }, a.agent_id)));
    body.append(
      h("tr", { "data-testid": `waiting-${w.contact_id}` },
        h("td", {}, queueName(w.queue_id)),
        h("td", {}, w.customer_name || w.session_id || w.contact_id),
        h("td", {}, w.entry_point || "—"),
        h("td", {}, w.priority > 0 ? h("span", { class: "tag gold" }, `P${w.priority}`) : "0"),
        h("td", { "data-since": w.waited_ms }, duration(w.waited_ms)),
        h("td", { class: "sv-actions" },
          acting && sameChannel.length ? [moveSel, h("button", { class: "btn small", type: "button", "data-testid": "move",
            onclick: () => act("转队列 Move", "POST", `/api/v1/monitor/contacts/${encodeURIComponent(w.contact_id)}/move`, { queue_id: moveSel.value }) }, "转 Move")] : null,
          acting ? [offerSel, h("button", { class: "btn small", type: "button", "data-testid": "offer",
            onclick: () => act("指派 Offer", "POST", `/api/v1/monitor/contacts/${encodeURIComponent(w.contact_id)}/offer`, { agent_id: offerSel.value }) }, "指派 Offer")] : null,
        ),
      ),
    );
  }
}

function renderAgents() {
  const body = $("#agents");
  body.textContent = "";
  const acting = can("monitor.act");
  for (const a of app.snap.agents) {
    const s = a.stats[app.window];
    const cap = a.capacity.chat || 0;
    const stateSel = h("select", { "aria-label": "state", "data-testid": "agent-state-select" },
      ...["available", "away", "offline"].map((st) => h("option", { value: st, selected: st === a.state }, STATE_LABEL[st])));
    body.append(
      h("tr", { "data-testid": `agent-${a.agent_id}` },
        h("td", {}, h("b", {}, a.agent_id)),
        h("td", {}, a.team || "—"),
        h("td", {}, h("span", { class: `state-pill ${a.state}`, "data-testid": "state" },
          h("i", { class: "dot" }), STATE_LABEL[a.state] || a.state, a.reason ? ` · ${a.reason}` : "",
          a.draining ? h("span", { class: "tag warn" }, "排空 draining") : null)),
        h("td", { "data-since": a.time_in_state_ms }, duration(a.time_in_state_ms)),
        h("td", {}, `${a.active + a.offered} / ${cap}`),
        h("td", {}, s.handled),
        h("td", {}, secs(s.aht_s)),
        h("td", {}, pct(s.occupancy)),
        h("td", { class: "sv-actions" }, acting ? [
          stateSel,
          h("button", { class: "btn small", type: "button", "data-testid": "set-state",
            onclick: () => act(`${a.agent_id} → ${stateSel.value}`, "POST", `/api/v1/monitor/agents/${encodeURIComponent(a.agent_id)}/state`, { state: stateSel.value, reason: "supervisor" }) }, "设置 Set"),
          a.state !== "offline" && !a.draining ? h("button", { class: "btn small danger", type: "button", "data-testid": "drain",
            onclick: () => act(`${a.agent_id} 排空 drain`, "POST", `/api/v1/monitor/agents/${encodeURIComponent(a.agent_id)}/drain`) }, "排空 Drain") : null,
        ] : null),
      ),
    );
  }
}

function renderSessions() {
  const body = $("#sessions");
  body.textContent = "";
  $("#sessions-count").textContent = app.snap.sessions.length ? `(${app.snap.sessions.length})` : "";
  for (const s of app.snap.sessions) {
    body.append(
      h("tr", { "data-testid": `session-${s.contact_id}` },
        h("td", { class: "mono" }, s.session_id || s.contact_id),
        h("td", {}, s.customer_name || "—"),
        h("td", {}, queueName(s.queue_id)),
        h("td", {}, s.agent_id),
        h("td", {}, s.channel),
        h("td", {}, s.accepted_at ? new Date(s.accepted_at).toLocaleTimeString() : "—"),
        h("td", { class: "sv-actions" }, can("monitor.join") && s.session_id && s.channel === "chat" ? [
          h("button", { class: "btn small", type: "button", "data-testid": "listen", onclick: () => joinSession(s.session_id, "silent") }, "旁听 Listen"),
          h("button", { class: "btn small", type: "button", "data-testid": "join", onclick: () => joinSession(s.session_id, "visible") }, "介入 Join"),
        ] : null),
      ),
    );
  }
}

// ------------------------------------------------------------ join a chat --
function emit(event, payload) {
  return new Promise((resolve) => {
    if (!app.socket || !app.socket.connected) {
      resolve({ ok: false, error: { code: "disconnected", message: "not connected" } });
      return;
    }
    app.socket.timeout(10000).emit(event, payload, (err, res) =>
      resolve(err ? { ok: false, error: { code: "timeout", message: "no answer" } } : res));
  });
}

async function joinSession(sessionId, mode) {
  if (app.watching) await leaveSession();
  const res = await emit("session.join", { session_id: sessionId, mode });
  if (!res.ok) {
    toast(`介入 Join: ${res.error.message}`, "error");
    return;
  }
  app.watching = { session_id: sessionId, mode };
  $("#watch").hidden = false;
  $("#watch-form").hidden = mode !== "visible";
  $("#watch-title").textContent = `${mode === "visible" ? "介入中 Joined" : "旁听中 Listening"} · ${sessionId} `;
  $("#watch-messages").textContent = "";
  for (const m of res.messages) addMessage(m);
}

async function leaveSession() {
  const w = app.watching;
  app.watching = null;
  $("#watch").hidden = true;
  if (w) await emit("session.leave", { session_id: w.session_id });
}

function addMessage(m) {
  if (!app.watching || m.session_id !== app.watching.session_id) return;
  const who = m.sender.name || m.sender.type;
  const list = $("#watch-messages");
  list.append(h("li", { class: `sv-msg ${m.sender.type}`, "data-testid": "watch-message" },
    h("b", {}, who), " ", m.text || `[${m.kind}]`));
  list.scrollTop = list.scrollHeight;
}

async function onSay(ev) {
  ev.preventDefault();
  const input = ev.currentTarget.text;
  const text = input.value.trim();
  if (!text || !app.watching) return;
  const res = await emit("session.say", {
    session_id: app.watching.session_id,
    client_msg_id: `sup-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`,
    text,
  });
  if (res.ok) input.value = "";
  else toast(res.error.message, "error");
}

// ---------------------------------------------------------------- charts --
function axis(el, max) {
  el.append(svg("line", { x1: 30, y1: 140, x2: 395, y2: 140, class: "sv-axis" }));
  el.append(svg("text", { x: 26, y: 14, class: "sv-tick", "text-anchor": "end" }, max));
  el.append(svg("text", { x: 26, y: 140, class: "sv-tick", "text-anchor": "end" }, 0));
}

function drawWaiting() {
  const el = $("#chart-waiting");
  el.textContent = "";
  const queues = app.snap.queues.map((q) => q.queue_id);
  const max = Math.max(1, ...app.history.flatMap((p) => Object.values(p.waiting)));
  axis(el, max);
  const t1 = app.receivedAt;
  const t0 = t1 - HISTORY_MS;
  const x = (t) => 30 + ((t - t0) / HISTORY_MS) * 365;
  const y = (n) => 140 - (n / max) * 126;
  const legend = $("#legend-waiting");
  legend.textContent = "";
  queues.forEach((qid, i) => {
    const color = QUEUE_COLORS[i % QUEUE_COLORS.length];
    const pts = [];
    let last = null;
    for (const p of app.history) {
      const n = p.waiting[qid] ?? 0;
      if (last !== null) pts.push(`${x(p.t)},${y(last)}`); // steps: the count holds until it changes
      pts.push(`${x(p.t)},${y(n)}`);
      last = n;
    }
    if (last !== null) pts.push(`${x(t1)},${y(last)}`);
    el.append(svg("polyline", { points: pts.join(" "), fill: "none", stroke: color, "stroke-width": 2 }));
    legend.append(h("span", {}, h("i", { style: `background:${color}` }), queueName(qid)));
  });
}

function drawSl() {
  const el = $("#chart-sl");
  el.textContent = "";
  $("#sl-window").textContent = { "15m": "15 min", "60m": "60 min", today: "today" }[app.window];
  axis(el, "100%");
  const qs = app.snap.queues;
  const w = Math.min(60, 340 / Math.max(1, qs.length) - 10);
  qs.forEach((q, i) => {
    const sl = q.stats[app.window].service_level;
    const x = 40 + i * (340 / qs.length);
    const hgt = sl === null ? 0 : sl * 126;
    const bad = q.alerts.includes("service_level");
    el.append(svg("rect", { x, y: 140 - hgt, width: w, height: hgt, rx: 3, class: bad ? "sv-bar bad" : "sv-bar" }));
    el.append(svg("text", { x: x + w / 2, y: 135 - hgt, class: "sv-val", "text-anchor": "middle" }, pct(sl)));
    el.append(svg("text", { x: x + w / 2, y: 154, class: "sv-tick", "text-anchor": "middle" }, q.queue_id));
  });
}

function drawStates() {
  const el = $("#chart-states");
  el.textContent = "";
  const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
  for (const a of app.snap.agents) counts[a.state] = (counts[a.state] || 0) + 1;
  const max = Math.max(1, ...Object.values(counts));
  STATES.forEach((s, i) => {
    const y = 12 + i * 36;
    const wdt = (counts[s] / max) * 280;
    el.append(svg("text", { x: 70, y: y + 17, class: "sv-tick", "text-anchor": "end" }, STATE_LABEL[s]));
    el.append(svg("rect", { x: 80, y, width: Math.max(wdt, 1), height: 24, rx: 3, fill: STATE_COLOR[s], "data-state": s }));
    el.append(svg("text", { x: 86 + wdt, y: y + 17, class: "sv-val", "data-testid": `count-${s}` }, counts[s]));
  });
}

// ---------------------------------------------------------------- reports --
async function onReport(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const kind = ev.submitter?.value || "queues";
  const q = new URLSearchParams({ from: form.from.value, to: form.to.value, group: form.group.value, format: "csv" });
  try {
    const r = await fetch(`/api/v1/reports/${kind}?${q}`, { headers: { Authorization: `Bearer ${app.auth.token}` } });
    if (!r.ok) throw new Error((await r.json()).error.message);
    const url = URL.createObjectURL(await r.blob());
    const a = h("a", { href: url, download: `${kind}-${form.from.value}-${form.to.value}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  } catch (e) {
    toast(`报表 Report: ${e.message}`, "error");
  }
}

// ------------------------------------------------------------------ start --
function setWindow(w) {
  app.window = w;
  for (const b of document.querySelectorAll("[data-window]")) b.classList.toggle("on", b.dataset.window === w);
  render();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", onLoginSubmit);
  $("#logout").addEventListener("click", () => signOut());
  $("#report-form").addEventListener("submit", onReport);
  $("#watch-form").addEventListener("submit", onSay);
  $("#watch-leave").addEventListener("click", leaveSession);
  for (const b of document.querySelectorAll("[data-window]")) b.addEventListener("click", () => setWindow(b.dataset.window));
  setWindow(app.window);
  const saved = sessionStorage.getItem(AUTH_KEY);
  if (saved) {
    app.auth = JSON.parse(saved);
    start();
  } else {
    showLogin();
  }
});
