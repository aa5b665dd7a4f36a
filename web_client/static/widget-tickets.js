/*
 * The customer's after-sales tickets inside the contactd widget: a "我的售后" bar that
 * opens the list of their tickets with the simple status (退款中 / 退款成功 …) and an
 * "urge" (催一下) button on pending ones. widget.js loads this file and calls
 * ContactdTickets.attach(widget, socket); it follows the ticket.updated socket event and
 * speaks GET /api/v1/im/tickets and POST /api/v1/im/tickets/{id}/urge (Visitor token).
 */
(function () {
  "use strict";
  if (window.ContactdTickets) return;

  var TEXTS = {
    zh: { bar: "我的售后", open: "{n} 个处理中", all: "查看", back: "返回对话", urge: "催一下", urged: "已提醒客服加急处理",
        again: "{t} 后可再催", none: "暂无售后记录", order: "订单" },
    en: { bar: "My after-sales", open: "{n} in progress", all: "View", back: "Back to chat", urge: "Urge", urged: "We asked the team to hurry",
        again: "Urge again after {t}", none: "No after-sales requests", order: "Order" },
  };
  var CSS = [
    ".bar.tickets{display:flex;align-items:center;gap:8px;background:#fffaf0;color:#8a4b00;cursor:pointer;border:0;",
    "border-bottom:1px solid var(--line);width:100%;text-align:left;font:inherit;font-size:12px}",
    ".bar.tickets b{flex:1}",
    ".cd-tickets{flex:1;overflow:auto;padding:10px 12px;background:var(--bg)}",
    ".cd-ticket{background:#fff;border:1px solid var(--line);border-radius:10px;padding:10px 12px;margin-bottom:8px}",
    ".cd-ticket .top{display:flex;justify-content:space-between;gap:8px;font-weight:600}",
    ".cd-ticket .st{color:var(--accent)}.cd-ticket.final .st{color:#12a150}",
    ".cd-ticket .meta{font-size:12px;color:var(--muted);margin-top:2px}",
    ".cd-ticket .row{display:flex;align-items:center;justify-content:space-between;margin-top:8px;font-size:12px}",
    ".cd-ticket button{border:1px solid var(--accent);color:var(--accent);background:#fff;border-radius:14px;padding:2px 12px}",
    ".cd-ticket button:disabled{opacity:.5;cursor:default}",
    ".cd-back{border:0;background:none;color:var(--accent);padding:0 0 8px;font-size:13px}",
    ".cd-steps{list-style:none;margin:8px 0 0;padding:0 0 0 10px;border-left:2px solid var(--line)}",
    ".cd-steps li{position:relative;padding:1px 0 4px 10px;font-size:12px;color:var(--muted)}",
    ".cd-steps li::before{content:'';position:absolute;left:-16px;top:6px;width:8px;height:8px;",
    "border-radius:50%;background:#d0d5dd;border:2px solid #fff}",
    ".cd-steps li.done{color:#1d2433}.cd-steps li.done::before{background:#12a150}",
    ".cd-steps li.current{color:var(--accent);font-weight:600}.cd-steps li.current::before{background:var(--accent)}",
  ].join("");

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text != null) e.textContent = text;
    return e;
  }
  function money(fen) { return "¥" + (fen / 100).toFixed(2); }
  function mmss(ms) {
    var s = Math.max(0, Math.ceil(ms / 1000));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function Tickets(widget, socket) {
    var self = this;
    this.w = widget;
    this.T = TEXTS[widget.cfg.lang === "en" ? "en" : "zh"];
    this.items = [];
    this.note = {};
    widget.root.appendChild(el("style", null, CSS));
    this.bar = el("button", { class: "bar tickets", type: "button", hidden: "", "data-testid": "cd-tickets-bar" });
    this.bar.onclick = function () { self.toggle(true); };
    this.view = el("section", { class: "cd-tickets", hidden: "", "data-testid": "cd-tickets" });
    widget.panel.insertBefore(this.bar, widget.body);
    widget.panel.insertBefore(this.view, widget.body);
    this.bind(socket);
  }
  Tickets.prototype.bind = function (socket) {
    var self = this;
    socket.on("hello", function () { self.refresh(); });
    socket.on("session.updated", function () { self.refresh(); });
    socket.on("ticket.updated", function (p) {
      if (!p || !p.ticket) return;
      if (self.w.cfg.lang === "en") return self.refresh(); // the push carries Chinese labels
      var found = false;
      self.items = self.items.map(function (x) {
        if (x.id !== p.ticket.id) return x;
        found = true;
        return p.ticket;
      });
      if (!found) self.items.unshift(p.ticket);
      self.render();
    });
    if (this.w.visitorToken) this.refresh();
  };
  Tickets.prototype.url = function (path) {
    var s = this.w.session;
    var q = "?lang=" + (this.w.cfg.lang === "en" ? "en" : "zh");
    return this.w.cfg.base + path + q + (s ? "&session_id=" + encodeURIComponent(s.session_id) : "");
  };
  Tickets.prototype.call = function (method, path) {
    return fetch(this.url(path), {
      method: method,
      headers: { Authorization: "Visitor " + this.w.visitorToken, Accept: "application/json" },
    }).then(function (r) {
      return r.json().then(function (data) { return { ok: r.ok, data: data }; });
    });
  };
  Tickets.prototype.refresh = function () {
    var self = this;
    if (!this.w.visitorToken) return;
    this.call("GET", "/api/v1/im/tickets").then(function (res) {
      if (res.ok) {
        self.items = res.data.items || [];
        self.render();
      }
    }, function () { /* offline: the socket reconnect brings a new hello */ });
  };
  Tickets.prototype.urge = function (id) {
    var self = this;
    this.call("POST", "/api/v1/im/tickets/" + encodeURIComponent(id) + "/urge").then(function (res) {
      if (res.ok) {
        self.note[id] = self.T.urged;
        self.items = self.items.map(function (x) { return x.id === id ? res.data : x; });
      } else {
        self.note[id] = (res.data && res.data.error && res.data.error.message) || "!";
      }
      self.render();
    });
  };
  Tickets.prototype.toggle = function (open) {
    this.view.hidden = !open;
    this.w.body.hidden = open;
    if (this.w.composer && open) this.w.composer.dataset.cdHidden = this.w.composer.hidden ? "1" : "";
    if (this.w.composer) this.w.composer.hidden = open || this.w.composer.dataset.cdHidden === "1";
    this.render();
  };
  Tickets.prototype.render = function () {
    var self = this;
    var pending = this.items.filter(function (x) { return !x.final; }).length;
    this.bar.hidden = this.items.length === 0;
    this.bar.textContent = "";
    this.bar.appendChild(el("b", null, self.T.bar));
    this.bar.appendChild(el("span", null, pending ? self.T.open.replace("{n}", pending) : self.T.all));
    if (this.view.hidden) return;
    this.view.textContent = "";
    var back = el("button", { class: "cd-back", type: "button", "data-testid": "cd-tickets-back" }, "← " + self.T.back);
    back.onclick = function () { self.toggle(false); };
    this.view.appendChild(back);
    if (!this.items.length) this.view.appendChild(el("div", { class: "meta" }, self.T.none));
    this.items.forEach(function (x) {
      var card = el("div", { class: "cd-ticket" + (x.final ? " final" : ""), "data-testid": "cd-ticket", "data-id": x.id });
      var top = el("div", { class: "top" });
      top.appendChild(el("span", null, x.type_label));
      top.appendChild(el("span", { class: "st", "data-testid": "cd-ticket-status" }, x.status));
      card.appendChild(top);
      card.appendChild(el("div", { class: "meta" }, (x.order_no ? self.T.order + " " + x.order_no + " · " : "") + (x.amount ? money(x.amount) : "") + " · " + x.id));
      var steps = el("ol", { class: "cd-steps", "data-testid": "cd-ticket-steps" });
      (x.steps || []).forEach(function (s) {
        steps.appendChild(el("li", { class: s.current ? "current" : s.done ? "done" : "" }, s.label));
      });
      card.appendChild(steps);
      if (!x.final) {
        var row = el("div", { class: "row" });
        var wait = x.urge_available_at ? x.urge_available_at - Date.now() : 0;
        row.appendChild(el("span", { "data-testid": "cd-urge-note" }, self.note[x.id] || (wait > 0 ? self.T.again.replace("{t}", mmss(wait)) : "")));
        var b = el("button", { type: "button", "data-testid": "cd-urge" }, self.T.urge);
        if (!x.can_urge) b.disabled = true;
        b.onclick = function () { self.urge(x.id); };
        row.appendChild(b);
        card.appendChild(row);
      }
      self.view.appendChild(card);
    });
  };

  window.ContactdTickets = {
    attach: function (widget, socket) {
      if (widget.cdTickets) widget.cdTickets.bind(socket);
      else widget.cdTickets = new Tickets(widget, socket);
    },
  };
})();
