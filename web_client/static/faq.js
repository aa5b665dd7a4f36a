// The bot's knowledge base (/admin/faq): list, filter, add, edit, delete entries and try a
// question the way a customer would ask it. REST: /api/v1/bot/faqs, /api/v1/bot/search.
import { $, LANG, api as apiAs, h } from "./common.js";

const LABELS = {
  zh: {
    title: "机器人知识库", loginHint: "使用有知识库权限的账号登录", username: "账号", password: "密码",
    signIn: "登录", signOut: "退出", filter: "搜索问题或答案", allTags: "全部标签", new: "新建问答",
    edit: "编辑问答", question: "问题", answer: "答案", tags: "标签", stats: "命中 · 👍 · 👎",
    empty: "还没有问答。", tryTitle: "试一试", tryHint: "像客户那样提问，看看机器人会怎么回答。",
    tryPlaceholder: "例如：退款几天到账", variants: "其他问法（每行一个）", tagsHint: "标签（逗号分隔）",
    lang: "语言", suggested: "开场推荐", enabled: "启用", cancel: "取消", save: "保存",
    editBtn: "编辑", deleteBtn: "删除", confirmDelete: "删除问答「{q}」？", off: "已停用",
    wouldAnswer: "机器人会回答：", noAnswer: "没有足够接近的问答：机器人会追问，或转人工。",
    intent: "自助流程", noPermission: "这个账号没有知识库权限（kb.manage）", loginFailed: "登录失败：{msg}",
    saveFailed: "保存失败：{msg}",
    export: "导出", import: "导入",
    statsTitle: "最近 24 小时", statChats: "机器人接待", statContained: "机器人独立完成", statHanded: "转人工",
    reason_asked: "客户要求", reason_misses: "连续没答上", reason_negative_feedback: "客户不满意",
    reason_no_answer: "没有答案", reason_bot_unavailable: "机器人故障", reason_verification: "验证失败",
    imported: "已导入：新增 {created} 条，更新 {updated} 条，未变 {unchanged} 条",
    importFailed: "导入失败（没有任何改动）：{msg}",
  },
  en: {
    title: "Bot knowledge base", loginHint: "Sign in with an account that may edit the knowledge base",
    username: "Username", password: "Password", signIn: "Sign in", signOut: "Sign out",
    filter: "Search questions and answers", allTags: "All tags", new: "New entry", edit: "Edit entry",
    question: "Question", answer: "Answer", tags: "Tags", stats: "Hits · 👍 · 👎", empty: "No entries yet.",
    tryTitle: "Try it", tryHint: "Ask like a customer would and see what the bot answers.",
    tryPlaceholder: "e.g. how long does a refund take", variants: "Other ways to ask (one per line)",
    tagsHint: "Tags (comma separated)", lang: "Language", suggested: "Suggest at start", enabled: "Enabled",
    cancel: "Cancel", save: "Save", editBtn: "Edit", deleteBtn: "Delete", confirmDelete: "Delete “{q}”?",
    off: "off", wouldAnswer: "The bot answers:", noAnswer: "Nothing close enough: the bot asks back or hands over.",
    intent: "self-service", noPermission: "This account may not edit the knowledge base (kb.manage)",
    loginFailed: "Sign-in failed: {msg}", saveFailed: "Not saved: {msg}",
    export: "Export", import: "Import",
    statsTitle: "Last 24 hours", statChats: "Bot chats", statContained: "Ended with the bot", statHanded: "Handed over",
    reason_asked: "asked", reason_misses: "missed twice", reason_negative_feedback: "unhappy",
    reason_no_answer: "no answer", reason_bot_unavailable: "bot failed", reason_verification: "failed check",
    imported: "Imported: {created} added, {updated} updated, {unchanged} unchanged",
    importFailed: "Import failed (nothing changed): {msg}",
  },
};
const L = LABELS[LANG];
const AUTH_KEY = "contactd:faq-auth";
const t = (k, vars) => (L[k] ?? k).replace(/\{(\w+)\}/g, (_, v) => (vars && vars[v] != null ? String(vars[v]) : ""));
const state = { auth: null, faqs: [], editing: null };

/** REST as the signed-in admin; a sign-in that expired shows the sign-in form again. */
async function api(method, path, body) {
  try {
    return await apiAs(state.auth, method, path, body);
  } catch (e) {
    if (e.status === 401 && state.auth) {
      sessionStorage.removeItem(AUTH_KEY);
      state.auth = null;
      showLogin();
    }
    throw e;
  }
}

