// The finance view (/finance): every payout with its state, attempts and last error or
// reference; retry a failed one (same payout id, so still paid at most once); the ledger
// reconciliation; a link to the orders waiting for finance (L2) review. Live refresh.
import { $, api, can, h, loadAuth, money, saveAuth, signIn, toast } from "./common.js";

const ASSET = { coupon: "优惠券", cash: "现金", balance: "余额" };
const STATE = { pending: ["发放中", "warn"], succeeded: ["已到账", "ok"], failed: ["失败", "danger"] };
let auth = null;

async function load() {
  const params = new URLSearchParams();
  for (const [k, v] of new FormData($("#filters")).entries()) if (v) params.set(k, String(v));
  params.set("limit", "200");
  const [page, rec, l2, ...counts] = await Promise.all([
    api(auth, "GET", `/api/v1/payouts?${params}`),
    api(auth, "GET", "/api/v1/ledger/reconciliation"),
    api(auth, "GET", "/api/v1/compensations?status=pending_review&stage=l2&limit=1"),
    ...["pending", "succeeded", "failed"].map((s) => api(auth, "GET", `/api/v1/payouts?state=${s}&limit=1`)),
  ]);
  $("#l2-count").textContent = String(l2.total);
  ["pending", "succeeded", "failed"].forEach((s, i) => ($(`#n-${s}`).textContent = String(counts[i].total)));
  $("#rec-state").textContent = rec.ok ? "平衡 ✓" : "不平衡 ✗";
  $("#rec-state").className = `comp-card-value ${rec.ok ? "ok" : "danger"}`;
  $("#rec-detail").textContent = `${rec.transactions} 笔交易 · ${rec.accounts} 个账户` +
    (rec.ok ? "" : ` · 异常账户 ${[...rec.drifted_accounts, ...rec.negative_accounts].join(", ")}`);
  $("#rows").replaceChildren(
    ...page.items.map((p) => {
      const [label, cls] = STATE[p.state];
      return h(
        "tr",
        { "data-testid": "payout-row", "data-state": p.state, "data-compensation": p.compensation_id },
        h("td", { class: "mono small" }, p.id),
        h("td", { class: "mono" }, p.compensation_id),
        h("td", null, ASSET[p.asset_type] || p.asset_type),
        h("td", { class: "num" }, money(p.amount)),
        h("td", { class: "mono small" }, p.account),
        h("td", null, p.connector),
        h("td", null, h("span", { class: `tag ${cls}`, "data-testid": "payout-state" }, label)),
        h("td", { class: "num" }, String(p.attempts)),
        h("td", { class: "small" }, p.last_error || p.external_ref || ""),
        h("td", { class: "num" }, p.paid_at ? new Date(p.paid_at).toLocaleString() : ""),
        h("td", null, p.state === "failed"
          ? h("button", { type: "button", class: "btn small", "data-retry": p.id, "data-testid": "payout-retry" }, "重试")
          : null),
      );
    }),
  );
  $("#list-empty").hidden = page.items.length > 0;
}

let timer = null;
const reloadSoon = () => {
  clearTimeout(timer);
  timer = setTimeout(() => load().catch((e) => toast(e.message, "error")), 250);
};

async function start(a) {
  auth = a;
  $("#app").hidden = false;
  $("#me").textContent = auth.username;
  $("#filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    reloadSoon();
  });
  $("#rows").addEventListener("click", async (ev) => {
    const b = ev.target.closest("[data-retry]");
    if (!b) return;
    try {
      await api(auth, "POST", `/api/v1/payouts/${encodeURIComponent(b.dataset.retry)}/retry`);
      toast("已重新发起发放", "ok");
      reloadSoon();
    } catch (e) {
      toast(e.message, "error");
    }
  });
  if (window.io) {
    const socket = window.io("/review", { auth: { token: auth.token }, transports: ["websocket"] });
    socket.on("compensation.updated", reloadSoon);
  }
  await load();
}

const stored = loadAuth();
if (stored && can(stored, "compensation.pay")) start(stored).catch((e) => toast(e.message, "error"));
else {
  saveAuth(null);
  signIn((a) => {
    if (!can(a, "compensation.pay")) {
      toast("此账号没有财务发放权限 (compensation.pay)", "error");
      return;
    }
    start(a).catch((e) => toast(e.message, "error"));
  });
}
