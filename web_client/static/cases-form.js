// "New after-sales ticket" dialog, prefilled from a chat (GET /api/v1/tickets/prefill).
import { api, h, money, toast, LANG } from "./common.js";

const TEXT = {
  zh: {
    title: "新建售后工单",
    type: "类型",
    order: "订单",
    noOrder: "不关联订单",
    items: "商品（数量）",
    amount: "金额（元）",
    reason: "原因 / 说明",
    priority: "优先级",
    create: "提交工单",
    cancel: "取消",
    created: "工单已创建",
    customer: "客户",
    wholeOrder: "整单退款：{total}",
    noAmount: "此类型不涉及金额",
    loading: "正在读取会话和订单…",
    p0: "普通",
    p3: "较急",
    p6: "紧急",
    p9: "非常紧急",
    evidence: "附上客户发来的图片 / 文件",
  },
  en: {
    title: "New after-sales ticket",
    type: "Type",
    order: "Order",
    noOrder: "No order",
    items: "Items (quantity)",
    amount: "Amount (¥)",
    reason: "Reason",
    priority: "Priority",
    create: "Create ticket",
    cancel: "Cancel",
    created: "Ticket created",
    customer: "Customer",
    wholeOrder: "Whole order: {total}",
    noAmount: "This type carries no amount",
    loading: "Loading the chat and orders…",
    p0: "Normal",
    p3: "Soon",
    p6: "Urgent",
    p9: "Very urgent",
    evidence: "Attach what the customer sent",
  },
}[LANG];
export const TYPE_LABELS = {
  refund: LANG === "en" ? "Refund (before picking)" : "退款（拣货前）",
  return_refund: LANG === "en" ? "Return & refund" : "退货退款",
  reshipment: LANG === "en" ? "Reshipment" : "补货",
  partial_refund: LANG === "en" ? "Partial refund" : "部分退款",
  exchange: LANG === "en" ? "Exchange" : "换货",
  compensation: LANG === "en" ? "Compensation" : "赔付",
  complaint: LANG === "en" ? "Complaint" : "投诉",
};
const ITEM_TYPES = new Set(["partial_refund", "return_refund", "reshipment", "exchange"]);
const NO_MONEY = new Set(["reshipment", "exchange", "complaint"]);

