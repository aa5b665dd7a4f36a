// contactd agent workspace: the phone channel. Voice offers (caller, screen-pop, accept)
// arrive beside chats; an accepted call gets the active-call panel: who is on the line,
// whether the IVR has connected the call yet (`call.answered` → a "Call connected" note),
// the call timer, and "End call" (session.end, then wrap-up as for chats).
// agent.js creates this with its helpers and calls the hooks below.

export const VOICE_LABELS = {
  zh: {
    incomingCall: "来电",
    onCall: "通话中",
    ringing: "正在接通…",
    connectedCall: "已接通",
    callEnded: "通话已结束",
    endCall: "挂断",
    caller: "来电号码",
    phoneOnly: "电话会话：通话内容不在此处记录，可在结束时填写处理结果。",
  },
  en: {
    incomingCall: "Incoming call",
    onCall: "On call",
    ringing: "Connecting…",
    connectedCall: "Connected",
    callEnded: "Call ended",
    endCall: "End call",
    caller: "Caller",
    phoneOnly: "Phone call: what is said is not recorded here; pick the outcome when you end it.",
  },
};

const ANSWERED_MSG = "sys.call.answered"; // client_msg_id of the IVR's "call connected" note
const PHONE_ICON =
  '<svg viewBox="0 0 24 24" width="16" height="16" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><path d="M22 16.92v3a2 2 0 0 1-2.18 2 19.79 19.79 0 0 1-8.63-3.07 19.5 19.5 0 0 1-6-6 19.79 19.79 0 0 1-3.07-8.67A2 2 0 0 1 4.11 2h3a2 2 0 0 1 2 1.72c.13.96.36 1.9.7 2.81a2 2 0 0 1-.45 2.11L8.09 9.91a16 16 0 0 0 6 6l1.27-1.27a2 2 0 0 1 2.11-.45c.91.34 1.85.57 2.81.7A2 2 0 0 1 22 16.92z"/></svg>';

function icon() {
  const span = document.createElement("span");
  span.className = "phone-icon";
  span.innerHTML = PHONE_ICON; // a constant, never user data
  return span;
}

export function isVoice(session) {
  return !!session && session.channel === "voice";
}

export function createVoice({ h, t, $, onEnd }) {
  const panel = h(
    "div",
    { id: "call-panel", class: "call-panel", hidden: true, "data-testid": "call-panel" },
  );
  let timer = null;

  function install() {
    const messages = $("#messages");
    if (messages && !$("#call-panel")) messages.before(panel);
  }

  /** Mark an offer card as a call: phone badge in the head, the caller's number up top. */
  function decorateOffer(el, session, pop) {
    if (!isVoice(session)) return;
    el.classList.add("voice");
    el.dataset.channel = "voice";
    const head = el.querySelector(".offer-head span");
    if (head) head.replaceChildren(icon(), ` ${t("incomingCall")} · ${head.textContent.split(" · ").slice(1).join(" · ")}`);
    const phone = pop && pop.customer && pop.customer.phone;
    const body = el.querySelector(".offer-body");
    if (body && phone) body.prepend(h("div", { class: "caller-line", "data-testid": "offer-caller" }, `${t("caller")} ${phone}`));
  }

  function renderTab(conv) {
    conv.tab.classList.toggle("voice", isVoice(conv.session));
  }

  function onMessage(conv, m) {
    if (isVoice(conv.session) && m.client_msg_id === ANSWERED_MSG && !conv.callAnsweredAt) {
      conv.callAnsweredAt = m.created_at;
      return true;
    }
    return false;
  }

  function clock(conv) {
    const from = conv.callAnsweredAt || conv.session.accepted_at;
    if (!from) return "";
    const until = conv.session.ended_at || Date.now();
    const s = Math.max(0, Math.floor((until - from) / 1000));
    return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
  }

  /** The active-call panel for the selected conversation (hidden for chats). */
  function render(conv) {
    clearInterval(timer);
    const voice = !!conv && isVoice(conv.session);
    panel.hidden = !voice;
    const composer = $("#composer");
    if (composer) composer.hidden = voice;
    // a call is ended from the call panel; moving a connected call is the phone system's job
    for (const id of ["#btn-end", "#btn-transfer"]) {
      const btn = $(id);
      if (btn) btn.hidden = voice;
    }
    if (!voice) return;
    const s = conv.session;
    const ended = s.state === "ended";
    const state = ended ? "ended" : conv.callAnsweredAt ? "connected" : "ringing";
    const phone = (conv.pop && conv.pop.customer && conv.pop.customer.phone) || "";
    const time = h("span", { class: "call-time mono", "data-testid": "call-timer" }, clock(conv));
    const label = ended ? t("callEnded") : state === "connected" ? t("connectedCall") : t("ringing");
    panel.dataset.state = state;
    panel.replaceChildren(
      h("div", { class: "call-main" },
        h("div", { class: "call-badge" }, icon()),
        h("div", null,
          h("div", { class: "call-who" }, `${t("onCall")} · ${(conv.pop.customer && conv.pop.customer.name) || ""} ${phone}`),
          h("div", { class: "call-state", "data-testid": "call-state" }, label, " · ", time),
        ),
      ),
      ended
        ? h("span")
        : h("button", { type: "button", class: "btn danger", "data-testid": "call-end", onclick: onEnd }, t("endCall")),
      h("p", { class: "call-note muted small" }, t("phoneOnly")),
    );
    if (!ended) timer = setInterval(() => (time.textContent = clock(conv)), 1000);
  }

  return { install, decorateOffer, renderTab, onMessage, render };
}
