/*
 * contactd chat widget — include it on any page:
 *
 *   <script src="https://support.example.com/static/widget.js"
 *           data-entry-point="order_page" data-queue="aftersales"
 *           data-order-no="O2026112300000001"></script>
 *
 * Attributes (all optional):
 *   data-contactd-url  the contactd server (default: where this script comes from)
 *   data-entry-point   where the customer starts the chat (default: the server's "home")
 *   data-queue         queue id to join (default: the server's choice)
 *   data-order-no      the order the page is about: offered as an order card
 *   data-identity      JSON {"customer_id","name","ts","sig"} signed by the host site
 *   data-lang          "zh" or "en" (default: follows navigator.language, Chinese first)
 *   data-open          "true" to open the panel at once
 *
 * A host page that computes these in script may instead set, before the tag,
 *   window.ContactdSettings = {identity: {...}, orderNo: "...", queue: "...", ...}
 * (same names in camelCase); its values win over the attributes.
 *
 * The widget lives in a Shadow DOM so the host page's styles do not reach it and its
 * styles do not reach the host page. It speaks the /customer namespace of the socket
 * protocol (docs/protocol.md) with the official socket.io-client, which it loads from
 * the contactd server when the page has none. window.ContactdWidget exposes open(),
 * close() and toggle() for host pages.
 */
