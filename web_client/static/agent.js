// contactd agent workspace. Speaks the /agent namespace of docs/protocol.md with the
// official socket.io-client (window.io, loaded by the page) and the REST API for sign-in.
// No framework: the page's markup is in pages/agent.html, this module fills it in.
// Calls (the phone channel) are in voice.js, which this module drives through a few hooks.
import { $, AUTH_KEY, LANG, api as apiAs, can as canAs, h, money, pad, toast } from "./common.js";
import { VOICE_LABELS, createVoice } from "./voice.js";

// ------------------------------------------------------------------- labels --
const LABELS = {
  zh: {
    loginTitle: "客服工作台",
    loginHint: "使用您的员工账号登录",
    username: "账号",
    password: "密码",
    signIn: "登录",
    signingIn: "正在登录…",
    signOut: "退出",
    workspace: "客服工作台",
    available: "在线",
    away: "小休",
    offline: "离线",
    wrap_up: "整理中",
    reason_break: "休息",
    reason_lunch: "用餐",
    reason_meeting: "会议",
    reason_training: "培训",
    reason_other: "其他",
    reason_no_answer: "未接会话",
    load: "接待",
    wrapUp: "整理中",
    wrapHint: "会话已结束，整理完成后点击「就绪」接待下一位",
    ready: "就绪",
    connected: "已连接",
    reconnecting: "连接中断，正在重连…",
    sessions: "会话",
    queues: "队列",
    waiting: "排队 {n}",
    noSessions: "暂无会话。切换为「在线」后，新会话会在这里出现。",
    pickSession: "选择左侧的会话开始接待",
    customer: "客户信息",
    noCustomer: "选择会话后显示客户资料、订单和历史记录",
    transfer: "转接",
    endChat: "结束会话",
    closeTab: "关闭",
    attach: "发送图片或文件",
    composerHint: "输入回复…",
    enterToSend: "Enter 发送 · Shift+Enter 换行",
    send: "发送",
    sending: "发送中…",
    failed: "发送失败，点击重试",
    transferTitle: "转接会话",
    transferNote: "转接备注",
    toQueue: "转给队列",
    toAgent: "转给客服",
    queue: "队列",
    agentId: "客服账号",
    note: "备注（接手的同事会看到）",
    cancel: "取消",
    endTitle: "结束会话",
    disposition: "处理结果",
    disp_answered: "已解答",
    disp_follow_up: "需跟进",
    disp_ticket_created: "已建工单",
    disp_no_response: "客户无回应",
    disp_invalid: "无效咨询",
    incoming: "新会话",
    accept: "接受",
    decline: "拒绝",
    expired: "已超时",
    offerRevoked: "会话 {sid} 已被撤回（{reason}）",
    visitor: "访客 Visitor",
    phone: "手机",
    unmask: "显示完整号码",
    unmaskNoPerm: "需要查看隐私信息的权限",
    level: "会员",
    region: "地区",
    entry: "入口",
    order: "订单",
    orders: "近期订单",
    noOrders: "暂无订单",
    question: "咨询问题",
    transcript: "接入前对话",
    botHandoff: "机器人转人工",
    botReason_asked: "客户要求转人工",
    botReason_misses: "机器人连续两次没答上",
    botReason_negative_feedback: "客户对机器人回答不满意",
    botReason_no_answer: "知识库没有答案",
    botReason_bot_unavailable: "外部机器人无响应",
    botReason_verification: "订单验证多次失败",
    botRequests: "已登记的自助申请",
    botTickets: "机器人开的售后工单",
    previous: "历史会话",
    returningYours: "回头客 · 上次由您接待",
    noPrevious: "首次咨询",
    cases: "工单 / 赔付",
    tickets: "工单",
    compensations: "赔付单",
    total: "合计",
    logistics: "物流",
    customerTyping: "客户正在输入…",
    typingIn: "正在输入…",
    state_queued: "排队中",
    state_offered: "分配中",
    state_active: "接待中",
    state_ended: "已结束",
    state_wrap: "整理中",
    end_resolved: "会话已结束",
    end_customer_left: "客户已结束会话",
    end_abandoned_in_queue: "客户在排队时离开",
    end_transferred: "会话已转出",
    end_timeout: "会话超时结束",
    end_agent_lost: "连接中断，会话已重新排队",
    end_left_message: "客户已留言",
    transferredOut: "已转接：{target}",
    agentJoined: "{name} 接入会话",
    entry_order_page: "订单页",
    entry_product_page: "商品页",
    entry_web: "网站",
    entry_app: "App",
    loginFailed: "登录失败：{msg}",
    sessionExpired: "登录已过期，请重新登录",
    noAgentWork: "该账号没有接待权限",
    error: "操作失败：{msg}",
    file: "文件",
  },
  en: {
    loginTitle: "Agent workspace",
    loginHint: "Sign in with your staff account",
    username: "Username",
    password: "Password",
    signIn: "Sign in",
    signingIn: "Signing in…",
    signOut: "Sign out",
    workspace: "Agent workspace",
    available: "Available",
    away: "Away",
    offline: "Offline",
    wrap_up: "Wrap-up",
    reason_break: "Break",
    reason_lunch: "Lunch",
    reason_meeting: "Meeting",
    reason_training: "Training",
    reason_other: "Other",
    reason_no_answer: "Missed offers",
    load: "Load",
    wrapUp: "Wrap-up",
    wrapHint: "The chat has ended; click Ready when your notes are done",
    ready: "Ready",
    connected: "Connected",
    reconnecting: "Connection lost, reconnecting…",
    sessions: "Sessions",
    queues: "Queues",
    waiting: "{n} waiting",
    noSessions: "No sessions. Go Available and new chats will appear here.",
    pickSession: "Pick a session on the left",
    customer: "Customer",
    noCustomer: "The customer's profile, orders and history appear here",
    transfer: "Transfer",
    endChat: "End chat",
    closeTab: "Close",
    attach: "Send an image or file",
    composerHint: "Type a reply…",
    enterToSend: "Enter to send · Shift+Enter for a new line",
    send: "Send",
    sending: "sending…",
    failed: "Not sent — click to retry",
    transferTitle: "Transfer chat",
    transferNote: "Transfer note",
    toQueue: "To a queue",
    toAgent: "To an agent",
    queue: "Queue",
    agentId: "Agent username",
    note: "Note (your colleague will see it)",
    cancel: "Cancel",
    endTitle: "End chat",
    disposition: "Outcome",
    disp_answered: "Answered",
    disp_follow_up: "Needs follow-up",
    disp_ticket_created: "Ticket created",
    disp_no_response: "No response",
    disp_invalid: "Invalid",
    incoming: "Incoming chat",
    accept: "Accept",
    decline: "Decline",
    expired: "Expired",
    offerRevoked: "Chat {sid} was withdrawn ({reason})",
    visitor: "访客 Visitor",
    phone: "Phone",
    unmask: "Show number",
    unmaskNoPerm: "Needs permission to view personal data",
    level: "Member",
    region: "Region",
    entry: "Entry",
    order: "Order",
    orders: "Recent orders",
    noOrders: "No orders",
    question: "Question",
    transcript: "Before the agent joined",
    botHandoff: "Handed over by the bot",
    botReason_asked: "The customer asked for a person",
    botReason_misses: "The bot missed twice in a row",
    botReason_negative_feedback: "The customer was unhappy with an answer",
    botReason_no_answer: "No answer in the knowledge base",
    botReason_bot_unavailable: "The external bot did not answer",
    botReason_verification: "Failed the order check too often",
    botRequests: "Self-service requests recorded",
    botTickets: "After-sales tickets the bot opened",
    previous: "Previous sessions",
    returningYours: "Returning · you served them last",
    noPrevious: "First contact",
    cases: "Tickets / compensation",
    tickets: "Tickets",
    compensations: "Compensations",
    total: "Total",
    logistics: "Shipping",
    customerTyping: "Customer is typing…",
    typingIn: "typing…",
    state_queued: "Queued",
    state_offered: "Offered",
    state_active: "Active",
    state_ended: "Ended",
    state_wrap: "Wrap-up",
    end_resolved: "The chat has ended",
    end_customer_left: "The customer ended the chat",
    end_abandoned_in_queue: "The customer left the queue",
    end_transferred: "Transferred",
    end_timeout: "Ended after a timeout",
    end_agent_lost: "Connection lost; the chat was re-queued",
    end_left_message: "The customer left a message",
    transferredOut: "Transferred to {target}",
    agentJoined: "{name} joined",
    entry_order_page: "Order page",
    entry_product_page: "Product page",
    entry_web: "Website",
    entry_app: "App",
    loginFailed: "Sign-in failed: {msg}",
    sessionExpired: "Your session expired, please sign in again",
    noAgentWork: "This account may not take chats",
    error: "Failed: {msg}",
    file: "File",
  },
};

