// The case module's hook into the agent workspace: a "new ticket" button in the chat
// header (opens the ticket form prefilled from the chat), a link to the ticket desk with
// the number of tickets waiting to be claimed, and notices when a customer urges one of
// my tickets, one of them stalls, or a colleague hands me one. The notices come over a
// socket of this page's own (same lifetime as the workspace, so presence is unchanged).
import { $, h, LANG, loadAuth, toast } from "./common.js";
import { openTicketForm } from "./cases-form.js";

const TEXT = {
  zh: {
    newTicket: "建工单", desk: "工单台", urged: "客户催单：{id}（优先级 P{p}）", stalled: "工单 {id} 已停滞 {m} 分钟",
    handed: "工单 {id} 已交给你处理", open: "查看",
  },
  en: {
    newTicket: "New ticket", desk: "Tickets", urged: "Customer urged {id} (priority P{p})", stalled: "Ticket {id} stalled for {m} min",
    handed: "Ticket {id} is now yours", open: "Open",
  },
}[LANG];
const t = (k, v) => TEXT[k].replace(/\{(\w+)\}/g, (_, x) => (v && v[x] != null ? String(v[x]) : ""));

function notice(text, id, kind) {
  toast(text, kind);
  const last = [...document.querySelectorAll("#toasts .toast")].pop();
  if (last && id) {
    last.dataset.ticket = id;
    last.append(" ", h("a", { href: `/cases?ticket=${encodeURIComponent(id)}`, target: "_blank" }, t("open")));
  }
}

function listen(auth, deskLink) {
  if (!window.io) return;
  const socket = window.io("/agent", { transports: ["websocket"], auth: (cb) => cb({ token: (loadAuth() || auth).token }) });
  const badge = h("b", { class: "count", hidden: true, "data-testid": "desk-pool-count" });
  socket.on("connect", () => (deskLink.dataset.live = "1"));
  socket.on("disconnect", () => delete deskLink.dataset.live);
  deskLink.append(" ", badge);
  socket.on("tickets.pool", (p) => {
    const n = (p.pools || []).reduce((a, x) => a + x.count, 0);
    badge.textContent = String(n);
    badge.hidden = n === 0;
  });
  socket.on("ticket.urged", (p) => notice(t("urged", { id: p.ticket.id, p: p.ticket.priority }), p.ticket.id, "warn"));
  socket.on("ticket.stalled", (p) => notice(t("stalled", { id: p.ticket.id, m: Math.round(p.idle_s / 60) }), p.ticket.id, "warn"));
  socket.on("ticket.updated", (p) => {
    const x = p.ticket;
    if ((p.action === "assign" || p.action === "transfer") && x.owner_id === auth.username) {
      notice(t("handed", { id: x.id }), x.id, "ok");
    }
  });
}

function install() {
  if (!$('link[href="/static/cases.css"]')) {
    document.head.append(h("link", { rel: "stylesheet", href: "/static/cases.css" }));
  }
  const actions = $(".conv-actions");
  if (!actions || $("#btn-ticket")) return;
  const btn = h("button", { id: "btn-ticket", type: "button", class: "btn", "data-testid": "open-ticket" }, t("newTicket"));
  btn.addEventListener("click", () => {
    const sid = ($("#conv-sid")?.textContent || "").trim();
    const auth = loadAuth();
    if (sid && auth) openTicketForm(auth, sid);
  });
  actions.prepend(btn);
  const right = $(".topbar-right");
  if (!right) return;
  const link = h("a", { class: "btn small", href: "/cases", target: "_blank", "data-testid": "open-desk" }, t("desk"));
  right.prepend(link);
  // the workspace signs in on this page; start listening once it has
  const wait = setInterval(() => {
    const auth = loadAuth();
    if (auth && !$("#app").hidden) {
      clearInterval(wait);
      listen(auth, link);
    }
  }, 500);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", install);
else install();
