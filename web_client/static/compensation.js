// Compensation orders (赔付单) in the agent workspace: a "赔付" button in the chat header
// opens the form prefilled from the chat (customer, the order, its items); the agent's own
// orders report their progress live (review, approval, payout) as toasts.
import { $, api, h, LANG, loadAuth, money, toast } from "./common.js";

const TEXT = {
  zh: {
    button: "赔付",
    title: "新建赔付单",
    customer: "客户",
    order: "订单",
    noOrder: "不关联订单",
    items: "赔付商品（数量）",
    scene: "赔付场景",
    asset: "资产类型",
    afterSales: "售后单号（售后场景必填）",
    amount: "赔付金额（元）",
    calc: "按标准计算",
    reason: "赔付原因",
    evidence: "凭证（会话中的图片和文件）",
    submit: "提交审核",
    cancel: "取消",
    created: "赔付单 {id} 已提交：{status}",
    coupon: "优惠券",
    cash: "现金",
    balance: "余额",
    loading: "正在读取会话和订单…",
    noPhone: "客户未识别，请填写手机号",
    phone: "客户手机号",
    suggested: "建议金额 {amount}（{rule}）",
    topic: {
      "compensation.reviewed": "赔付单 {id} 已通过业务审核，等待财务审核",
      "compensation.approved": "赔付单 {id} 审核通过，等待发放",
      "compensation.rejected": "赔付单 {id} 被驳回：{reason}",
      "compensation.paid": "赔付单 {id} 已发放到账（{amount}）",
      "compensation.payout_failed": "赔付单 {id} 发放失败，财务处理中",
    },
  },
  en: {
    button: "Compensate",
    title: "New compensation order",
    customer: "Customer",
    order: "Order",
    noOrder: "No order",
    items: "Items (quantity)",
    scene: "Scene",
    asset: "Asset",
    afterSales: "After-sales no. (required for after-sales scenes)",
    amount: "Amount (yuan)",
    calc: "Standard amount",
    reason: "Reason",
    evidence: "Evidence (images and files from the chat)",
    submit: "Submit for review",
    cancel: "Cancel",
    created: "Compensation {id} submitted: {status}",
    coupon: "Coupon",
    cash: "Cash",
    balance: "Balance",
    loading: "Loading the chat and its orders…",
    noPhone: "Customer not identified: enter the phone number",
    phone: "Customer phone",
    suggested: "Suggested {amount} ({rule})",
    topic: {
      "compensation.reviewed": "{id} passed business review; waiting for finance",
      "compensation.approved": "{id} approved; paying out",
      "compensation.rejected": "{id} was rejected: {reason}",
      "compensation.paid": "{id} paid ({amount})",
      "compensation.payout_failed": "{id}: payout failed, finance is on it",
    },
  },
}[LANG];

const fmt = (s, vals) => s.replace(/\{(\w+)\}/g, (_, k) => (vals[k] == null ? "" : String(vals[k])));
const yuanToFen = (v) => Math.round(parseFloat(String(v || "0")) * 100);

/** Open the form for chat ``sessionId``. */
export async function openCompensationForm(auth, sessionId) {
  const dialog = h("dialog", { class: "dialog comp-dialog", "data-testid": "comp-dialog" });
  document.body.append(dialog);
  dialog.addEventListener("close", () => dialog.remove());
  dialog.append(h("h3", null, TEXT.title), h("div", { class: "muted" }, TEXT.loading));
  dialog.showModal();
  let prefill = null;
  try {
    prefill = await api(auth, "GET", `/api/v1/tickets/prefill?session_id=${encodeURIComponent(sessionId)}`);
  } catch {
    prefill = { session_id: sessionId, orders: [], order_no: null, customer_id: null };
  }
  const { scenes } = await api(auth, "GET", "/api/v1/compensation-scenes");
  render(dialog, auth, sessionId, prefill, scenes);
}