// ------------------------------------------------------------------ sign in --
function showLogin(message) {
  $("#app").hidden = true;
  $("#login").hidden = false;
  const err = $("#login-error");
  err.hidden = !message;
  err.textContent = message || "";
}

async function onLogin(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  try {
    const res = await api("POST", "/api/v1/auth/login", { username: form.username.value.trim(), password: form.password.value });
    if (!(res.permissions || []).includes("kb.manage")) return showLogin(t("noPermission"));
    state.auth = res;
    sessionStorage.setItem(AUTH_KEY, JSON.stringify(res));
    form.password.value = "";
    start();
  } catch (e) {
    showLogin(t("loginFailed", { msg: e.message }));
  }
}

async function signOut() {
  try {
    await api("POST", "/api/v1/auth/logout");
  } catch {
    /* signed out anyway */
  }
  sessionStorage.removeItem(AUTH_KEY);
  state.auth = null;
  showLogin();
}

// --------------------------------------------------------------------- list --
async function load() {
  state.faqs = await api("GET", "/api/v1/bot/faqs?limit=1000");
  const tags = [...new Set(state.faqs.flatMap((f) => f.tags))].sort();
  const sel = $("#tag-filter");
  const keep = sel.value;
  sel.replaceChildren(h("option", { value: "" }, t("allTags")), ...tags.map((x) => h("option", { value: x }, x)));
  sel.value = tags.includes(keep) ? keep : "";
  render();
}

function render() {
  const q = $("#filter").value.trim().toLowerCase();
  const tag = $("#tag-filter").value;
  const shown = state.faqs.filter(
    (f) =>
      (!tag || f.tags.includes(tag)) &&
      (!q || [f.question, f.answer, ...f.variants].some((s) => s.toLowerCase().includes(q))),
  );
  $("#rows").replaceChildren(...shown.map(row));
  $("#empty").hidden = state.faqs.length > 0;
}

function row(f) {
  return h(
    "tr",
    { class: f.enabled ? "" : "off", "data-testid": "faq-row", "data-id": String(f.id) },
    h(
      "td",
      null,
      h("div", { class: "q" }, f.question, f.enabled ? null : h("span", { class: "tag warn" }, ` ${t("off")}`)),
      f.variants.length ? h("div", { class: "variants" }, f.variants.join(" · ")) : null,
    ),
    h("td", { class: "a" }, f.answer),
    h("td", null, f.tags.map((x) => h("span", { class: "tag" }, x)), f.suggested ? h("span", { class: "tag accent" }, t("suggested")) : null, h("span", { class: "tag" }, f.lang)),
    h("td", { class: "stats" }, `${f.hits} · ${f.helpful} · ${f.unhelpful}`),
    h(
      "td",
      { class: "ops" },
      h("button", { type: "button", class: "btn small", "data-testid": "faq-edit", onclick: () => openEditor(f) }, t("editBtn")),
      " ",
      h("button", { type: "button", class: "btn small danger", "data-testid": "faq-delete", onclick: () => remove(f) }, t("deleteBtn")),
    ),
  );
}

// ------------------------------------------------------------------- editor --
function openEditor(f) {
  state.editing = f || null;
  const form = $("#editor");
  form.hidden = false;
  $("#editor-title").textContent = f ? t("edit") : t("new");
  form.question.value = f ? f.question : "";
  form.variants.value = f ? f.variants.join("\n") : "";
  form.answer.value = f ? f.answer : "";
  form.tags.value = f ? f.tags.join(", ") : "";
  form.lang.value = f ? f.lang : LANG;
  form.suggested.checked = f ? f.suggested : false;
  form.enabled.checked = f ? f.enabled : true;
  $("#editor-error").hidden = true;
  form.question.focus();
}

async function save(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const body = {
    question: form.question.value.trim(),
    variants: form.variants.value.split("\n").map((s) => s.trim()).filter(Boolean),
    answer: form.answer.value.trim(),
    tags: form.tags.value.split(/[,，]/).map((s) => s.trim()).filter(Boolean),
    lang: form.lang.value,
    suggested: form.suggested.checked,
    enabled: form.enabled.checked,
  };
  try {
    if (state.editing) await api("PATCH", `/api/v1/bot/faqs/${state.editing.id}`, body);
    else await api("POST", "/api/v1/bot/faqs", body);
    form.hidden = true;
    state.editing = null;
    await load();
  } catch (e) {
    const err = $("#editor-error");
    err.textContent = t("saveFailed", { msg: e.message });
    err.hidden = false;
  }
}

