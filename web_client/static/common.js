// Helpers every staff page shares (the workspace, the ticket desk, the dashboard, the
// supervisor's monitor, the review and finance pages, the FAQ admin): DOM building, toasts,
// the REST call, permissions. Staff sign in once: the token lives where the agent
// workspace keeps it.

export const AUTH_KEY = "contactd.agent.auth";
export const LANG = String(navigator.language || "zh").toLowerCase().startsWith("en") ? "en" : "zh";
export const $ = (sel, root = document) => root.querySelector(sel);

/** h("div", {class: "x", onclick: fn}, child, "text") */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  add(el, children);
  return el;
}
function add(el, child) {
  if (child == null || child === false) return;
  if (Array.isArray(child)) child.forEach((c) => add(el, c));
  else el.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
}

export const money = (fen) => (typeof fen === "number" ? `¥${(fen / 100).toFixed(2)}` : "");
export const pad = (n) => String(n).padStart(2, "0");
export function when(ms) {
  if (!ms) return "";
  const d = new Date(ms);
  return `${d.getMonth() + 1}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
export function age(ms) {
  if (!ms) return "";
  const s = Math.max(0, Math.floor((Date.now() - ms) / 1000));
  if (s < 60) return LANG === "en" ? `${s}s` : `${s}秒`;
  if (s < 3600) return LANG === "en" ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 60)}分钟`;
  if (s < 86400) return LANG === "en" ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 3600)}小时`;
  return LANG === "en" ? `${Math.floor(s / 86400)}d` : `${Math.floor(s / 86400)}天`;
}

export function toast(text, kind) {
  let box = $("#toasts");
  if (!box) {
    box = h("div", { id: "toasts", class: "toasts", "aria-live": "polite" });
    document.body.append(box);
  }
  const el = h("div", { class: `toast ${kind || ""}`, role: "status", "data-testid": "toast" }, text);
  box.append(el);
  setTimeout(() => el.remove(), kind === "error" ? 6000 : 3500);
}

export function loadAuth() {
  try {
    const a = JSON.parse(sessionStorage.getItem(AUTH_KEY) || "null");
    if (a && a.token && (!a.expires_at || Date.parse(a.expires_at) > Date.now())) return a;
  } catch {
    /* no stored sign-in */
  }
  return null;
}
export function saveAuth(a) {
  if (a) sessionStorage.setItem(AUTH_KEY, JSON.stringify(a));
  else sessionStorage.removeItem(AUTH_KEY);
}
export function can(auth, perm) {
  return !!auth && (auth.permissions || []).includes(perm);
}

/** REST as the signed-in staff member; throws Error with .code and .status (a validation
 * error's message names each field and its problem). */
export async function api(auth, method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth) headers.Authorization = `Bearer ${auth.token}`;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try {
    data = await r.json();
  } catch {
    data = null;
  }
  if (!r.ok) {
    const e = (data && data.error) || { code: String(r.status), message: r.statusText };
    const problems = e.details && e.details.problems;
    const err = new Error(problems ? problems.map((p) => `${p.field}: ${p.problem}`).join("; ") : e.message || e.code);
    err.code = e.code;
    err.status = r.status;
    throw err;
  }
  return data;
}

/** A sign-in form in #login that resolves with the auth once signed in. */
export function signIn(onDone) {
  const form = $("#login-form");
  $("#login").hidden = false;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const err = $("#login-error");
    err.hidden = true;
    try {
      const res = await api(null, "POST", "/api/v1/auth/login", {
        username: String(fd.get("username") || ""),
        password: String(fd.get("password") || ""),
      });
      saveAuth(res);
      $("#login").hidden = true;
      onDone(res);
    } catch (e) {
      err.textContent = e.message || String(e);
      err.hidden = false;
    }
  });
}