function render(dialog, auth, sessionId, prefill, scenes) {
  const orders = prefill.orders || [];
  const orderSel = h(
    "select",
    { name: "order_no", "data-testid": "comp-order" },
    h("option", { value: "" }, TEXT.noOrder),
    orders.map((o) =>
      h("option", { value: o.order_no, selected: o.order_no === prefill.order_no }, `${o.order_no} · ${o.status_label} · ${money(o.total)}`),
    ),
  );
  const itemsBox = h("div", { class: "comp-items", "data-testid": "comp-items" });
  const groups = new Map();
  for (const s of scenes) {
    if (!groups.has(s.group)) groups.set(s.group, h("optgroup", { label: s.group_name }));
    groups.get(s.group).append(h("option", { value: s.id }, s.name));
  }
  const sceneSel = h("select", { name: "scene", required: true, "data-testid": "comp-scene" }, [...groups.values()]);
  const assetSel = h("select", { name: "asset_type", required: true, "data-testid": "comp-asset" });
  const afterSales = h("input", { name: "after_sales_no", maxlength: 64, "data-testid": "comp-after-sales" });
  const afterSalesField = h("label", { class: "field" }, h("span", null, TEXT.afterSales), afterSales);
  const amount = h("input", { name: "amount", type: "number", min: "0.01", step: "0.01", required: true, "data-testid": "comp-amount" });
  const hint = h("div", { class: "muted small comp-hint", "data-testid": "comp-hint" });
  const calc = h("button", { type: "button", class: "btn small", "data-testid": "comp-calc" }, TEXT.calc);
  const reason = h("textarea", { name: "reason", rows: 3, required: true, maxlength: 2000, "data-testid": "comp-reason" });
  // evidence: the images and files exchanged in this chat, as the transcript shows them
  const seen = new Set();
  const evidence = [...document.querySelectorAll("#messages .bubble a[href]")]
    .map((a) => ({ url: a.getAttribute("href"), name: (a.querySelector("img")?.alt || a.textContent || "").replace(/^\[[^\]]*\]\s*/, "").slice(0, 255) || "attachment" }))
    .filter((x) => x.url && !seen.has(x.url) && seen.add(x.url))
    .slice(0, 20);
  const evidenceBox = h(
    "div",
    { class: "comp-items", "data-testid": "comp-evidence" },
    evidence.map((x, i) =>
      h("label", { class: "comp-item" }, h("input", { type: "checkbox", checked: true, "data-evidence": i }), h("span", { class: "grow" }, x.name)),
    ),
  );
  const phone = h("input", { name: "customer_phone", maxlength: 32, "data-testid": "comp-phone" });
  const error = h("div", { class: "form-error", role: "alert", hidden: true, "data-testid": "comp-error" });

  const sceneOf = () => scenes.find((s) => s.id === sceneSel.value);
  const orderOf = () => orders.find((o) => o.order_no === orderSel.value);
  function syncScene() {
    const s = sceneOf();
    assetSel.replaceChildren(...(s ? s.assets : []).map((a) => h("option", { value: a }, TEXT[a] || a)));
    afterSalesField.hidden = !(s && s.after_sales);
    afterSales.required = !!(s && s.after_sales);
  }
  function syncItems() {
    const o = orderOf();
    itemsBox.replaceChildren(
      ...(o ? o.items : []).map((it) =>
        h(
          "label",
          { class: "comp-item" },
          h("input", { type: "checkbox", "data-sku": it.sku, "data-testid": "comp-item" }),
          h("span", { class: "grow" }, `${it.name} · ${money(it.amount)}`),
          h("input", { type: "number", class: "qty", min: 1, max: it.qty, value: it.qty, "data-qty-for": it.sku }),
        ),
      ),
    );
    itemsBox.hidden = !o;
    calc.disabled = !o;
  }
  const chosenItems = () =>
    [...itemsBox.querySelectorAll("input[type=checkbox]:checked")].map((c) => ({
      sku: c.dataset.sku,
      qty: Number(itemsBox.querySelector(`[data-qty-for="${CSS.escape(c.dataset.sku)}"]`).value || 1),
    }));
  sceneSel.addEventListener("change", syncScene);
  orderSel.addEventListener("change", syncItems);
  calc.addEventListener("click", async () => {
    try {
      const q = await api(auth, "POST", "/api/v1/compensations/quote", {
        scene: sceneSel.value,
        order_no: orderSel.value,
        items: chosenItems(),
      });
      amount.value = (q.amount / 100).toFixed(2);
      hint.textContent = fmt(TEXT.suggested, { amount: money(q.amount), rule: q.rule });
    } catch (e) {
      hint.textContent = e.message;
    }
  });

  const form = h(
    "form",
    { method: "dialog", "data-testid": "comp-form" },
    h("h3", null, TEXT.title),
    h(
      "div",
      { class: "muted comp-customer", "data-testid": "comp-customer" },
      `${TEXT.customer}：${prefill.customer_name || "—"} ${prefill.customer_phone || ""}`,
    ),
    prefill.customer_id ? null : h("label", { class: "field" }, h("span", null, TEXT.noPhone), phone),
    h("label", { class: "field" }, h("span", null, TEXT.order), orderSel),
    h("div", { class: "field" }, h("span", null, TEXT.items), itemsBox),
    h("div", { class: "comp-row" },
      h("label", { class: "field" }, h("span", null, TEXT.scene), sceneSel),
      h("label", { class: "field" }, h("span", null, TEXT.asset), assetSel)),
    afterSalesField,
    h("label", { class: "field" }, h("span", null, TEXT.amount), h("div", { class: "comp-amount" }, amount, calc)),
    hint,
    h("label", { class: "field" }, h("span", null, TEXT.reason), reason),
    evidence.length ? h("div", { class: "field" }, h("span", null, TEXT.evidence), evidenceBox) : null,
    error,
    h(
      "div",
      { class: "dialog-actions" },
      h("button", { type: "button", class: "btn", onclick: () => dialog.close() }, TEXT.cancel),
      h("button", { type: "submit", class: "btn primary", "data-testid": "comp-submit" }, TEXT.submit),
    ),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    const body = {
      session_id: sessionId,
      scene: sceneSel.value,
      asset_type: assetSel.value,
      amount: yuanToFen(amount.value),
      reason: reason.value.trim(),
      items: orderSel.value ? chosenItems() : [],
      attachments: [...evidenceBox.querySelectorAll("input[data-evidence]:checked")].map((c) => evidence[Number(c.dataset.evidence)]),
    };
    if (orderSel.value) body.order_no = orderSel.value;
    if (afterSales.value.trim()) body.after_sales_no = afterSales.value.trim();
    if (!prefill.customer_id && phone.value.trim()) body.customer_phone = phone.value.trim();
    try {
      const order = await api(auth, "POST", "/api/v1/compensations", body);
      toast(fmt(TEXT.created, { id: order.id, status: order.status_label }), "ok");
      dialog.close();
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    }
  });
  dialog.replaceChildren(form);
  syncScene();
  syncItems();
}

