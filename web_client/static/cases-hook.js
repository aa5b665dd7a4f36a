// The case module's hook into the agent workspace: a "new ticket" button in the chat
// header (opens the ticket form prefilled from the chat) and a link to the ticket desk.
import { $, h, LANG, loadAuth } from "./cases-common.js";
import { openTicketForm } from "./cases-form.js";

function install() {
  if (!$('link[href="/static/cases.css"]')) {
    document.head.append(h("link", { rel: "stylesheet", href: "/static/cases.css" }));
  }
  const actions = $(".conv-actions");
  if (!actions || $("#btn-ticket")) return;
  const btn = h(
    "button",
    { id: "btn-ticket", type: "button", class: "btn", "data-testid": "open-ticket" },
    LANG === "en" ? "New ticket" : "建工单",
  );
  btn.addEventListener("click", () => {
    const sid = ($("#conv-sid")?.textContent || "").trim();
    const auth = loadAuth();
    if (sid && auth) openTicketForm(auth, sid);
  });
  actions.prepend(btn);
  const right = $(".topbar-right");
  if (right) {
    right.prepend(
      h("a", { class: "btn small", href: "/cases", target: "_blank", "data-testid": "open-desk" }, LANG === "en" ? "Tickets" : "工单台"),
    );
  }
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", install);
else install();