async function remove(f) {
  if (!window.confirm(t("confirmDelete", { q: f.question }))) return;
  await api("DELETE", `/api/v1/bot/faqs/${f.id}`);
  await load();
}

// -------------------------------------------------------------------- stats --
async function loadStats() {
  if (!(state.auth.permissions || []).includes("contacts.view")) return;
  const s = await api("GET", "/api/v1/bot/summary");
  $("#stats").hidden = false;
  $("#stat-chats").textContent = String(s.bot_chats);
  const rate = s.containment_rate == null ? "" : ` (${Math.round(s.containment_rate * 100)}%)`;
  $("#stat-contained").textContent = `${s.ended_with_bot}${rate}`;
  $("#stat-handed").textContent = String(s.handed_over);
  const reasons = Object.entries(s.handed_over_by_reason).map(([k, n]) => `${t(`reason_${k}`)} ${n}`);
  $("#stat-reasons").textContent = reasons.join(" · ");
}

// ----------------------------------------------------------- import, export --
const EDITABLE = ["question", "variants", "answer", "tags", "lang", "suggested", "enabled"];

function exportAll() {
  const entries = state.faqs.map((f) => Object.fromEntries(EDITABLE.map((k) => [k, f[k]])));
  const blob = new Blob([JSON.stringify({ entries }, null, 2)], { type: "application/json" });
  const a = h("a", { href: URL.createObjectURL(blob), download: "contactd-faqs.json" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function notice(text, isError) {
  const el = $("#notice");
  el.textContent = text;
  el.classList.toggle("error", !!isError);
  el.hidden = false;
}

async function importFile() {
  const input = $("#import");
  const file = input.files && input.files[0];
  input.value = "";
  if (!file) return;
  try {
    const data = JSON.parse(await file.text());
    const body = Array.isArray(data) ? { entries: data } : data;
    const res = await api("POST", "/api/v1/bot/faqs/import", body);
    notice(t("imported", res));
    await load();
  } catch (e) {
    notice(t("importFailed", { msg: e.message }), true);
  }
}

// ------------------------------------------------------------------- try it --
async function tryIt() {
  const text = $("#try").value.trim();
  const out = $("#try-result");
  if (!text) return out.replaceChildren();
  const res = await api("POST", "/api/v1/bot/search", { text, limit: 5 });
  const answerId = res.answer ? res.answer.faq_id : null;
  out.replaceChildren(
    h("div", { class: "muted" }, res.answer ? t("wouldAnswer") : t("noAnswer")),
    ...res.matches.map((m) =>
      h(
        "div",
        { class: `hit${m.faq_id === answerId ? " answer" : ""}` },
        h("span", null, m.action ? `${m.question} (${t("intent")})` : m.question),
        h("span", { class: "score" }, m.score.toFixed(2)),
      ),
    ),
  );
}

// -------------------------------------------------------------------- start --
function start() {
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#me").textContent = state.auth.username;
  load().catch((e) => showLogin(e.message));
  loadStats().catch(() => {});
}

function boot() {
  document.documentElement.lang = LANG === "en" ? "en" : "zh-CN";
  document.querySelectorAll("[data-i18n]").forEach((el) => (el.textContent = t(el.dataset.i18n)));
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => (el.placeholder = t(el.dataset.i18nPlaceholder)));
  $("#login-form").addEventListener("submit", onLogin);
  $("#logout").addEventListener("click", signOut);
  $("#new").addEventListener("click", () => openEditor(null));
  $("#export").addEventListener("click", exportAll);
  $("#import").addEventListener("change", importFile);
  $("#cancel").addEventListener("click", () => ($("#editor").hidden = true));
  $("#editor").addEventListener("submit", save);
  $("#filter").addEventListener("input", render);
  $("#tag-filter").addEventListener("change", render);
  $("#try").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") tryIt();
  });
  $("#try").addEventListener("search", tryIt);
  try {
    state.auth = JSON.parse(sessionStorage.getItem(AUTH_KEY) || "null");
  } catch {
    state.auth = null;
  }
  if (state.auth) start();
  else showLogin();
}

boot();