/** Live progress of the agent's own orders (the /review namespace sends each creator theirs). */
function listen(auth) {
  if (!window.io) return;
  const socket = window.io("/review", { auth: { token: auth.token }, transports: ["websocket"] });
  socket.on("compensation.updated", (p) => {
    const c = p && p.compensation;
    const line = c && TEXT.topic[p.topic];
    if (!line || c.creator_name !== auth.username) return;
    toast(fmt(line, { id: c.id, reason: c.reject_reason, amount: money(c.amount) }), p.topic === "compensation.rejected" ? "error" : "ok");
  });
}

function install() {
  if (!$('link[href="/static/compensation.css"]')) {
    document.head.append(h("link", { rel: "stylesheet", href: "/static/compensation.css" }));
  }
  const actions = $(".conv-actions");
  if (!actions || $("#btn-compensate")) return;
  const btn = h("button", { id: "btn-compensate", type: "button", class: "btn", "data-testid": "open-compensation" }, TEXT.button);
  btn.addEventListener("click", () => {
    const sid = ($("#conv-sid")?.textContent || "").trim();
    const auth = loadAuth();
    if (sid && auth) openCompensationForm(auth, sid).catch((e) => toast(e.message, "error"));
  });
  actions.prepend(btn);
  let listening = false;
  const start = () => {
    const auth = loadAuth();
    if (listening || !auth || !(auth.permissions || []).includes("compensation.create")) return;
    listening = true;
    listen(auth);
  };
  start();
  if (!listening) {
    const timer = setInterval(() => {
      start();
      if (listening) clearInterval(timer);
    }, 1000);
  }
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", install);
else install();
