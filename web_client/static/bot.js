/*
 * contactd chat widget — the bot front line (loaded by widget.js from the same server).
 *
 * While a chat is with the bot (session state "bot") the widget shows, above the composer:
 *   - the suggestion chips of the latest `bot.prompt` (a tap sends the chip's text as the
 *     customer's message, through the widget's loss-free outbox);
 *   - "Talk to a person", always there: one tap (`bot.handoff`) queues the chat for an
 *     agent, who sees everything said so far;
 * and under an answer the bot asks about, "Did this help? 👍 👎" (`bot.feedback`; 👎 gets a
 * person). Bot messages themselves are ordinary messages (sender "bot") in the session's
 * log, so they replay on reconnect like the agent's. See docs/protocol.md.
 */
(function () {
  "use strict";

  var LABELS = {
    zh: { human: "转人工", helpful: "这个回答有帮助吗？", yes: "有帮助", no: "没帮助", thanks: "感谢反馈", chips: "猜你想问" },
    en: { human: "Talk to a person", helpful: "Did this help?", yes: "Yes", no: "No", thanks: "Thanks for the feedback", chips: "Suggested" },
  };

  var CSS = [
    ".botbar{border-top:1px solid var(--line);background:#fff;padding:8px 10px 2px}",
    ".botbar .chips{display:flex;flex-wrap:wrap;gap:6px;margin-bottom:6px}",
    ".botbar .chip-btn{border:1px solid #c9d8f5;background:var(--accent-soft);color:#0f3f8a;border-radius:14px;",
    "padding:3px 11px;font-size:12.5px;line-height:1.5;max-width:100%;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}",
    ".botbar .chip-btn:hover{border-color:var(--accent)}",
    ".botbar .human{display:flex;justify-content:flex-end;margin-bottom:4px}",
    ".botbar .human button{display:inline-flex;align-items:center;gap:5px;border:1px solid var(--accent);background:#fff;",
    "color:var(--accent);border-radius:14px;padding:3px 12px;font-size:12.5px;font-weight:600}",
    ".botbar .human button:hover{background:var(--accent);color:#fff}",
    ".botbar .human button:disabled{opacity:.6;cursor:default}",
    "li[data-sender=bot] .bubble{background:#f1f6ff;border-color:#d6e3fb}",
    ".fb{display:flex;align-items:center;gap:6px;font-size:12px;color:var(--muted);margin:4px 4px 0}",
    ".fb button{border:1px solid var(--line);background:#fff;border-radius:10px;padding:1px 8px;font-size:12px;color:#394150}",
    ".fb button:hover{border-color:var(--accent);color:var(--accent)}",
  ].join("");

  function BotUI(widget, socket, util) {
    var self = this;
    this.w = widget;
    this.socket = socket;
    this.h = util.h;
    this.t = LABELS[widget.cfg.lang] || LABELS.zh;
    this.prompt = null;
    var h = this.h;
    widget.root.appendChild(h("style", { text: CSS }));
    this.chips = h("div", { class: "chips", "data-testid": "cd-bot-chips", "aria-label": this.t.chips });
    this.humanBtn = h("button", {
      type: "button",
      "data-testid": "cd-bot-human",
      text: "👤 " + this.t.human,
      onclick: function () { self.handoff(); },
    });
    this.bar = h("div", { class: "botbar", hidden: true, "data-testid": "cd-bot-bar" }, this.chips, h("div", { class: "human" }, this.humanBtn));
    widget.panel.insertBefore(this.bar, widget.composer);

    socket.on("bot.prompt", function (p) { self.onPrompt(p); });
    socket.on("message", function (p) {
      // the customer said something: the old chips no longer fit
      var m = p && p.message;
      if (m && m.sender && m.sender.type === "customer") self.showChips([]);
    });
    // the answer a prompt asks about may be shown after the prompt came (replayed by sync)
    var addMessage = widget.addMessage;
    widget.addMessage = function (m, live) {
      addMessage.call(widget, m, live);
      if (m && self.prompt && m.seq === self.prompt.after_seq) self.placeFeedback();
    };
    socket.on("connect", function () { self.refresh(); });
    this.refresh();
  }

  BotUI.prototype.session = function () {
    var s = this.w.session;
    return s && s.state === "bot" ? s : null;
  };

  /** After a (re)connect: ask for the chips on show. */
  BotUI.prototype.refresh = function () {
    var self = this;
    var s = this.session();
    if (!s || this.refreshing) return;
    this.refreshing = true;
    this.w.emit("bot.state", { session_id: s.session_id }, function (res) {
      self.refreshing = false;
      if (res.ok && res.prompt) self.onPrompt(res.prompt);
    });
  };

  BotUI.prototype.onPrompt = function (p) {
    var s = this.w.session;
    if (!p || !s || p.session_id !== s.session_id) return;
    this.prompt = p;
    this.showChips(p.suggestions || []);
    this.placeFeedback();
  };

  BotUI.prototype.showChips = function (list) {
    var self = this;
    var h = this.h;
    this.chips.textContent = "";
    list.forEach(function (c) {
      self.chips.appendChild(
        h("button", {
          type: "button",
          class: "chip-btn",
          title: c.label,
          "data-testid": "cd-bot-chip",
          text: c.label,
          onclick: function () { self.pick(c); },
        }),
      );
    });
    this.chips.hidden = !list.length;
  };

  BotUI.prototype.pick = function (chip) {
    if (!this.session()) return;
    this.showChips([]);
    this.w.enqueue({ kind: "text", text: chip.text }, { kind: "text", text: chip.text });
  };

  /** "Did this help?" under the answer the prompt belongs to (once it is on screen). */
  BotUI.prototype.placeFeedback = function () {
    var self = this;
    var p = this.prompt;
    if (!p || !p.feedback || !this.session()) return;
    var li = this.w.shown[p.after_seq];
    if (!li || li.querySelector(".fb")) return;
    var h = this.h;
    var row = h("div", { class: "fb", "data-testid": "cd-bot-feedback" }, this.t.helpful);
    var send = function (helpful) {
      row.textContent = self.t.thanks;
      var s = self.w.session;
      if (!s) return;
      self.w.emit("bot.feedback", { session_id: s.session_id, seq: p.after_seq, helpful: helpful }, function (res) {
        if (res.ok && res.session) self.w.applySession(res.session);
      });
    };
    row.appendChild(h("button", { type: "button", "data-testid": "cd-bot-helpful", text: "👍 " + this.t.yes, onclick: function () { send(true); } }));
    row.appendChild(h("button", { type: "button", "data-testid": "cd-bot-unhelpful", text: "👎 " + this.t.no, onclick: function () { send(false); } }));
    li.appendChild(row);
    this.w.scrollDown();
  };

  BotUI.prototype.handoff = function () {
    var self = this;
    var s = this.session();
    if (!s) return;
    this.humanBtn.disabled = true;
    this.w.emit("bot.handoff", { session_id: s.session_id }, function (res) {
      self.humanBtn.disabled = false;
      if (!res.ok) {
        self.w.systemLine(self.w.errorText(res.error), "warn");
        return;
      }
      self.w.applySession(res.session);
    });
  };

  /** Called by the widget's render(): the bar is there exactly while the bot has the chat. */
  BotUI.prototype.render = function (state) {
    var withBot = state === "bot";
    this.bar.hidden = !withBot;
    if (withBot && !this.prompt) this.refresh(); // the first prompt may come before the session
    if (!withBot) {
      this.prompt = null;
      this.showChips([]);
      var rows = this.w.list.querySelectorAll(".fb");
      Array.prototype.forEach.call(rows, function (r) { r.remove(); });
    }
  };

  window.ContactdBot = {
    attach: function (widget, socket, util) { return new BotUI(widget, socket, util); },
  };
})();