Object.assign(LABELS.zh, VOICE_LABELS.zh);
Object.assign(LABELS.en, VOICE_LABELS.en);
const L = LABELS[LANG];
const ACK_TIMEOUT_MS = 10000;
const POPS_KEY = "contactd.agent.pops";

function t(key, vars) {
  const s = L[key] ?? key;
  return vars ? s.replace(/\{(\w+)\}/g, (_, k) => (vars[k] == null ? "" : String(vars[k]))) : s;
}

// --------------------------------------------------------------- helpers --
function hm(ms) {
  const d = new Date(ms || Date.now());
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
function day(ms) {
  if (!ms) return "";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}
function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 3600) return `${pad(Math.floor(s / 60))}:${pad(s % 60)}`;
  return `${Math.floor(s / 3600)}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}
function randomId(prefix) {
  const b = crypto.getRandomValues(new Uint8Array(12));
  return prefix + Date.now().toString(36) + "-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
function initial(name) {
  return (name || "?").trim().charAt(0).toUpperCase() || "?";
}
function avatarColor(key) {
  const colors = ["#3b82f6", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899", "#64748b"];
  let x = 0;
  for (const c of String(key || "")) x = (x * 31 + c.charCodeAt(0)) >>> 0;
  return colors[x % colors.length];
}
function errText(err) {
  if (!err) return "?";
  return err.message || err.code || String(err);
}

function applyLabels() {
  document.documentElement.lang = LANG === "en" ? "en" : "zh-CN";
  document.title = `${t("workspace")} · contactd`;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of document.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
}

// ------------------------------------------------------------------ state --
const app = {
  auth: null, // {token, username, role, permissions, expires_at}
  socket: null,
  agent: null, // Agent view: {agent_id, state, reason, since, queues, capacity, slots}
  convs: new Map(), // session_id -> Conv
  current: null, // session_id shown
  offers: new Map(), // offer_id -> {el, timer}
  queues: [],
  everConnected: false,
  queuesTimer: null,
  sinceTimer: null,
};

const can = (perm) => canAs(app.auth, perm);
// REST as the signed-in agent
const api = (method, path, body) => apiAs(app.auth, method, path, body);

// ---------------------------------------------------------------- sign in --
function showLogin(message) {
  $("#app").hidden = true;
  $("#login").hidden = false;
  const err = $("#login-error");
  err.hidden = !message;
  err.textContent = message || "";
  $("#login-form [name=username]").focus();
}

async function onLoginSubmit(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const btn = $("[type=submit]", form);
  const username = form.username.value.trim();
  const password = form.password.value;
  btn.disabled = true;
  btn.textContent = t("signingIn");
  try {
    const res = await api("POST", "/api/v1/auth/login", { username, password });
    if (!(res.permissions || []).includes("agent.work")) {
      showLogin(t("noAgentWork"));
      return;
    }
    app.auth = res;
    sessionStorage.setItem(AUTH_KEY, JSON.stringify(res));
    form.password.value = "";
    startWorkspace();
  } catch (e) {
    showLogin(t("loginFailed", { msg: e.message }));
  } finally {
    btn.disabled = false;
    btn.textContent = t("signIn");
  }
}

async function signOut() {
  try {
    if (app.socket && app.socket.connected && app.agent && app.agent.state !== "offline") {
      await emit("agent.state", { state: "offline" });
    }
    await api("POST", "/api/v1/auth/logout");
  } catch {
    /* signing out anyway */
  }
  endWorkspace();
  showLogin();
}

function endWorkspace(message) {
  sessionStorage.removeItem(AUTH_KEY);
  sessionStorage.removeItem(POPS_KEY);
  app.auth = null;
  if (app.socket) {
    app.socket.removeAllListeners();
    app.socket.disconnect();
    app.socket = null;
  }
  clearInterval(app.queuesTimer);
  clearInterval(app.sinceTimer);
  for (const o of app.offers.values()) clearInterval(o.timer);
  app.offers.clear();
  $("#offers").textContent = "";
  app.convs.clear();
  app.current = null;
  app.agent = null;
  app.everConnected = false;
  $("#tabs").textContent = "";
  if (message) showLogin(message);
}

// ---------------------------------------------------------------- socket --
function emit(event, payload) {
  return new Promise((resolve) => {
    const s = app.socket;
    if (!s || !s.connected) {
      resolve({ ok: false, error: { code: "disconnected", message: t("reconnecting") } });
      return;
    }
    s.timeout(ACK_TIMEOUT_MS).emit(event, payload, (err, res) => {
      if (err) resolve({ ok: false, error: { code: "timeout", message: "no answer from the server" } });
      else resolve(res || { ok: false, error: { code: "bad_answer", message: "empty answer" } });
    });
  });
}

async function emitOrToast(event, payload) {
  const res = await emit(event, payload);
  if (!res.ok) toast(t("error", { msg: errText(res.error) }), "error");
  return res;
}

function startWorkspace() {
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#me").textContent = app.auth.username;
  renderAgent();
  restorePops();
  connectSocket();
  loadQueues();
  app.queuesTimer = setInterval(loadQueues, 5000);
  app.sinceTimer = setInterval(renderSince, 1000);
}

function connectSocket() {
  const socket = window.io("/agent", {
    transports: ["websocket"],
    auth: (cb) => cb({ token: app.auth ? app.auth.token : "" }),
  });
  app.socket = socket;
  socket.on("connect", onConnect);
  socket.on("disconnect", () => setConn(false));
  socket.on("connect_error", (err) => {
    const code = err && err.data && err.data.code;
    if (code === "unauthenticated" || code === "token_expired") {
      endWorkspace(t("sessionExpired"));
    } else if (code === "forbidden") {
      endWorkspace(t("noAgentWork"));
    } else {
      setConn(false);
    }
  });
  socket.on("agent.updated", (p) => {
    if (!p || !p.agent) return;
    setAgent(p.agent);
    adoptOnce();
  });
  socket.on("offer", onOffer);
  socket.on("offer.revoked", onOfferRevoked);
  socket.on("session.updated", (p) => p && p.session && onSessionUpdated(p.session));
  socket.on("message", (p) => p && p.message && onMessage(p.message, true));
  socket.on("typing", onPeerTyping);
}

function onConnect() {
  setConn(true);
  app.everConnected = true;
  // catch up every open conversation with what was missed while away
  for (const conv of app.convs.values()) {
    if (conv.closed) continue;
    syncConv(conv);
  }
  // The server pushes agent.updated on connect when we are in routing (socket.io hands it
  // to us just before this handler runs); then the chats it still has on us get their tabs
  // back (after a reload). No push: not in routing, or an older server: ask over REST.
  const socketId = app.socket.id;
  setTimeout(async () => {
    if (!app.socket || app.socket.id !== socketId || app.adoptedFor === socketId) return;
    if (app.agent) await refreshAgent();
    adoptOnce();
  }, 1500);
}

/** Reopen tabs for the routing engine's slots once per connection. */
function adoptOnce() {
  const s = app.socket;
  if (!s || !s.connected || !app.agent || app.adoptedFor === s.id) return;
  app.adoptedFor = s.id;
  adoptSlots();
}

function setConn(up) {
  const el = $("#conn");
  el.classList.toggle("up", up);
  el.classList.toggle("down", !up && app.everConnected);
  $("#conn-label").textContent = up ? t("connected") : app.everConnected ? t("reconnecting") : "…";
  for (const conv of app.convs.values()) if (!up) conv.inFlight = false;
}

// ------------------------------------------------------------ agent state --
async function refreshAgent() {
  if (!app.auth) return;
  try {
    setAgent(await api("GET", `/api/v1/agents/${encodeURIComponent(app.auth.username)}`));
  } catch (e) {
    if (e.code === "agent_not_found" || e.status === 404) setAgent(null);
  }
}

function setAgent(agent) {
  app.agent = agent;
  renderAgent();
  for (const conv of app.convs.values()) updateWrap(conv);
  if (app.current) renderConvChrome();
}

/** Routing contact ids are the service number, plus ".<n>" after the n-th transfer. */
function sessionOfContact(contactId) {
  return String(contactId || "").split(".")[0];
}

function agentState() {
  return app.agent ? app.agent.state : "offline";
}

function renderAgent() {
  const state = agentState();
  const pill = $("#state-pill");
  pill.className = `state-pill ${state}`;
  pill.dataset.state = state;
  let label = t(state);
  if (state === "away" && app.agent && app.agent.reason) label += ` · ${t(`reason_${app.agent.reason}`)}`;
  $("#state-label").textContent = label;
  for (const b of document.querySelectorAll(".seg-btn")) {
    b.classList.toggle("on", b.dataset.state === state || (state === "wrap_up" && b.dataset.state === "available"));
  }
  const slots = (app.agent && app.agent.slots) || [];
  const cap = (app.agent && app.agent.capacity && app.agent.capacity.chat) || 0;
  const used = slots.filter((s) => s.channel === "chat").length;
  $("#load-value").textContent = `${used} / ${cap}`;
  $("#wrap-indicator").hidden = !(state === "wrap_up" || slots.some((s) => s.state === "wrap"));
  renderSince();
}

function renderSince() {
  const el = $("#state-since");
  if (!app.agent || !app.agent.since || agentState() === "offline") {
    el.textContent = "";
    return;
  }
  el.textContent = duration(Date.now() - app.agent.since);
}

async function setState(state, reason) {
  $("#away-menu").hidden = true;
  const current = agentState();
  let res;
  if (current === "offline" && state !== "offline") {
    // not in routing yet: log in (to every queue this account serves), then set the reason
    res = await emitOrToast("agent.login", { state });
    if (res.ok && reason) res = await emitOrToast("agent.state", { state, reason });
  } else {
    const payload = { state };
    if (reason) payload.reason = reason;
    res = await emitOrToast("agent.state", payload);
  }
  if (res.ok && res.agent) setAgent(res.agent);
}

function adoptSlots() {
  // after a reload: open a tab for every chat the routing engine still has on us
  const slots = (app.agent && app.agent.slots) || [];
  for (const slot of slots) {
    const sid = sessionOfContact(slot.contact_id);
    if (slot.state === "offered" || app.convs.has(sid)) continue;
    emit("sync", { session_id: sid, after_seq: 0 }).then((res) => {
      if (!res.ok || !res.session || app.convs.has(res.session.session_id)) return;
      const conv = openConv(res.session, popFor(res.session.session_id));
      for (const m of res.messages || []) addMessage(conv, m, false);
      if (!app.current) selectConv(conv.sid);
    });
  }
}

// ----------------------------------------------------------------- offers --
/** The customer's latest earlier session was mine (sticky routing brings them back). */
function servedLast(pop) {
  const prev = (pop.previous_sessions || [])[0];
  return !!prev && !!app.auth && prev.agent_id === app.auth.username;
}

function onOffer(p) {
  if (!p || !p.offer_id || app.offers.has(p.offer_id)) return;
  const session = p.session || {};
  const pop = p.screen_pop || {};
  const received = Date.now();
  const total = Math.max(1000, (p.deadline || received + 20000) - received);
  const countdown = h("span", { class: "countdown", "data-testid": "offer-countdown" });
  const bar = h("i", { style: "width:100%" });
  const acceptBtn = h("button", { class: "btn primary", "data-testid": "offer-accept", onclick: () => acceptOffer(p) }, t("accept"));
  const declineBtn = h("button", { class: "btn", "data-testid": "offer-decline", onclick: () => declineOffer(p) }, t("decline"));
  const el = h(
    "section",
    { class: "offer", "data-testid": "offer-card", "data-offer-id": p.offer_id, "data-session-id": session.session_id || "" },
    h(
      "div",
      { class: "offer-head" },
      h("span", null, `${t("incoming")} · ${queueName(session.queue_id)}`),
      servedLast(pop) ? h("span", { class: "tag ok", "data-testid": "offer-returning" }, t("returningYours")) : null,
      countdown,
    ),
    h("div", { class: "offer-bar" }, bar),
    h("div", { class: "offer-body", "data-testid": "offer-screen-pop" }, renderScreenPop(pop, session, true)),
    h("div", { class: "offer-actions" }, declineBtn, acceptBtn),
  );
  const tick = () => {
    const left = (p.deadline || received + 20000) - Date.now();
    countdown.textContent = left > 0 ? `${Math.ceil(left / 1000)}s` : t("expired");
    bar.style.width = `${Math.max(0, Math.min(100, (left / total) * 100))}%`;
    if (left <= 0) {
      el.classList.add("expired");
      acceptBtn.disabled = true;
      clearInterval(entry.timer);
      setTimeout(() => dropOffer(p.offer_id), 1500);
    }
  };
  voice.decorateOffer(el, session, pop);
  const entry = { el, timer: setInterval(tick, 250), pop, session };
  app.offers.set(p.offer_id, entry);
  tick();
  $("#offers").append(el);
  try {
    if (document.hidden && window.Notification && Notification.permission === "granted") {
      new Notification(t("incoming"), { body: customerName(pop.customer, session) });
    }
  } catch {
    /* notifications are a nicety */
  }
}

function dropOffer(offerId) {
  const o = app.offers.get(offerId);
  if (!o) return;
  clearInterval(o.timer);
  o.el.remove();
  app.offers.delete(offerId);
}

function onOfferRevoked(p) {
  if (!p || !app.offers.has(p.offer_id)) return;
  dropOffer(p.offer_id);
  toast(t("offerRevoked", { sid: p.session_id || "", reason: p.reason || "" }));
}

async function acceptOffer(p) {
  const o = app.offers.get(p.offer_id);
  if (o) for (const b of o.el.querySelectorAll("button")) b.disabled = true;
  const res = await emitOrToast("offer.accept", { offer_id: p.offer_id });
  dropOffer(p.offer_id);
  if (!res.ok) return;
  savePop(res.session.session_id, p.screen_pop || {});
  const conv = openConv(res.session, p.screen_pop || {});
  for (const m of res.messages || []) addMessage(conv, m, false);
  selectConv(conv.sid);
  $("#input").focus();
}

async function declineOffer(p) {
  dropOffer(p.offer_id);
  await emitOrToast("offer.decline", { offer_id: p.offer_id });
}

// ---------------------------------------------------------- conversations --
function openConv(session, pop) {
  const sid = session.session_id;
  let conv = app.convs.get(sid);
  if (conv) {
    conv.session = session;
    if (pop && Object.keys(pop).length) conv.pop = pop;
    conv.closed = false;
    renderTab(conv);
    return conv;
  }
  conv = {
    sid,
    session,
    pop: pop || {},
    shown: new Map(), // seq -> message
    lastSeq: 0,
    outbox: [],
    inFlight: false,
    unread: 0,
    list: h("ol", { class: "msg-list", "data-session-id": sid }),
    lastText: "",
    lastAt: session.created_at,
    peerTyping: false,
    peerTimer: null,
    typingOn: false,
    typingSentAt: 0,
    typingTimer: null,
    draft: "",
    wrapping: false,
    closed: false,
    tab: null,
  };
  conv.tab = h("li", { class: "tab", "data-testid": "session-tab", "data-session-id": sid, onclick: () => selectConv(sid) });
  app.convs.set(sid, conv);
  $("#tabs").prepend(conv.tab);
  updateWrap(conv);
  renderTab(conv);
  renderTabsMeta();
  return conv;
}

function customerName(customer, session) {
  const c = customer || (session && session.customer) || null;
  return (c && c.name) || t("visitor");
}

function convState(conv) {
  if (conv.wrapping) return "wrap";
  return conv.session.state;
}

function renderTab(conv) {
  const name = customerName(conv.pop.customer, conv.session);
  const state = convState(conv);
  const last = conv.peerTyping ? t("typingIn") : conv.lastText;
  conv.tab.dataset.state = state;
  voice.renderTab(conv);
  conv.tab.classList.toggle("on", app.current === conv.sid);
  conv.tab.replaceChildren(
    h("div", { class: "avatar", style: `background:${avatarColor(conv.sid)}` }, initial(name), h("i", { class: "state-dot" })),
    h("div", { class: "t-name" }, name),
    h("div", { class: "t-time" }, hm(conv.lastAt)),
    h("div", { class: `t-last${conv.peerTyping ? " typing" : ""}` }, last || t(`state_${state}`)),
    conv.unread ? h("span", { class: "unread", "data-testid": "unread-badge" }, String(conv.unread)) : h("span"),
  );
}

function renderTabsMeta() {
  const open = [...app.convs.values()].filter((c) => !c.closed).length;
  $("#session-count").textContent = String(open);
  $("#tabs-empty").hidden = open > 0;
}

function selectConv(sid) {
  const prev = app.convs.get(app.current);
  if (prev) prev.draft = $("#input").value;
  const conv = app.convs.get(sid);
  if (!conv) return;
  app.current = sid;
  conv.unread = 0;
  for (const c of app.convs.values()) renderTab(c);
  $("#conv-empty").hidden = true;
  $("#conv").hidden = false;
  $("#messages").replaceChildren(conv.list);
  $("#input").value = conv.draft || "";
  renderConvChrome();
  renderCustomerPanel(conv);
  scrollDown();
}

function closeConv(sid) {
  const conv = app.convs.get(sid);
  if (!conv) return;
  conv.closed = true;
  conv.tab.remove();
  app.convs.delete(sid);
  forgetPop(sid);
  if (app.current === sid) {
    app.current = null;
    const next = [...app.convs.values()].find((c) => !c.closed);
    if (next) selectConv(next.sid);
    else {
      $("#conv").hidden = true;
      $("#conv-empty").hidden = false;
      $("#customer-body").replaceChildren(h("div", { class: "empty small" }, t("noCustomer")));
    }
  }
  renderTabsMeta();
}

function renderConvChrome() {
  const conv = app.convs.get(app.current);
  if (!conv) return;
  const s = conv.session;
  const state = convState(conv);
  $("#conv-name").textContent = customerName(conv.pop.customer, s);
  $("#conv-sid").textContent = s.session_id;
  $("#conv-queue").textContent = queueName(s.queue_id);
  const st = $("#conv-state");
  st.textContent = t(`state_${state}`);
  st.className = `tag ${state === "active" ? "ok" : state === "wrap" ? "warn" : state === "ended" ? "" : "accent"}`;
  const mine = s.state === "active" && (!s.agent || !app.auth || s.agent.id === app.auth.username);
  $("#btn-transfer").disabled = !mine;
  $("#btn-end").disabled = !mine;
  $("#composer").classList.toggle("disabled", !mine);
  $("#input").disabled = !mine;
  $("#wrap-banner").hidden = !conv.wrapping;
  const endedBanner = $("#ended-banner");
  endedBanner.hidden = s.state !== "ended" || conv.wrapping;
  if (!endedBanner.hidden) $("#ended-text").textContent = t(`end_${s.end_reason || "resolved"}`);
  renderPeerTyping(conv);
  voice.render(conv);
}

function scrollDown() {
  const box = $("#messages");
  box.scrollTop = box.scrollHeight;
}

function onSessionUpdated(session) {
  const conv = app.convs.get(session.session_id);
  if (!conv) return;
  const before = conv.session;
  conv.session = session;
  const me = app.auth && app.auth.username;
  if (session.state === "ended" && before.state !== "ended") {
    systemLine(conv, t(`end_${session.end_reason || "resolved"}`));
    conv.wrapping = true;
    setPeerTyping(conv, false);
    refreshAgent();
  } else if (session.agent && me && session.agent.id !== me && before.agent && before.agent.id === me) {
    systemLine(conv, t("transferredOut", { target: session.agent.name || session.agent.id }));
  } else if (session.state === "queued" && before.state === "active") {
    systemLine(conv, t("transferredOut", { target: queueName(session.queue_id) }));
  }
  renderTab(conv);
  if (app.current === conv.sid) renderConvChrome();
}

/** A conversation is in wrap-up from its end until `wrapup.done` or the wrap slot goes. */
function updateWrap(conv) {
  if (conv.session.state !== "ended") {
    conv.wrapping = false;
    return;
  }
  if (!app.agent) return;
  const slots = app.agent.slots || [];
  const slot = slots.find((s) => sessionOfContact(s.contact_id) === conv.sid);
  const anyWrap = slots.some((s) => s.state === "wrap") || app.agent.state === "wrap_up";
  if (slot) conv.wrapping = slot.state === "wrap";
  else if (!anyWrap) conv.wrapping = false;
  renderTab(conv);
}

async function wrapDone() {
  const conv = app.convs.get(app.current);
  if (!conv) return;
  const res = await emitOrToast("wrapup.done", { session_id: conv.sid });
  if (!res.ok) return;
  conv.wrapping = false;
  closeConv(conv.sid);
  refreshAgent();
}

async function syncConv(conv) {
  const res = await emit("sync", { session_id: conv.sid, after_seq: conv.lastSeq });
  if (!res.ok) return;
  if (res.session) onSessionUpdated(res.session);
  for (const m of res.messages || []) addMessage(conv, m, false);
  pump(conv);
}

// --------------------------------------------------------------- messages --
function onMessage(m, live) {
  const conv = app.convs.get(m.session_id);
  if (conv) addMessage(conv, m, live);
}

function isAgentMsg(m) {
  return m.sender && m.sender.type === "agent";
}

function addMessage(conv, m, live) {
  if (m.seq == null || conv.shown.has(m.seq)) return;
  if (m.client_msg_id) {
    const pending = conv.list.querySelector(`li[data-cmid="${CSS.escape(m.client_msg_id)}"].pending`);
    if (pending) pending.remove();
    conv.outbox = conv.outbox.filter((o) => o.payload.client_msg_id !== m.client_msg_id);
  }
  const el = renderMessage(m);
  conv.shown.set(m.seq, el);
  let before = null;
  for (const it of conv.list.children) {
    const seq = it.dataset.seq;
    if ((seq && Number(seq) > m.seq) || it.classList.contains("pending")) {
      before = it;
      break;
    }
  }
  conv.list.insertBefore(el, before);
  while (conv.shown.has(conv.lastSeq + 1)) conv.lastSeq++;
  if (live && m.seq > conv.lastSeq + 1) syncConv(conv);
  if (m.sender && m.sender.type === "customer") setPeerTyping(conv, false);
  if (voice.onMessage(conv, m) && app.current === conv.sid) renderConvChrome();
  if (m.kind !== "event") {
    conv.lastText = m.text || (m.attachment ? `[${m.attachment.name || t("file")}]` : m.order ? `[${t("order")} ${m.order.order_no}]` : "");
    conv.lastAt = m.created_at || Date.now();
  }
  if (live && !isAgentMsg(m) && app.current !== conv.sid) conv.unread++;
  renderTab(conv);
  if (app.current === conv.sid) scrollDown();
}

function senderLabel(m) {
  const s = m.sender || {};
  if (s.type === "customer") return s.name || customerName(null, null);
  return s.name || s.id || s.type;
}

function renderMessage(m) {
  if (m.kind === "event" || (m.sender && m.sender.type === "system")) {
    return h("li", { class: "sys", "data-seq": m.seq != null ? String(m.seq) : null, "data-testid": "event" }, m.text || "");
  }
  const type = (m.sender && m.sender.type) || "customer";
  const other = type === "agent" && app.auth && m.sender.id && m.sender.id !== app.auth.username;
  const li = h("li", {
    class: `msg ${type}${other ? " other" : ""}`,
    "data-seq": m.seq != null ? String(m.seq) : null,
    "data-cmid": m.client_msg_id || null,
    "data-sender": type,
    "data-testid": "message",
  });
  li.append(h("div", { class: "meta" }, `${senderLabel(m)} · ${hm(m.created_at)}`));
  li.append(renderContent(m));
  return li;
}

function renderContent(m) {
  const a = m.attachment;
  if (a && a.url && /^image\//.test(a.content_type || "")) {
    return h("div", { class: "bubble media" }, h("a", { href: a.url, target: "_blank", rel: "noopener" }, h("img", { src: a.url, alt: a.name || "", loading: "lazy" })));
  }
  if (a && a.url) {
    return h("div", { class: "bubble" }, h("a", { href: a.url, target: "_blank", rel: "noopener" }, `[${t("file")}] ${a.name || ""}`));
  }
  if (m.order) return orderCard(m.order);
  return h("div", { class: "bubble", "data-testid": "message-text" }, m.text || "");
}

function orderCard(o) {
  return h(
    "div",
    { class: "order-card", "data-testid": "order-card" },
    h("div", { class: "oc-head" }, h("span", null, `${t("order")} ${o.order_no || ""}`), h("span", { class: "tag ok" }, o.status_label || o.status || "")),
    o.items && o.items.length ? h("ul", null, o.items.slice(0, 4).map((it) => h("li", null, itemText(it)))) : null,
    o.total != null ? h("div", { class: "muted small" }, `${t("total")} ${money(o.total)}`) : null,
  );
}

function itemText(it) {
  if (typeof it === "string") return it;
  const name = it.name || it.title || it.sku || "";
  const qty = it.qty || it.quantity;
  return qty ? `${name} × ${qty}` : name;
}

function systemLine(conv, text, cls) {
  const li = h("li", { class: `sys${cls ? ` ${cls}` : ""}`, "data-testid": "notice" }, text);
  conv.list.insertBefore(li, conv.list.querySelector("li.pending"));
  if (app.current === conv.sid) scrollDown();
}

// ---------------------------------------------------------------- sending --
function sendText() {
  const conv = app.convs.get(app.current);
  const input = $("#input");
  const text = input.value.trim();
  if (!conv || !text || conv.session.state !== "active") return;
  input.value = "";
  stopTyping(conv);
  enqueue(conv, { kind: "text", text }, { kind: "text", text });
}

function enqueue(conv, fields, preview) {
  const payload = { session_id: conv.sid, client_msg_id: randomId("a-"), ...fields };
  const m = {
    session_id: conv.sid,
    client_msg_id: payload.client_msg_id,
    sender: { type: "agent", id: app.auth.username, name: app.auth.username },
    created_at: Date.now(),
    text: "",
    ...preview,
  };
  const el = renderMessage(m);
  el.classList.add("pending");
  const state = h("div", { class: "state" }, t("sending"));
  el.append(state);
  conv.list.append(el);
  conv.outbox.push({ payload, el, state });
  if (app.current === conv.sid) scrollDown();
  pump(conv);
}

/** One message in flight per conversation keeps their order; unacked ones are resent. */
async function pump(conv) {
  if (conv.inFlight || !conv.outbox.length || !app.socket || !app.socket.connected) return;
  const item = conv.outbox[0];
  conv.inFlight = true;
  const socketId = app.socket.id;
  const res = await emit("message.send", item.payload);
  if (!app.socket || app.socket.id !== socketId) return; // reconnected: resent by syncConv
  conv.inFlight = false;
  if (res.ok) {
    addMessage(conv, res.message, false);
  } else if (res.error.code === "timeout" || res.error.code === "disconnected") {
    setTimeout(() => pump(conv), 1500);
    return;
  } else {
    conv.outbox.shift();
    item.el.classList.add("failed");
    item.state.textContent = `${errText(res.error)} · ${t("failed")}`;
    item.state.onclick = () => {
      item.el.classList.remove("failed");
      item.state.textContent = t("sending");
      item.state.onclick = null;
      conv.list.append(item.el);
      conv.outbox.push(item);
      pump(conv);
    };
  }
  pump(conv);
}

async function onFilePicked() {
  const input = $("#file");
  const file = input.files && input.files[0];
  input.value = "";
  const conv = app.convs.get(app.current);
  if (!file || !conv || conv.session.state !== "active") return;
  const form = new FormData();
  form.append("session_id", conv.sid);
  form.append("file", file, file.name);
  try {
    const r = await fetch("/api/v1/im/uploads", {
      method: "POST",
      body: form,
      headers: { Authorization: `Bearer ${app.auth.token}` },
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error((body.error && body.error.message) || r.statusText);
    const att = body.attachment || body;
    const kind = /^image\//.test(att.content_type || file.type) ? "image" : "file";
    enqueue(conv, { kind, attachment_id: att.id }, { kind, attachment: att });
  } catch (e) {
    toast(t("error", { msg: e.message }), "error");
  }
}

// ----------------------------------------------------------------- typing --
function onInput() {
  const conv = app.convs.get(app.current);
  if (!conv || conv.session.state !== "active") return;
  const now = Date.now();
  if (!conv.typingOn || now - conv.typingSentAt > 3000) {
    conv.typingOn = true;
    conv.typingSentAt = now;
    emit("typing", { session_id: conv.sid, on: true });
  }
  clearTimeout(conv.typingTimer);
  conv.typingTimer = setTimeout(() => stopTyping(conv), 2500);
}

function stopTyping(conv) {
  clearTimeout(conv.typingTimer);
  if (!conv.typingOn) return;
  conv.typingOn = false;
  emit("typing", { session_id: conv.sid, on: false });
}

function onPeerTyping(p) {
  if (!p || (p.sender && p.sender.type === "agent")) return;
  const conv = app.convs.get(p.session_id);
  if (conv) setPeerTyping(conv, !!p.on);
}

function setPeerTyping(conv, on) {
  clearTimeout(conv.peerTimer);
  conv.peerTyping = on;
  if (on) conv.peerTimer = setTimeout(() => setPeerTyping(conv, false), 8000);
  renderTab(conv);
  if (app.current === conv.sid) renderPeerTyping(conv);
}

function renderPeerTyping(conv) {
  const el = $("#peer-typing");
  el.hidden = !conv.peerTyping;
  el.textContent = conv.peerTyping ? t("customerTyping") : "";
}

// ------------------------------------------------------- transfer and end --
async function loadQueues() {
  if (!app.auth) return;
  try {
    app.queues = await api("GET", "/api/v1/queues");
  } catch {
    return;
  }
  const ul = $("#queues");
  ul.replaceChildren(
    ...app.queues
      .filter((q) => q.channel === "chat")
      .map((q) => h("li", { class: q.waiting ? "busy" : "" }, h("span", null, q.name || q.queue_id), h("b", null, t("waiting", { n: q.waiting })))),
  );
}

function queueName(id) {
  const q = app.queues.find((x) => x.queue_id === id);
  return (q && q.name) || id || "";
}

function openTransfer() {
  const conv = app.convs.get(app.current);
  if (!conv) return;
  const dlg = $("#transfer-dialog");
  const form = $("#transfer-form");
  form.reset();
  const select = form.queue_id;
  select.replaceChildren(
    ...app.queues.filter((q) => q.channel === "chat").map((q) => h("option", { value: q.queue_id }, q.name || q.queue_id)),
  );
  syncTransferTarget();
  dlg.showModal();
}

function syncTransferTarget() {
  const form = $("#transfer-form");
  const toAgent = form.target.value === "agent";
  $("#tq-field").hidden = toAgent;
  $("#ta-field").hidden = !toAgent;
  form.agent_id.required = toAgent;
}

async function submitTransfer(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const conv = app.convs.get(app.current);
  if (!conv) return;
  const payload = { session_id: conv.sid, note: form.note.value.trim() };
  if (form.target.value === "agent") payload.agent_id = form.agent_id.value.trim();
  else payload.queue_id = form.queue_id.value;
  const res = await emitOrToast("session.transfer", payload);
  if (!res.ok) return;
  $("#transfer-dialog").close();
  systemLine(conv, t("transferredOut", { target: payload.agent_id || queueName(payload.queue_id) }));
  if (res.session) conv.session = res.session;
  closeConv(conv.sid);
  refreshAgent();
}

function openEnd() {
  if (!app.convs.get(app.current)) return;
  $("#end-form").reset();
  $("#end-dialog").showModal();
}

async function submitEnd(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const conv = app.convs.get(app.current);
  if (!conv) return;
  const res = await emitOrToast("session.end", { session_id: conv.sid, disposition: form.disposition.value });
  $("#end-dialog").close();
  if (!res.ok) return;
  stopTyping(conv);
  onSessionUpdated(res.session);
  conv.wrapping = true;
  renderTab(conv);
  renderConvChrome();
  refreshAgent();
}

// --------------------------------------------------------- customer panel --
function savePop(sid, pop) {
  try {
    const all = JSON.parse(sessionStorage.getItem(POPS_KEY) || "{}");
    all[sid] = pop;
    sessionStorage.setItem(POPS_KEY, JSON.stringify(all));
  } catch {
    /* storage full or disabled */
  }
}
function forgetPop(sid) {
  try {
    const all = JSON.parse(sessionStorage.getItem(POPS_KEY) || "{}");
    delete all[sid];
    sessionStorage.setItem(POPS_KEY, JSON.stringify(all));
  } catch {
    /* storage disabled */
  }
}
let storedPops = {};
function restorePops() {
  try {
    storedPops = JSON.parse(sessionStorage.getItem(POPS_KEY) || "{}");
  } catch {
    storedPops = {};
  }
}
function popFor(sid) {
  return storedPops[sid] || {};
}

function renderCustomerPanel(conv) {
  $("#customer-body").replaceChildren(renderScreenPop(conv.pop, conv.session, false, conv));
}

const LEVEL_CLASS = { gold: "gold", platinum: "accent", diamond: "accent", vip: "gold" };

function renderScreenPop(pop, session, compact, conv) {
  const frag = document.createDocumentFragment();
  const c = pop.customer || (session && session.customer) || null;
  const name = (c && c.name) || t("visitor");
  const tags = [];
  if (c && (c.member_level_label || c.member_level)) {
    tags.push(h("span", { class: `tag ${LEVEL_CLASS[c.member_level] || ""}`, "data-testid": "member-level" }, c.member_level_label || c.member_level));
  }
  if (c && c.vip) tags.push(h("span", { class: "tag gold" }, "VIP"));
  if (c && c.identified === false && c.name && c.name !== t("visitor")) tags.push(h("span", { class: "tag" }, t("visitor")));
  frag.append(
    h(
      "div",
      { class: "sp-profile" },
      h("div", { class: "avatar", style: `background:${avatarColor(c ? c.id : session && session.session_id)}` }, initial(name)),
      h("div", null, h("div", { class: "sp-name", "data-testid": "customer-name" }, name), h("div", { class: "sp-tags" }, tags)),
    ),
  );

  const kv = h("dl", { class: "kv" });
  if (c && c.phone) {
    const phone = h("span", { class: "mono", "data-testid": "customer-phone" }, c.phone);
    const dd = h("dd", null, phone);
    if (c.phone_masked && !compact && conv) {
      const btn = h(
        "button",
        {
          class: "link-btn",
          type: "button",
          "data-testid": "unmask-phone",
          disabled: !can("pii.view"),
          title: can("pii.view") ? "" : t("unmaskNoPerm"),
          onclick: async () => {
            const res = await emitOrToast("pii.unmask", { session_id: conv.sid });
            if (res.ok && res.phone) {
              phone.textContent = res.phone;
              btn.remove();
            }
          },
        },
        t("unmask"),
      );
      dd.append(btn);
    }
    kv.append(h("dt", null, t("phone")), dd);
  }
  if (c && c.region) kv.append(h("dt", null, t("region")), h("dd", null, c.region));
  const entry = pop.entry_point || (session && session.entry_point);
  if (entry) kv.append(h("dt", null, t("entry")), h("dd", { "data-testid": "entry-point" }, L[`entry_${entry}`] || entry));
  if (session && session.queue_id) kv.append(h("dt", null, t("queue")), h("dd", null, queueName(session.queue_id)));
  if (pop.order_no) kv.append(h("dt", null, t("order")), h("dd", { class: "mono", "data-testid": "pop-order-no" }, pop.order_no));
  if (session && session.session_id) kv.append(h("dt", null, "No."), h("dd", { class: "mono" }, session.session_id));
  frag.append(h("div", { class: "sp-section" }, kv));

  if (pop.transfer_note) {
    frag.append(h("div", { class: "sp-section" }, h("h4", null, t("transferNote")), h("div", { class: "sp-question", "data-testid": "pop-transfer-note" }, pop.transfer_note)));
  }
  if (pop.bot && pop.bot.handoff_reason) {
    // --- bot: why the bot handed over and what it already recorded
    const reqs = pop.bot.requests || [];
    const botTickets = pop.bot.tickets || [];
    frag.append(
      h(
        "div",
        { class: "sp-section" },
        h("h4", null, t("botHandoff")),
        h("div", { class: "sp-question", "data-testid": "pop-bot-reason" }, t(`botReason_${pop.bot.handoff_reason}`)),
        reqs.length ? h("div", { class: "muted", "data-testid": "pop-bot-requests" }, `${t("botRequests")}: ${reqs.join(", ")}`) : null,
        botTickets.length ? h("div", { class: "muted", "data-testid": "pop-bot-tickets" }, `${t("botTickets")}: ${botTickets.join(", ")}`) : null,
      ),
    );
  }
  // what the customer asked before an agent was there: pre-chat question and bot transcript
  const transcript = pop.transcript || [];
  const question = pop.question || (session && session.question);
  if (question) {
    frag.append(h("div", { class: "sp-section" }, h("h4", null, t("question")), h("div", { class: "sp-question", "data-testid": "pop-question" }, question)));
  }
  if (transcript.length) {
    frag.append(
      h(
        "div",
        { class: "sp-section" },
        h("h4", null, t("transcript")),
        h(
          "div",
          { class: "sp-transcript", "data-testid": "pop-transcript" },
          transcript.slice(-20).map((m) => h("p", null, h("b", null, `${senderLabel(m)}: `), m.text || (m.order ? `[${t("order")} ${m.order.order_no}]` : `[${t("file")}]`))),
        ),
      ),
    );
  }

  const orders = pop.orders || [];
  const ordersBox = h("div", { class: "sp-section", "data-testid": "pop-orders" }, h("h4", null, h("span", null, t("orders")), h("span", null, String(orders.length))));
  if (!orders.length) ordersBox.append(h("div", { class: "muted small" }, t("noOrders")));
  for (const o of orders.slice(0, compact ? 2 : 5)) ordersBox.append(renderOrder(o, o.order_no === pop.order_no));
  if (orders.length || !compact) frag.append(ordersBox);

  const prev = pop.previous_sessions || [];
  if (!compact || prev.length) {
    frag.append(
      h(
        "div",
        { class: "sp-section", "data-testid": "pop-previous" },
        h("h4", null, h("span", null, t("previous")), h("span", null, String(prev.length))),
        prev.length
          ? h(
              "ul",
              { class: "sp-list" },
              prev.slice(0, 5).map((p) =>
                h(
                  "li",
                  { title: p.end_reason ? t(`end_${p.end_reason}`) : "" },
                  h("span", { class: "mono" }, p.session_id),
                  h("span", { class: "muted" }, [day(p.created_at), p.agent_name].filter(Boolean).join(" · ")),
                ),
              ),
            )
          : h("div", { class: "muted small" }, t("noPrevious")),
      ),
    );
  }

  const cases = pop.cases || {};
  const tickets = cases.tickets || [];
  const comps = cases.compensations || [];
  if (tickets.length || comps.length) {
    frag.append(
      h(
        "div",
        { class: "sp-section" },
        h("h4", null, t("cases")),
        h(
          "ul",
          { class: "sp-list" },
          tickets.map((x) => h("li", null, h("span", null, `${t("tickets")} ${x.ticket_no || x.id || ""}`), h("span", { class: "tag" }, x.status_label || x.status || ""))),
          comps.map((x) => h("li", null, h("span", null, `${t("compensations")} ${x.order_no || x.id || ""}`), h("span", { class: "tag" }, x.status_label || x.status || ""))),
        ),
      ),
    );
  }
  return frag;
}

function renderOrder(o, current) {
  const items = (o.items || []).map(itemText).join("，");
  const lg = o.logistics;
  let ship = null;
  if (lg && typeof lg === "object") {
    const head = [lg.carrier_name || lg.carrier || lg.company, lg.tracking_no || lg.waybill_no].filter(Boolean).join(" · ");
    const traces = lg.traces || lg.events || [];
    const latest = lg.latest || lg.last_event || (traces[0] && (traces[0].text || traces[0].desc || traces[0].description));
    const status = lg.status_label || lg.status;
    ship = h(
      "div",
      { class: "o-ship", "data-testid": "pop-logistics" },
      `${t("logistics")}: ${[head, status].filter(Boolean).join(" · ")}`,
      latest ? h("div", { class: "muted" }, typeof latest === "string" ? latest : latest.text || latest.desc || "") : null,
    );
  }
  return h(
    "div",
    { class: `sp-order${current ? " current" : ""}`, "data-testid": "pop-order" },
    h("div", { class: "o-head" }, h("span", { class: "mono" }, o.order_no), h("span", { class: "tag ok" }, o.status_label || o.status || "")),
    items ? h("div", { class: "o-items" }, items) : null,
    h("div", { class: "o-foot" }, h("span", null, day(o.created_at)), h("b", null, money(o.total))),
    ship,
  );
}

// ------------------------------------------------------------------ wiring --
function wire() {
  $("#login-form").addEventListener("submit", onLoginSubmit);
  $("#logout").addEventListener("click", signOut);
  for (const b of document.querySelectorAll(".seg-btn")) {
    b.addEventListener("click", (ev) => {
      const state = b.dataset.state;
      if (state === "away") {
        ev.stopPropagation();
        $("#away-menu").hidden = !$("#away-menu").hidden;
      } else setState(state);
    });
  }
  for (const b of document.querySelectorAll("#away-menu [data-reason]")) {
    b.addEventListener("click", () => setState("away", b.dataset.reason));
  }
  document.addEventListener("click", () => ($("#away-menu").hidden = true));
  const input = $("#input");
  input.addEventListener("input", onInput);
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      sendText();
    }
  });
  $("#btn-send").addEventListener("click", sendText);
  $("#btn-attach").addEventListener("click", () => $("#file").click());
  $("#file").addEventListener("change", onFilePicked);
  $("#btn-transfer").addEventListener("click", openTransfer);
  $("#btn-end").addEventListener("click", openEnd);
  $("#btn-ready").addEventListener("click", wrapDone);
  $("#btn-close-tab").addEventListener("click", () => app.current && closeConv(app.current));
  $("#transfer-form").addEventListener("submit", submitTransfer);
  $("#transfer-form").addEventListener("change", syncTransferTarget);
  $("#end-form").addEventListener("submit", submitEnd);
  for (const b of document.querySelectorAll("dialog [data-close]")) b.addEventListener("click", () => b.closest("dialog").close());
}

const voice = createVoice({ h, t, $, onEnd: () => openEnd() });

function boot() {
  applyLabels();
  voice.install();
  wire();
  try {
    app.auth = JSON.parse(sessionStorage.getItem(AUTH_KEY) || "null");
  } catch {
    app.auth = null;
  }
  if (app.auth && app.auth.expires_at && Date.parse(app.auth.expires_at) < Date.now()) app.auth = null;
  if (!window.io) {
    showLogin("socket.io-client is missing: run `make install` on the server");
    return;
  }
  if (app.auth) startWorkspace();
  else showLogin();
}

boot();