export async function openTicketForm(auth, sessionId, onCreated) {
  const dlg = h("dialog", { class: "dialog ticket-dialog", "data-testid": "ticket-dialog" });
  document.body.append(dlg);
  dlg.addEventListener("close", () => dlg.remove());
  dlg.append(h("div", { class: "muted" }, TEXT.loading));
  dlg.showModal();
  let pre;
  try {
    pre = await api(auth, "GET", `/api/v1/tickets/prefill?session_id=${encodeURIComponent(sessionId)}`);
  } catch (e) {
    toast(e.message, "error");
    dlg.close();
    return;
  }
  dlg.textContent = "";

  const typeSel = h("select", { name: "type", "data-testid": "ticket-type" });
  const orderSel = h(
    "select",
    { name: "order_no", "data-testid": "ticket-order" },
    h("option", { value: "" }, TEXT.noOrder),
    pre.orders.map((o) =>
      h("option", { value: o.order_no, selected: o.order_no === pre.order_no }, `${o.order_no} · ${o.status_label} · ${money(o.total)}`),
    ),
  );
  if (!pre.order_no && pre.orders.length) orderSel.value = pre.orders[0].order_no;
  const itemsBox = h("div", { class: "ticket-items", "data-testid": "ticket-items" });
  const amount = h("input", { name: "amount", type: "number", min: "0", step: "0.01", "data-testid": "ticket-amount" });
  const amountHint = h("div", { class: "muted small" });
  const reason = h("textarea", { name: "reason", rows: "3", required: true, maxlength: "1000", "data-testid": "ticket-reason" });
  const priority = h(
    "select",
    { name: "priority", "data-testid": "ticket-priority" },
    [0, 3, 6, 9].map((p) => h("option", { value: String(p) }, `${p} · ${TEXT["p" + p]}`)),
  );
  const error = h("div", { class: "form-error", role: "alert", hidden: true, "data-testid": "ticket-error" });
  const evidence = h(
    "div",
    { class: "ticket-evidence", hidden: !pre.attachments.length, "data-testid": "ticket-evidence" },
    pre.attachments.map((a) =>
      h(
        "label",
        { class: "evidence" },
        h("input", { type: "checkbox", "data-attachment": a.id, checked: true }),
        a.content_type.startsWith("image/") ? h("img", { src: a.url, alt: a.name }) : h("span", { class: "file" }, a.name),
      ),
    ),
  );

  const order = () => pre.orders.find((o) => o.order_no === orderSel.value) || null;
  function renderTypes() {
    const o = order();
    const allowed = o ? o.types : ["complaint"];
    const keep = typeSel.value;
    typeSel.textContent = "";
    for (const t of allowed) typeSel.append(h("option", { value: t }, TYPE_LABELS[t] || t));
    if (allowed.includes(keep)) typeSel.value = keep;
    renderItems();
  }
  function renderItems() {
    const o = order();
    const type = typeSel.value;
    itemsBox.textContent = "";
    itemsBox.hidden = !o || !ITEM_TYPES.has(type);
    if (o && ITEM_TYPES.has(type)) {
      for (const it of o.items) {
        itemsBox.append(
          h(
            "label",
            { class: "ticket-item" },
            h("input", { type: "checkbox", "data-sku": it.sku, "data-testid": `ticket-item-${it.sku}` }),
            h("span", { class: "grow" }, `${it.name || it.sku} `, h("span", { class: "muted" }, `× ${it.qty} · ${money(it.amount)}`)),
            h("input", { type: "number", min: "1", max: String(it.qty), value: String(it.qty), class: "qty", "data-qty": it.sku }),
          ),
        );
      }
    }
    amount.disabled = NO_MONEY.has(type) || type === "refund";
    amountHint.textContent =
      type === "refund" && o ? TEXT.wholeOrder.replace("{total}", money(o.total)) : NO_MONEY.has(type) ? TEXT.noAmount : "";
    if (amount.disabled) amount.value = "";
  }
  orderSel.addEventListener("change", renderTypes);
  typeSel.addEventListener("change", renderItems);

  const form = h(
    "form",
    { method: "dialog" },
    h("h3", null, TEXT.title),
    h("div", { class: "ticket-customer muted" }, `${TEXT.customer}: ${pre.customer_name || "-"} ${pre.customer_phone || ""} · ${pre.session_id}`),
    h("label", { class: "field" }, h("span", null, TEXT.order), orderSel),
    h("label", { class: "field" }, h("span", null, TEXT.type), typeSel),
    itemsBox,
    h("label", { class: "field" }, h("span", null, TEXT.amount), amount, amountHint),
    h("label", { class: "field" }, h("span", null, TEXT.reason), reason),
    pre.attachments.length ? h("div", { class: "field" }, h("span", null, TEXT.evidence), evidence) : null,
    h("label", { class: "field" }, h("span", null, TEXT.priority), priority),
    error,
    h(
      "div",
      { class: "dialog-actions" },
      h("button", { type: "button", class: "btn", onclick: () => dlg.close() }, TEXT.cancel),
      h("button", { type: "submit", class: "btn primary", "data-testid": "ticket-submit" }, TEXT.create),
    ),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    const body = { type: typeSel.value, session_id: pre.session_id, reason: reason.value.trim(), priority: Number(priority.value) };
    if (orderSel.value) body.order_no = orderSel.value;
    const items = [];
    for (const box of itemsBox.querySelectorAll("input[type=checkbox]:checked")) {
      const sku = box.dataset.sku;
      items.push({ sku, qty: Number(itemsBox.querySelector(`[data-qty="${sku}"]`).value) });
    }
    if (items.length) body.items = items;
    const files = [...evidence.querySelectorAll("input:checked")].map((x) => x.dataset.attachment);
    if (files.length) body.attachments = files;
    if (!amount.disabled && amount.value !== "") body.amount = Math.round(Number(amount.value) * 100);
    try {
      const res = await api(auth, "POST", "/api/v1/tickets", body);
      toast(`${TEXT.created} ${res.ticket.id}`, "ok");
      dlg.close();
      if (onCreated) onCreated(res);
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    }
  });
  dlg.append(form);
  renderTypes();
}