(function () {
  "use strict";

  if (window.ContactdWidget && window.ContactdWidget.instance) return;
  var script = document.currentScript;

  // ---------------------------------------------------------------- labels --
  var LABELS = {
    zh: {
      launcher: "联系客服",
      title: "在线客服",
      intro: "您好！有什么可以帮您？描述一下您的问题，我们马上为您接入客服。",
      questionPlaceholder: "请简单描述您的问题（选填）",
      aboutOrder: "咨询订单",
      start: "开始咨询",
      starting: "正在接入…",
      connecting: "正在连接…",
      reconnecting: "网络连接中断，正在重连…",
      queued: "排队中",
      queueNext: "马上为您接入，请稍候",
      queueAhead: "您前面还有 {n} 位",
      waitEta: "预计等待 {t}",
      waitUnderMinute: "不到 1 分钟",
      waitMinutes: "约 {m} 分钟",
      offered: "正在为您接入客服…",
      active: "{name} 为您服务",
      ended: "对话已结束",
      endedBy: {
        resolved: "客服已结束本次对话",
        customer_left: "您已结束本次对话",
        abandoned_in_queue: "您已离开队列",
        transferred: "对话已转接",
        timeout: "对话因长时间无回复已结束",
        agent_lost: "客服连接中断",
        left_message: "已为您留言，我们会尽快联系您",
      },
      inputPlaceholder: "输入消息，Enter 发送，Shift+Enter 换行",
      send: "发送",
      attach: "发送图片或文件",
      sendOrder: "发送订单",
      sending: "发送中",
      failed: "发送失败，点击重试",
      uploading: "正在上传 {name}…",
      uploadFailed: "上传失败：{reason}",
      tooLarge: "文件过大（最大 {max}）",
      typing: "{name} 正在输入…",
      agent: "客服",
      you: "我",
      bot: "智能助手",
      botActive: "智能助手为您服务",
      end: "结束",
      endConfirm: "确认结束？",
      minimize: "收起",
      rateTitle: "请为本次服务评分",
      rateComment: "还有什么想告诉我们的吗？（选填）",
      rateSubmit: "提交评价",
      rateThanks: "感谢您的评价！",
      newChat: "发起新的咨询",
      stars: ["非常不满意", "不满意", "一般", "满意", "非常满意"],
      order: "订单",
      orderTotal: "合计",
      file: "文件",
      notice: {
        agent_reconnecting: "客服网络不稳定，正在重新连接，请稍候…",
        idle_warning: "您已有一段时间没有回复，对话即将自动结束",
        queue_full: "当前咨询人数较多，请稍后再试",
      },
      errors: {
        queue_full: "当前排队人数已满，请稍后再试",
        unknown_queue: "该咨询入口暂不可用",
        rate_limited: "操作太频繁，请稍后再试",
        too_large: "内容过大",
        unauthenticated: "身份校验失败，请刷新页面",
        generic: "出错了：{msg}",
      },
    },
    en: {
      launcher: "Chat with us",
      title: "Customer service",
      intro: "Hello! How can we help? Tell us what it is about and we will connect you to an agent.",
      questionPlaceholder: "What is your question? (optional)",
      aboutOrder: "About order",
      start: "Start chat",
      starting: "Connecting you…",
      connecting: "Connecting…",
      reconnecting: "Connection lost, reconnecting…",
      queued: "In queue",
      queueNext: "You are next, please hold on",
      queueAhead: "{n} ahead of you",
      waitEta: "estimated wait {t}",
      waitUnderMinute: "under a minute",
      waitMinutes: "about {m} min",
      offered: "Connecting you to an agent…",
      active: "{name} is helping you",
      ended: "Chat ended",
      endedBy: {
        resolved: "The agent ended the chat",
        customer_left: "You ended the chat",
        abandoned_in_queue: "You left the queue",
        transferred: "The chat was transferred",
        timeout: "The chat ended after a long silence",
        agent_lost: "The agent was disconnected",
        left_message: "We took your message and will get back to you",
      },
      inputPlaceholder: "Type a message — Enter to send, Shift+Enter for a new line",
      send: "Send",
      attach: "Send an image or file",
      sendOrder: "Send order",
      sending: "sending",
      failed: "Not sent — click to retry",
      uploading: "Uploading {name}…",
      uploadFailed: "Upload failed: {reason}",
      tooLarge: "File too large (max {max})",
      typing: "{name} is typing…",
      agent: "Agent",
      you: "You",
      bot: "Assistant",
      botActive: "Our assistant is helping you",
      end: "End",
      endConfirm: "End chat?",
      minimize: "Minimize",
      rateTitle: "How did we do?",
      rateComment: "Anything else you want to tell us? (optional)",
      rateSubmit: "Submit",
      rateThanks: "Thank you for your feedback!",
      newChat: "Start a new chat",
      stars: ["Very poor", "Poor", "OK", "Good", "Excellent"],
      order: "Order",
      orderTotal: "Total",
      file: "File",
      notice: {
        agent_reconnecting: "The agent's connection dropped; they will be back shortly…",
        idle_warning: "You have been quiet for a while; the chat will end soon",
        queue_full: "We are very busy right now, please try again later",
      },
      errors: {
        queue_full: "The queue is full right now, please try again later",
        unknown_queue: "This service is not available",
        rate_limited: "Too fast — please wait a moment",
        too_large: "Too large",
        unauthenticated: "We could not verify who you are; please reload the page",
        generic: "Something went wrong: {msg}",
      },
    },
  };

  var MAX_UPLOAD = 10 * 1024 * 1024;
  var ACK_TIMEOUT_MS = 10000;

  function pickLang(wanted) {
    var l = String(wanted || navigator.language || "zh").toLowerCase();
    return l.indexOf("en") === 0 ? "en" : "zh";
  }

  function fmt(template, vars) {
    return String(template).replace(/\{(\w+)\}/g, function (_, k) {
      return vars && vars[k] != null ? String(vars[k]) : "";
    });
  }

  function randomId(prefix) {
    var bytes = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    var hex = Array.prototype.map
      .call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2);
      })
      .join("");
    return prefix + Date.now().toString(36) + "-" + hex;
  }

  function money(fen) {
    if (typeof fen !== "number") return "";
    return "¥" + (fen / 100).toFixed(2);
  }

  function clock(ms) {
    var d = new Date(ms || Date.now());
    return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
  }

  function bytes(n) {
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(0) + " KB";
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  /** Tiny element builder: h("div", {class: "x", onclick: fn}, child, "text"). */
  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v == null || v === false) return;
        if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
        else if (k === "text") el.textContent = v;
        else el.setAttribute(k, v === true ? "" : v);
      });
    }
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }
  function append(el, child) {
    if (child == null || child === false) return;
    if (Array.isArray(child)) child.forEach(function (c) { append(el, c); });
    else el.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }

  // ---------------------------------------------------------------- styles --
  var CSS = [
    ":host{all:initial;position:fixed;z-index:2147483000;right:24px;bottom:24px;",
    "font:14px/1.5 -apple-system,BlinkMacSystemFont,'Segoe UI','PingFang SC','Hiragino Sans GB',",
    "'Microsoft YaHei','Noto Sans CJK SC',sans-serif;color:#1d2433;",
    "--accent:#1662d6;--accent-soft:#e8f0fd;--line:#e3e7ee;--muted:#6b7487;--bg:#f5f7fa}",
    "*{box-sizing:border-box}",
    "button{font:inherit;cursor:pointer}",
    "[hidden]{display:none!important}",
    ".launcher{display:flex;align-items:center;gap:8px;border:0;border-radius:28px;padding:12px 20px;",
    "background:var(--accent);color:#fff;font-weight:600;box-shadow:0 6px 20px rgba(22,98,214,.35)}",
    ".launcher:hover{filter:brightness(1.07)}",
    ".launcher svg{width:20px;height:20px}",
    ".badge{min-width:20px;height:20px;border-radius:10px;background:#e5484d;color:#fff;",
    "font-size:12px;line-height:20px;text-align:center;padding:0 6px}",
    ".panel{position:absolute;right:0;bottom:0;width:370px;height:580px;max-height:calc(100vh - 48px);",
    "display:flex;flex-direction:column;background:#fff;border-radius:14px;overflow:hidden;",
    "box-shadow:0 12px 40px rgba(16,24,40,.22);border:1px solid var(--line)}",
    "@media (max-width:480px){:host{right:0;bottom:0}.panel{position:fixed;inset:0;width:auto;",
    "height:auto;max-height:none;border-radius:0}}",
    "header{display:flex;align-items:center;gap:10px;padding:12px 14px;background:var(--accent);color:#fff}",
    "header .who{flex:1;min-width:0}",
    "header .title{font-weight:600;font-size:15px}",
    "header .status{font-size:12px;opacity:.9;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}",
    "header button{border:1px solid rgba(255,255,255,.5);background:transparent;color:#fff;",
    "border-radius:6px;padding:3px 10px;font-size:12px}",
    "header button:hover{background:rgba(255,255,255,.15)}",
    "header button.icon{border:0;font-size:18px;line-height:1;padding:2px 6px}",
    ".bar{padding:7px 14px;font-size:12px;border-bottom:1px solid var(--line)}",
    ".bar.conn{background:#fff4e5;color:#8a4b00}",
    ".bar.queue{background:var(--accent-soft);color:#0f3f8a;display:flex;gap:8px;align-items:center}",
    ".bar.queue .pos{font-weight:600}",
    ".body{flex:1;overflow-y:auto;background:var(--bg);padding:12px 12px 4px}",
    ".start{background:#fff;border:1px solid var(--line);border-radius:10px;padding:14px;margin-top:8px}",
    ".start p{margin:0 0 10px}",
    ".start textarea,.rating textarea{width:100%;min-height:64px;resize:vertical;border:1px solid var(--line);",
    "border-radius:8px;padding:8px;font:inherit;margin-bottom:10px}",
    ".chip{display:inline-flex;gap:6px;align-items:center;font-size:12px;background:var(--accent-soft);",
    "color:#0f3f8a;border-radius:12px;padding:2px 10px;margin-bottom:10px}",
    ".primary{width:100%;border:0;border-radius:8px;background:var(--accent);color:#fff;padding:9px;",
    "font-weight:600}",
    ".primary:disabled{opacity:.6;cursor:default}",
    ".secondary{width:100%;border:1px solid var(--line);border-radius:8px;background:#fff;color:var(--accent);",
    "padding:8px;margin-top:8px}",
    ".error{color:#c4262e;font-size:12px;margin:-4px 0 8px}",
    "ol.messages{list-style:none;margin:0;padding:0;display:flex;flex-direction:column;gap:10px}",
    ".msg{display:flex;flex-direction:column;max-width:82%}",
    ".msg .meta{font-size:11px;color:var(--muted);margin:0 4px 2px}",
    ".msg .bubble{padding:8px 11px;border-radius:12px;background:#fff;border:1px solid var(--line);",
    "white-space:pre-wrap;word-break:break-word}",
    ".msg.theirs{align-self:flex-start;align-items:flex-start}",
    ".msg.mine{align-self:flex-end;align-items:flex-end}",
    ".msg.mine .bubble{background:var(--accent);color:#fff;border-color:var(--accent)}",
    ".msg.mine.pending .bubble{opacity:.7}",
    ".msg .state{font-size:11px;color:var(--muted);margin:2px 4px 0}",
    ".msg.failed .state{color:#c4262e;cursor:pointer}",
    ".msg img{display:block;max-width:220px;max-height:220px;border-radius:8px}",
    ".msg .bubble.media{padding:4px;background:#fff}",
    ".msg a{color:inherit}",
    ".sys{align-self:center;font-size:12px;color:var(--muted);background:#eceff4;border-radius:10px;",
    "padding:3px 10px;text-align:center;max-width:90%}",
    ".sys.warn{background:#fff4e5;color:#8a4b00}",
    ".sys.ok{background:#e3f6eb;color:#0b7a3b}", // cases-money: a landed compensation
    ".order{background:#fff;border:1px solid var(--line);border-radius:10px;padding:10px;min-width:220px;color:#1d2433}",
    ".order .head{display:flex;justify-content:space-between;gap:8px;font-size:12px;color:var(--muted)}",
    ".order .status{color:#0f7b45;font-weight:600}",
    ".order ul{margin:6px 0;padding:0;list-style:none;font-size:13px}",
    ".order .total{text-align:right;font-size:13px}",
    ".typing{font-size:12px;color:var(--muted);padding:6px 4px}",
    ".typing i{display:inline-block;width:5px;height:5px;margin-right:2px;border-radius:50%;background:var(--muted);",
    "animation:cdblink 1.2s infinite}",
    ".typing i:nth-child(2){animation-delay:.2s}.typing i:nth-child(3){animation-delay:.4s}",
    "@keyframes cdblink{0%,80%,100%{opacity:.2}40%{opacity:1}}",
    ".rating{background:#fff;border:1px solid var(--line);border-radius:10px;padding:14px;margin:10px 0;text-align:center}",
    ".rating h3{margin:0 0 8px;font-size:15px}",
    ".stars{display:flex;justify-content:center;gap:4px;margin-bottom:4px}",
    ".star{border:0;background:none;font-size:28px;line-height:1;color:#c9ced8;padding:2px}",
    ".star.on{color:#f5a524}",
    ".starlabel{font-size:12px;color:var(--muted);min-height:18px;margin-bottom:8px}",
    ".thanks{color:#0f7b45;font-weight:600;margin:6px 0 10px}",
    ".composer{border-top:1px solid var(--line);padding:8px 10px 10px;background:#fff}",
    ".tools{display:flex;gap:6px;margin-bottom:6px}",
    ".tools button{display:inline-flex;align-items:center;gap:3px;border:1px solid var(--line);background:#fff;border-radius:6px;padding:2px 8px;",
    "font-size:12px;color:#394150}",
    ".tools button:hover{border-color:var(--accent);color:var(--accent)}",
    ".row{display:flex;gap:8px;align-items:flex-end}",
    ".row textarea{flex:1;resize:none;height:40px;max-height:120px;border:1px solid var(--line);",
    "border-radius:8px;padding:9px 10px;font:inherit}",
    ".row textarea:focus,.start textarea:focus{outline:2px solid var(--accent-soft);border-color:var(--accent)}",
    ".row .send{border:0;border-radius:8px;background:var(--accent);color:#fff;padding:9px 14px;font-weight:600}",
    ".row .send:disabled{opacity:.5;cursor:default}",
  ].join("");

  var CHAT_ICON =
    '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" ' +
    'stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">' +
    '<path d="M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"/></svg>';

  var CLIP_ICON = '<svg viewBox="0 0 24 24" width="14" height="14" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><path d="M21.44 11.05l-9.19 9.19a6 6 0 0 1-8.49-8.49l9.19-9.19a4 4 0 0 1 5.66 5.66l-9.2 9.19a2 2 0 0 1-2.83-2.83l8.49-8.48"/></svg>';

  // ---------------------------------------------------------------- widget --
  function Widget(cfg) {
    this.cfg = cfg;
    this.t = LABELS[cfg.lang];
    this.socket = null;
    this.session = null; // the current (or last) Session
    this.customer = null;
    this.visitorToken = null;
    this.lastSeq = 0; // highest seq shown with no gap before it
    this.shown = {}; // seq -> <li>
    this.outbox = []; // [{payload, el}] waiting for their ack, in order
    this.inFlight = false;
    this.typingOn = false;
    this.typingSentAt = 0;
    this.typingTimer = null;
    this.peerTypingTimer = null;
    this.unread = 0;
    this.rated = false;
    this.storageKey = "contactd:" + cfg.base + ":visitor_token";
    try {
      this.visitorToken = window.localStorage.getItem(this.storageKey);
    } catch {
      this.visitorToken = null;
    }
    this.build();
    if (cfg.open || this.visitorToken) this.connect();
    if (cfg.open) this.open();
  }

  Widget.prototype.build = function () {
    var t = this.t;
    var self = this;
    var host = h("div", { "data-contactd-widget": "" });
    this.host = host;
    var root = host.attachShadow({ mode: "open" });
    this.root = root;
    root.appendChild(h("style", { text: CSS }));

    this.launcher = h(
      "button",
      { class: "launcher", "data-testid": "cd-launcher", "aria-label": t.launcher, onclick: function () { self.toggle(); } },
    );
    this.launcher.innerHTML = CHAT_ICON;
    this.badge = h("span", { class: "badge", hidden: true, "data-testid": "cd-unread" });
    append(this.launcher, [h("span", { text: t.launcher }), this.badge]);

    this.statusEl = h("div", { class: "status", "data-testid": "cd-status", text: "" });
    this.endBtn = h("button", {
      "data-testid": "cd-end",
      hidden: true,
      text: t.end,
      onclick: function () { self.onEndClick(); },
    });
    var minBtn = h("button", {
      class: "icon",
      title: t.minimize,
      "aria-label": t.minimize,
      "data-testid": "cd-minimize",
      text: "–",
      onclick: function () { self.close(); },
    });
    var header = h("header", null, h("div", { class: "who" }, h("div", { class: "title", text: t.title }), this.statusEl), this.endBtn, minBtn);

    this.connBar = h("div", { class: "bar conn", hidden: true, role: "status", "data-testid": "cd-connection", text: t.reconnecting });
    this.queuePos = h("span", { class: "pos", "data-testid": "cd-queue-position" });
    this.queueEta = h("span", { class: "eta", "data-testid": "cd-queue-eta" });
    this.queueBar = h("div", { class: "bar queue", hidden: true, role: "status", "data-testid": "cd-queue" }, this.queuePos, this.queueEta);

    // pre-chat form
    this.question = h("textarea", { "data-testid": "cd-question", placeholder: t.questionPlaceholder, maxlength: "500" });
    this.startBtn = h("button", { class: "primary", "data-testid": "cd-start", text: t.start, onclick: function () { self.startChat(); } });
    this.startError = h("div", { class: "error", hidden: true, role: "alert", "data-testid": "cd-start-error" });
    this.startView = h(
      "div",
      { class: "start", "data-testid": "cd-start-view" },
      h("p", { text: t.intro }),
      this.cfg.orderNo ? h("div", { class: "chip", "data-testid": "cd-order-chip" }, t.aboutOrder + " " + this.cfg.orderNo) : null,
      this.question,
      this.startError,
      this.startBtn,
    );

    this.list = h("ol", { class: "messages", "data-testid": "cd-messages", "aria-live": "polite" });
    this.typingEl = h("div", { class: "typing", hidden: true, "data-testid": "cd-typing" });

    // rating
    this.score = 0;
    this.starBtns = [];
    var stars = h("div", { class: "stars", role: "radiogroup", "aria-label": t.rateTitle });
    for (var i = 1; i <= 5; i++) {
      (function (score) {
        var b = h("button", {
          class: "star",
          role: "radio",
          "aria-checked": "false",
          "aria-label": score + " - " + t.stars[score - 1],
          title: t.stars[score - 1],
          "data-testid": "cd-star",
          "data-score": String(score),
          text: "★",
          onclick: function () { self.setScore(score); },
        });
        self.starBtns.push(b);
        stars.appendChild(b);
      })(i);
    }
    this.starLabel = h("div", { class: "starlabel" });
    this.rateComment = h("textarea", { "data-testid": "cd-rating-comment", placeholder: t.rateComment, maxlength: "500" });
    this.rateBtn = h("button", { class: "primary", "data-testid": "cd-rating-submit", disabled: true, text: t.rateSubmit, onclick: function () { self.submitRating(); } });
    this.rateForm = h("div", null, h("h3", { text: t.rateTitle }), stars, this.starLabel, this.rateComment, this.rateBtn);
    this.thanks = h("div", { class: "thanks", hidden: true, "data-testid": "cd-rating-thanks", text: t.rateThanks });
    this.newChatBtn = h("button", { class: "secondary", "data-testid": "cd-new-chat", text: t.newChat, onclick: function () { self.resetForNewChat(); } });
    this.ratingView = h("div", { class: "rating", hidden: true, "data-testid": "cd-rating" }, this.rateForm, this.thanks, this.newChatBtn);

    this.body = h("div", { class: "body" }, this.startView, this.list, this.typingEl, this.ratingView);

    // composer
    this.fileInput = h("input", {
      type: "file",
      hidden: true,
      accept: "image/*,.pdf,.txt,.doc,.docx,.xls,.xlsx,.zip",
      onchange: function () { self.onFilePicked(); },
    });
    var attachBtn = h("button", { type: "button", title: t.attach, "data-testid": "cd-attach", onclick: function () { self.fileInput.click(); } });
    attachBtn.innerHTML = CLIP_ICON;
    append(attachBtn, " " + t.file);
    this.orderBtn = this.cfg.orderNo
      ? h("button", { type: "button", "data-testid": "cd-send-order", text: t.sendOrder, onclick: function () { self.sendOrder(); } })
      : null;
    this.input = h("textarea", {
      "data-testid": "cd-input",
      placeholder: t.inputPlaceholder,
      rows: "1",
      maxlength: "4000",
      oninput: function () { self.onInput(); },
      onkeydown: function (ev) {
        if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
          ev.preventDefault();
          self.sendText();
        }
      },
    });
    this.sendBtn = h("button", { class: "send", "data-testid": "cd-send", text: t.send, onclick: function () { self.sendText(); } });
    this.composer = h(
      "footer",
      { class: "composer", hidden: true },
      h("div", { class: "tools" }, attachBtn, this.orderBtn, this.fileInput),
      h("div", { class: "row" }, this.input, this.sendBtn),
    );

    this.panel = h("section", { class: "panel", hidden: true, role: "dialog", "aria-label": t.title, "data-testid": "cd-panel" }, header, this.connBar, this.queueBar, this.body, this.composer);
    root.appendChild(this.launcher);
    root.appendChild(this.panel);
    document.body.appendChild(host);
    this.render();
  };

  // ------------------------------------------------------------ open/close --
  Widget.prototype.open = function () {
    this.panel.hidden = false;
    this.launcher.hidden = true;
    this.unread = 0;
    this.badge.hidden = true;
    if (!this.socket) this.connect();
    var self = this;
    setTimeout(function () {
      (self.composer.hidden ? self.question : self.input).focus();
      self.scrollDown();
    }, 0);
  };
  Widget.prototype.close = function () {
    this.panel.hidden = true;
    this.launcher.hidden = false;
  };
  Widget.prototype.toggle = function () {
    if (this.panel.hidden) this.open();
    else this.close();
  };

  // ------------------------------------------------------------ connection --
  Widget.prototype.loadClient = function () {
    if (window.io) return Promise.resolve(window.io);
    var src = this.cfg.base + "/static/vendor/socket.io.min.js";
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.async = true;
      s.onload = function () { window.io ? resolve(window.io) : reject(new Error("socket.io-client did not load")); };
      s.onerror = function () { reject(new Error("cannot load " + src)); };
      document.head.appendChild(s);
    });
  };

  /** The bot's chips, feedback and "talk to a person" button live in bot.js. */
  Widget.prototype.attachBot = function (socket) {
    var self = this;
    var ready = function () {
      if (window.ContactdBot && !self.bot) {
        self.bot = window.ContactdBot.attach(self, socket, { h: h, fmt: fmt });
        self.render();
      }
    };
    if (window.ContactdBot) return ready();
    var s = document.createElement("script");
    s.src = this.cfg.base + "/static/bot.js";
    s.async = true;
    s.onload = ready;
    document.head.appendChild(s);
  };

  Widget.prototype.authPayload = function () {
    var auth = {};
    if (this.cfg.identity) auth.identity = this.cfg.identity;
    if (this.visitorToken) auth.visitor_token = this.visitorToken;
    return auth;
  };

  Widget.prototype.connect = function () {
    var self = this;
    if (this.socket || this.connecting) return;
    this.connecting = true;
    this.setStatus(this.t.connecting);
    this.loadClient().then(
      function (io) {
        var socket = io(self.cfg.base + "/customer", {
          transports: ["websocket"],
          auth: function (cb) { cb(self.authPayload()); },
        });
        self.socket = socket;
        socket.on("connect", function () { self.onConnect(); });
        socket.on("disconnect", function (reason) { self.onDisconnect(reason); });
        socket.on("connect_error", function (err) { self.onConnectError(err); });
        socket.on("hello", function (p) { self.onHello(p); });
        socket.on("session.updated", function (p) { if (p && p.session) self.applySession(p.session); });
        socket.on("queue.position", function (p) { self.onQueuePosition(p); });
        socket.on("message", function (p) { if (p && p.message) self.addMessage(p.message, true); });
        socket.on("typing", function (p) { self.onPeerTyping(p); });
        socket.on("notice", function (p) { self.onNotice(p); });
        self.attachBot(socket);
        // --- cases: the customer's after-sales tickets (widget-tickets.js) ---
        var cases = document.createElement("script");
        cases.src = self.cfg.base + "/static/widget-tickets.js";
        cases.onload = function () { if (window.ContactdTickets) window.ContactdTickets.attach(self, socket); };
        document.head.appendChild(cases);
        socket.on("compensation.updated", function (p) { self.onCompensation(p); }); // cases-money
      },
      function (err) {
        self.connecting = false;
        self.setStatus(err.message);
      },
    );
  };

  Widget.prototype.emit = function (event, payload, cb) {
    var socket = this.socket;
    if (!socket || !socket.connected) {
      if (cb) cb({ ok: false, error: { code: "disconnected", message: this.t.reconnecting } });
      return;
    }
    socket.timeout(ACK_TIMEOUT_MS).emit(event, payload, function (err, res) {
      if (!cb) return;
      if (err) cb({ ok: false, error: { code: "timeout", message: "no answer from the server" } });
      else cb(res || { ok: false, error: { code: "bad_answer", message: "empty answer" } });
    });
  };

  Widget.prototype.onConnect = function () {
    this.connBar.hidden = true;
    this.everConnected = true;
    // hello follows with the open session; if we already know ours, catch up at once
    if (this.session && this.session.state !== "ended") this.sync();
    this.render();
  };

  Widget.prototype.onDisconnect = function (reason) {
    this.inFlight = false;
    if (this.socket && !this.socket.active) {
      // the server refused us; socket.io will not retry on its own
      this.setStatus(reason);
    }
    this.connBar.hidden = false;
    this.typingOn = false;
    this.showPeerTyping(null);
  };

  Widget.prototype.onConnectError = function (err) {
    var data = (err && err.data) || {};
    if (data.code === "unauthenticated" && this.visitorToken && !this.cfg.identity) {
      // a token from another server or an old one: start over as a new visitor
      this.visitorToken = null;
      try { window.localStorage.removeItem(this.storageKey); } catch { /* private mode */ }
      this.socket.connect();
      return;
    }
    if (data.code === "unauthenticated") this.setStatus(this.t.errors.unauthenticated);
    if (this.everConnected) this.connBar.hidden = false;
  };

  Widget.prototype.onHello = function (p) {
    p = p || {};
    if (p.visitor_token) {
      this.visitorToken = p.visitor_token;
      try { window.localStorage.setItem(this.storageKey, p.visitor_token); } catch { /* private mode */ }
    }
    this.customer = p.customer || null;
    var s = p.session;
    if (s && (!this.session || this.session.session_id !== s.session_id)) {
      this.session = null;
      this.resetConversation();
      this.applySession(s);
      this.sync();
    } else if (s) {
      this.applySession(s);
      this.sync();
    } else {
      this.pump();
    }
    this.render();
    if (this.pendingStart && !this.session) this.startChat();
  };

  /** Ask for every message after the last one shown; append exactly those. */
  Widget.prototype.sync = function () {
    var self = this;
    var s = this.session;
    if (!s || !this.socket || !this.socket.connected) return;
    var sid = s.session_id;
    this.emit("sync", { session_id: sid, after_seq: this.lastSeq }, function (res) {
      if (!self.session || self.session.session_id !== sid) return;
      if (!res.ok) {
        if (res.error && res.error.code !== "disconnected") self.systemLine(self.errorText(res.error), "warn");
        return;
      }
      if (res.session) self.applySession(res.session);
      (res.messages || []).forEach(function (m) { self.addMessage(m, false); });
      self.pump();
      self.loadCompensations(); // cases-money
    });
  };

  // -------------------------------------------------------------- sessions --
  Widget.prototype.resetConversation = function () {
    this.list.textContent = "";
    this.shown = {};
    this.lastSeq = 0;
    this.outbox = [];
    this.inFlight = false;
    this.rated = false;
    this.lastState = null;
    this.lastAgentId = null;
    this.showPeerTyping(null);
    this.compShown = {}; // cases-money
  };

  Widget.prototype.resetForNewChat = function () {
    this.session = null;
    this.resetConversation();
    this.setScore(0);
    this.rateComment.value = "";
    this.render();
    this.question.focus();
  };

  Widget.prototype.startChat = function () {
    var self = this;
    if (!this.socket || !this.socket.connected) {
      // started as soon as the server has said hello
      this.pendingStart = true;
      this.startBtn.disabled = true;
      this.startBtn.textContent = this.t.connecting;
      this.connect();
      return;
    }
    this.pendingStart = false;
    var payload = {};
    if (this.cfg.entryPoint) payload.entry_point = this.cfg.entryPoint;
    if (this.cfg.queueId) payload.queue_id = this.cfg.queueId;
    if (this.cfg.orderNo) payload.order_no = this.cfg.orderNo;
    var q = this.question.value.trim();
    if (q) payload.question = q;
    payload.lang = this.cfg.lang;
    this.startBtn.disabled = true;
    this.startBtn.textContent = this.t.starting;
    this.emit("chat.start", payload, function (res) {
      self.startBtn.disabled = false;
      self.startBtn.textContent = self.t.start;
      if (!res.ok) {
        self.startError.textContent = self.errorText(res.error);
        self.startError.hidden = false;
        return;
      }
      self.startError.hidden = true;
      self.question.value = "";
      if (!self.session || self.session.session_id !== res.session.session_id) self.resetConversation();
      self.applySession(res.session);
      self.sync();
      self.input.focus();
    });
  };

  Widget.prototype.applySession = function (s) {
    if (!s) return;
    if (this.session && this.session.session_id !== s.session_id) {
      // a different session: only take it if it is newer and open
      if (s.state === "ended") return;
      this.resetConversation();
    }
    var prevState = this.lastState;
    this.session = s;
    var t = this.t;
    var agentId = s.agent ? s.agent.id : null;
    // the server posts "joined" and "transferring" lines into the conversation itself;
    // the end has no message, so say it here
    if (s.state === "ended" && prevState && prevState !== "ended") {
      this.systemLine((t.endedBy[s.end_reason] || t.ended));
      this.showPeerTyping(null);
    }
    this.lastState = s.state;
    if (agentId) this.lastAgentId = agentId;
    if (s.state === "queued" && s.position != null) {
      this.showQueue(s.position, s.estimated_wait_s);
    }
    if (s.rating != null) this.rated = true;
    this.render();
  };

  Widget.prototype.onQueuePosition = function (p) {
    if (!p || !this.session || p.session_id !== this.session.session_id) return;
    this.session.position = p.position;
    this.session.estimated_wait_s = p.estimated_wait_s;
    this.showQueue(p.position, p.estimated_wait_s);
    this.render();
  };

  Widget.prototype.showQueue = function (position, eta) {
    var t = this.t;
    this.queuePos.textContent = position > 0 ? fmt(t.queueAhead, { n: position }) : t.queueNext;
    if (eta != null && eta >= 0) {
      var when = eta < 60 ? t.waitUnderMinute : fmt(t.waitMinutes, { m: Math.round(eta / 60) });
      this.queueEta.textContent = "· " + fmt(t.waitEta, { t: when });
    } else {
      this.queueEta.textContent = "";
    }
  };

  Widget.prototype.setStatus = function (text) {
    this.statusEl.textContent = text || "";
  };

  /** Show what fits the current state; the one place that hides and shows parts. */
  Widget.prototype.render = function () {
    var t = this.t;
    var s = this.session;
    var state = s ? s.state : null;
    var open = state === "bot" || state === "queued" || state === "offered" || state === "active";
    this.startView.hidden = !!s;
    this.list.hidden = !s;
    this.composer.hidden = !open;
    this.endBtn.hidden = !open;
    this.queueBar.hidden = state !== "queued";
    this.ratingView.hidden = state !== "ended";
    if (state === "ended") {
      this.rateForm.hidden = this.rated;
      this.thanks.hidden = !this.rated;
    }
    var socketUp = this.socket && this.socket.connected;
    if (!socketUp && !this.everConnected) this.setStatus(t.connecting);
    else if (state === "bot") this.setStatus(t.botActive);
    else if (state === "queued") this.setStatus(t.queued);
    else if (state === "offered") this.setStatus(t.offered);
    else if (state === "active") this.setStatus(fmt(t.active, { name: (s.agent && s.agent.name) || t.agent }));
    else if (state === "ended") this.setStatus(t.ended);
    else this.setStatus("");
    if (this.bot) this.bot.render(state);
  };

  // -------------------------------------------------------------- messages --
  Widget.prototype.isMine = function (m) {
    return m.sender && m.sender.type === "customer";
  };

  /** Insert a stored message once, in seq order; replaces its pending twin if any. */
  Widget.prototype.addMessage = function (m, live) {
    if (!m || !this.session || m.session_id !== this.session.session_id) return;
    if (this.shown[m.seq]) return;
    var pendingEl = m.client_msg_id ? this.list.querySelector('li[data-cmid="' + cssEscape(m.client_msg_id) + '"]') : null;
    if (pendingEl) pendingEl.remove();
    this.outbox = this.outbox.filter(function (o) { return o.payload.client_msg_id !== m.client_msg_id; });
    var el = this.renderMessage(m);
    this.shown[m.seq] = el;
    // insert before the first shown message with a higher seq, else before pending ones
    var after = null;
    var items = this.list.children;
    for (var i = 0; i < items.length; i++) {
      var it = items[i];
      var seq = it.getAttribute("data-seq");
      if ((seq && Number(seq) > m.seq) || it.classList.contains("pending")) {
        after = it;
        break;
      }
    }
    this.list.insertBefore(el, after);
    while (this.shown[this.lastSeq + 1]) this.lastSeq++;
    if (live && m.seq > this.lastSeq + 1) this.sync(); // a gap: fetch what we missed
    if (m.sender && m.sender.type === "agent") this.showPeerTyping(null);
    if (live && !this.isMine(m) && this.panel.hidden) {
      this.unread++;
      this.badge.textContent = String(this.unread);
      this.badge.hidden = false;
    }
    this.scrollDown();
  };

  Widget.prototype.senderName = function (m) {
    var t = this.t;
    var s = m.sender || {};
    if (s.type === "customer") return t.you;
    if (s.type === "bot") return s.name || t.bot;
    return s.name || t.agent;
  };

  Widget.prototype.renderMessage = function (m) {
    var mine = this.isMine(m);
    if (m.kind === "event" || (m.sender && m.sender.type === "system")) {
      return h("li", { class: "sys", "data-seq": String(m.seq), "data-testid": "cd-event" }, m.text || "");
    }
    var li = h("li", {
      class: "msg" + (mine ? " mine" : " theirs"),
      "data-seq": m.seq != null ? String(m.seq) : null,
      "data-cmid": m.client_msg_id || null,
      "data-sender": m.sender ? m.sender.type : null,
      "data-testid": "cd-message",
    });
    li.appendChild(h("div", { class: "meta" }, this.senderName(m) + " · " + clock(m.created_at)));
    li.appendChild(this.renderContent(m));
    return li;
  };

  Widget.prototype.renderContent = function (m) {
    var t = this.t;
    var a = m.attachment;
    var url = a && a.url ? this.absolute(a.url) : null;
    if (url && /^image\//.test(a.content_type || "")) {
      return h("div", { class: "bubble media" }, h("a", { href: url, target: "_blank", rel: "noopener" }, h("img", { src: url, alt: a.name || "", loading: "lazy", "data-testid": "cd-image" })));
    }
    if (url) {
      return h("div", { class: "bubble" }, h("a", { href: url, target: "_blank", rel: "noopener", download: a.name || true }, "[" + t.file + "] " + (a.name || "") + (a.size ? " (" + bytes(a.size) + ")" : "")));
    }
    if (m.order) return this.renderOrder(m.order);
    return h("div", { class: "bubble", "data-testid": "cd-text" }, m.text || "");
  };

  /** Attachment URLs are paths on the contactd server, not on the host page. */
  Widget.prototype.absolute = function (url) {
    return /^\//.test(url) && !/^\/\//.test(url) ? this.cfg.base + url : url;
  };

  Widget.prototype.renderOrder = function (o) {
    var t = this.t;
    var items = (o.items || []).slice(0, 4).map(function (it) {
      var name = it.name || it.title || it.sku || "";
      var qty = it.qty || it.quantity;
      return h("li", null, name + (qty ? " × " + qty : ""));
    });
    return h(
      "div",
      { class: "order", "data-testid": "cd-order-card" },
      h("div", { class: "head" }, h("span", null, t.order + " " + (o.order_no || "")), h("span", { class: "status" }, o.status_label || o.status || "")),
      items.length ? h("ul", null, items) : null,
      o.total != null ? h("div", { class: "total" }, t.orderTotal + " " + money(o.total)) : null,
    );
  };

  Widget.prototype.systemLine = function (text, cls) {
    var li = h("li", { class: "sys" + (cls ? " " + cls : ""), "data-testid": "cd-notice" }, text);
    var firstPending = this.list.querySelector("li.pending");
    this.list.insertBefore(li, firstPending);
    this.scrollDown();
    return li;
  };

  Widget.prototype.scrollDown = function () {
    this.body.scrollTop = this.body.scrollHeight;
  };

  Widget.prototype.errorText = function (err) {
    err = err || {};
    return this.t.errors[err.code] || fmt(this.t.errors.generic, { msg: err.message || err.code || "?" });
  };

  // ----------------------------------------------------------- sending out --
  Widget.prototype.canSend = function () {
    var s = this.session;
    return s && (s.state === "bot" || s.state === "queued" || s.state === "offered" || s.state === "active");
  };

  Widget.prototype.sendText = function () {
    var text = this.input.value.trim();
    if (!text || !this.canSend()) return;
    this.input.value = "";
    this.stopTyping();
    this.enqueue({ kind: "text", text: text }, { kind: "text", text: text });
  };

  Widget.prototype.sendOrder = function () {
    if (!this.canSend() || !this.cfg.orderNo) return;
    this.enqueue({ kind: "order_card", order_no: this.cfg.orderNo }, { kind: "order_card", order: { order_no: this.cfg.orderNo } });
  };

  /** Show the message at once (optimistic), then send it; kept until acknowledged. */
  Widget.prototype.enqueue = function (fields, preview) {
    var payload = { session_id: this.session.session_id, client_msg_id: randomId("c-") };
    Object.keys(fields).forEach(function (k) { payload[k] = fields[k]; });
    var m = {
      session_id: payload.session_id,
      client_msg_id: payload.client_msg_id,
      sender: { type: "customer" },
      kind: preview.kind,
      text: preview.text || "",
      attachment: preview.attachment || null,
      order: preview.order || null,
      created_at: Date.now(),
    };
    var el = this.renderMessage(m);
    el.classList.add("pending");
    el.removeAttribute("data-seq");
    var state = h("div", { class: "state", "data-testid": "cd-message-state" }, this.t.sending);
    el.appendChild(state);
    this.list.appendChild(el);
    this.scrollDown();
    this.outbox.push({ payload: payload, el: el, stateEl: state });
    this.pump();
  };

  /** Send the oldest unacknowledged message; one at a time keeps the order. */
  Widget.prototype.pump = function () {
    var self = this;
    if (this.inFlight || !this.outbox.length || !this.socket || !this.socket.connected) return;
    var item = this.outbox[0];
    if (item.failed) return;
    this.inFlight = true;
    var sentOn = this.socket.id;
    this.emit("message.send", item.payload, function (res) {
      if (self.socket && self.socket.id !== sentOn) return; // a reconnect re-sends it
      self.inFlight = false;
      if (res.ok) {
        self.addMessage(res.message, false);
      } else if (res.error && (res.error.code === "timeout" || res.error.code === "disconnected")) {
        // still ours to send: retried on reconnect or in a moment
        setTimeout(function () { self.pump(); }, 1500);
        return;
      } else {
        item.failed = true;
        item.el.classList.add("failed");
        item.stateEl.textContent = self.errorText(res.error) + " · " + self.t.failed;
        item.stateEl.onclick = function () {
          item.failed = false;
          item.el.classList.remove("failed");
          item.stateEl.textContent = self.t.sending;
          item.stateEl.onclick = null;
          self.outbox = self.outbox.filter(function (o) { return o !== item; });
          self.outbox.push(item);
          self.list.appendChild(item.el);
          self.pump();
        };
        self.outbox.shift();
      }
      self.pump();
    });
  };

  // ---------------------------------------------------------------- typing --
  Widget.prototype.onInput = function () {
    var self = this;
    if (!this.canSend()) return;
    var now = Date.now();
    if (!this.typingOn || now - this.typingSentAt > 3000) {
      this.typingOn = true;
      this.typingSentAt = now;
      this.emit("typing", { session_id: this.session.session_id, on: true });
    }
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(function () { self.stopTyping(); }, 2500);
  };

  Widget.prototype.stopTyping = function () {
    clearTimeout(this.typingTimer);
    if (!this.typingOn) return;
    this.typingOn = false;
    if (this.session) this.emit("typing", { session_id: this.session.session_id, on: false });
  };

  Widget.prototype.onPeerTyping = function (p) {
    if (!p || !this.session || p.session_id !== this.session.session_id) return;
    if (p.sender && p.sender.type === "customer") return;
    this.showPeerTyping(p.on ? p.sender || {} : null);
  };

  Widget.prototype.showPeerTyping = function (sender) {
    var self = this;
    clearTimeout(this.peerTypingTimer);
    if (!sender) {
      this.typingEl.hidden = true;
      return;
    }
    this.typingEl.textContent = "";
    append(this.typingEl, [h("i"), h("i"), h("i"), " " + fmt(this.t.typing, { name: sender.name || this.t.agent })]);
    this.typingEl.hidden = false;
    this.scrollDown();
    this.peerTypingTimer = setTimeout(function () { self.typingEl.hidden = true; }, 8000);
  };

  // --------------------------------------------------------------- notices --
  Widget.prototype.onNotice = function (p) {
    if (!p) return;
    if (this.session && p.session_id && p.session_id !== this.session.session_id) return;
    var text = this.t.notice[p.code] || p.text || p.code;
    this.systemLine(text, "warn").setAttribute("data-code", p.code || "");
  };

  // ---------------------------------------------- compensation (cases-money) --
  // "赔付 ¥15.00（余额）已到账": the customer-facing status of a compensation paid to them
  Widget.prototype.onCompensation = function (p) {
    var c = p && p.compensation;
    if (!c || (this.session && p.session_id !== this.session.session_id)) return;
    this.compShown = this.compShown || {};
    var key = c.compensation_id + ":" + c.status;
    if (this.compShown[key]) return;
    this.compShown[key] = true;
    var en = this.cfg.lang === "en";
    var text = en
      ? "Compensation " + money(c.amount) + " (" + c.asset_type + "): " + (c.status === "paid" ? "credited" : c.status)
      : "赔付 " + money(c.amount) + "（" + c.asset_label + "）" + c.label;
    var li = this.systemLine(text, c.status === "paid" ? "ok" : "");
    li.setAttribute("data-testid", "cd-compensation");
    li.setAttribute("data-status", c.status);
  };

  // after a (re)connect: the customer's orders as they stand now (GET /api/v1/im/compensations)
  Widget.prototype.loadCompensations = function () {
    var self = this;
    var s = this.session;
    if (!s || !this.visitorToken) return;
    var url = this.cfg.base + "/api/v1/im/compensations?session_id=" + encodeURIComponent(s.session_id);
    fetch(url, { headers: { Authorization: "Visitor " + this.visitorToken } })
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (list) {
        if (!self.session || self.session.session_id !== s.session_id) return;
        list.slice().reverse().forEach(function (c) {
          self.onCompensation({ session_id: s.session_id, compensation: c });
        });
      })
      .catch(function () { /* offline: the live push still comes */ });
  };

  // ---------------------------------------------------------------- upload --
  Widget.prototype.onFilePicked = function () {
    var self = this;
    var file = this.fileInput.files && this.fileInput.files[0];
    this.fileInput.value = "";
    if (!file || !this.canSend()) return;
    if (file.size > MAX_UPLOAD) {
      this.systemLine(fmt(this.t.tooLarge, { max: bytes(MAX_UPLOAD) }), "warn");
      return;
    }
    var note = this.systemLine(fmt(this.t.uploading, { name: file.name }));
    var form = new FormData();
    form.append("session_id", this.session.session_id);
    form.append("file", file, file.name);
    var headers = {};
    if (this.visitorToken) headers.Authorization = "Visitor " + this.visitorToken;
    fetch(this.cfg.base + "/api/v1/im/uploads", { method: "POST", body: form, headers: headers })
      .then(function (r) {
        return r.json().then(
          function (body) { return { status: r.status, body: body }; },
          function () { return { status: r.status, body: {} }; },
        );
      })
      .then(function (res) {
        note.remove();
        var body = res.body || {};
        if (res.status >= 300) {
          var err = body.error || { code: String(res.status), message: res.status + "" };
          self.systemLine(fmt(self.t.uploadFailed, { reason: self.errorText(err) }), "warn");
          return;
        }
        var att = body.attachment || body;
        var kind = /^image\//.test(att.content_type || file.type) ? "image" : "file";
        self.enqueue({ kind: kind, attachment_id: att.id }, { kind: kind, attachment: att });
      })
      .catch(function (e) {
        note.remove();
        self.systemLine(fmt(self.t.uploadFailed, { reason: e.message }), "warn");
      });
  };

  // ----------------------------------------------------------- end, rating --
  Widget.prototype.onEndClick = function () {
    var self = this;
    if (!this.endArmed) {
      this.endArmed = true;
      this.endBtn.textContent = this.t.endConfirm;
      this.endTimer = setTimeout(function () {
        self.endArmed = false;
        self.endBtn.textContent = self.t.end;
      }, 4000);
      return;
    }
    clearTimeout(this.endTimer);
    this.endArmed = false;
    this.endBtn.textContent = this.t.end;
    if (!this.session) return;
    this.stopTyping();
    this.emit("chat.end", { session_id: this.session.session_id }, function (res) {
      if (!res.ok) self.systemLine(self.errorText(res.error), "warn");
      else self.applySession(res.session);
    });
  };

  Widget.prototype.setScore = function (score) {
    this.score = score;
    this.starBtns.forEach(function (b, i) {
      b.classList.toggle("on", i < score);
      b.setAttribute("aria-checked", i + 1 === score ? "true" : "false");
    });
    this.starLabel.textContent = score ? this.t.stars[score - 1] : "";
    this.rateBtn.disabled = !score;
  };

  Widget.prototype.submitRating = function () {
    var self = this;
    if (!this.session || !this.score) return;
    var payload = { session_id: this.session.session_id, score: this.score };
    var comment = this.rateComment.value.trim();
    if (comment) payload.comment = comment;
    this.rateBtn.disabled = true;
    this.emit("rating.submit", payload, function (res) {
      self.rateBtn.disabled = false;
      if (!res.ok) {
        self.systemLine(self.errorText(res.error), "warn");
        return;
      }
      self.rated = true;
      if (self.session) self.session.rating = self.score;
      self.render();
    });
  };

  // ---------------------------------------------------------------- helpers --
  function cssEscape(s) {
    return window.CSS && window.CSS.escape ? window.CSS.escape(s) : String(s).replace(/["\\]/g, "\\$&");
  }

  function parseIdentity(raw) {
    if (!raw) return null;
    try {
      var v = JSON.parse(raw);
      return v && typeof v === "object" ? v : null;
    } catch (e) {
      if (window.console) console.warn("contactd widget: data-identity is not JSON", e);
      return null;
    }
  }

  /** data-* attributes of the script tag, overridden by window.ContactdSettings if set. */
  function configFromScript(el) {
    var ds = (el && el.dataset) || {};
    var js = window.ContactdSettings || {};
    var pick = function (key) {
      return js[key] != null ? js[key] : ds[key] != null && ds[key] !== "" ? ds[key] : null;
    };
    var base = pick("contactdUrl");
    if (!base) base = el && el.src ? new URL(el.src, location.href).origin : location.origin;
    var identity = js.identity != null ? js.identity : parseIdentity(ds.identity);
    return {
      base: String(base).replace(/\/+$/, ""),
      entryPoint: pick("entryPoint"),
      queueId: pick("queue"),
      orderNo: pick("orderNo"),
      identity: identity && typeof identity === "object" ? identity : null,
      lang: pickLang(pick("lang")),
      open: String(pick("open")) === "true",
    };
  }

  var api = (window.ContactdWidget = {
    instance: null,
    open: function () { if (api.instance) api.instance.open(); },
    close: function () { if (api.instance) api.instance.close(); },
    toggle: function () { if (api.instance) api.instance.toggle(); },
  });

  function boot() {
    api.instance = new Widget(configFromScript(script));
  }
  if (document.body) boot();
  else document.addEventListener("DOMContentLoaded", boot);
})();
