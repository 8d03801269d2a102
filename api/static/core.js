// What every part of the page shares: DOM helpers, the page's language, the API client (with the key prompt),
// and readiness (/health).
import { directionOf } from "./stream.js";
import { STRINGS } from "./strings.js";

export const $ = (sel) => document.querySelector(sel);
export const STATE_KEY = "rag-news.chat";
const KEY_KEY = "rag-news.api-key", LANG_KEY = "rag-news.lang";
export const ui = {
  log: $("#log"), input: $("#message-input"), send: $("#send"), stop: $("#stop"), banner: $("#banner"),
  announcer: $("#announcer"), tooltip: $("#tooltip"), panel: $("#source-panel"), articles: $("#articles-panel"),
  hint: $("#empty-hint"),
};
export const hooks = { readyChanged: () => {} }; // app.js: update the composer

// -- language ---------------------------------------------------------------------------------------------------
export let lang = new URLSearchParams(location.search).get("lang") || localStorage.getItem(LANG_KEY) || "ar";
if (!STRINGS[lang]) lang = "ar";
export const t = (key, ...args) => {
  const s = STRINGS[lang][key] ?? STRINGS.ar[key] ?? key;
  return typeof s === "function" ? s(...args) : s;
};

export function setLang(value) {
  lang = value;
  localStorage.setItem(LANG_KEY, lang);
}

export function applyLanguage() {
  document.documentElement.lang = lang;
  document.documentElement.dir = lang === "ar" ? "rtl" : "ltr";
  document.title = t("title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  const toggle = $("#lang-toggle");
  toggle.textContent = lang === "ar" ? "English" : "العربية";
  toggle.lang = lang === "ar" ? "en" : "ar";
  toggle.dir = lang === "ar" ? "ltr" : "rtl";
}

// -- the API ------------------------------------------------------------------------------------------------------
export class ApiError extends Error {
  constructor(status, detail, kind) { super(detail); this.status = status; this.kind = kind; }
}

export function describe(detail) {
  // the server's own words; a validation error is a list of {loc, msg}
  if (Array.isArray(detail)) return detail.map((e) => `${(e.loc || []).filter((x) => x !== "body").join(".")}: ${e.msg}`).join("; ");
  return String(detail ?? "");
}

export async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const key = localStorage.getItem(KEY_KEY);
  if (key) headers.set("Authorization", `Bearer ${key}`);
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, t("unreachable"), "NetworkError");
  }
  if (response.status === 401) { // ask until the key works or the reader cancels
    const body = await response.json().catch(() => ({}));
    if (await askForKey(describe(body.detail))) return api(path, options);
    throw new ApiError(401, describe(body.detail), body.error || "");
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    if (response.status === 503) watchHealth();
    throw new ApiError(response.status, describe(body.detail) || `HTTP ${response.status}`, body.error || "");
  }
  return response;
}

export const json = (path, options) => api(path, options).then((r) => r.json());

async function askForKey(why) {
  const dialog = $("#key-dialog");
  $("#key-why").textContent = why ? `${t("keyWhy")} ${why}` : t("keyWhy");
  $("#key-input").value = "";
  dialog.showModal();
  const answer = await new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true }));
  const key = $("#key-input").value.trim();
  if (answer !== "ok" || !key) return false;
  localStorage.setItem(KEY_KEY, key);
  return true;
}

// -- readiness: /health 503 while the model and index load ---------------------------------------------------
let healthTimer = null, ready = false;
export const isReady = () => ready;

export async function checkHealth() {
  let status = "", detail = "";
  try {
    const r = await fetch("/health");
    const h = await r.json().catch(() => ({}));
    status = r.ok ? "ready" : h.status || "loading";
    detail = h.error || "";
  } catch {
    status = "unreachable";
  }
  setReady(status === "ready", status, detail);
  return status === "ready";
}

export function watchHealth() {
  if (healthTimer) return;
  setReady(false, "loading", "");
  const poll = async () => {
    if (await checkHealth()) { healthTimer = null; return; }
    healthTimer = setTimeout(poll, 1000);
  };
  healthTimer = setTimeout(poll, 0);
}

function setReady(isReady, status, detail) {
  ready = isReady;
  ui.banner.hidden = isReady;
  ui.banner.dataset.status = status;
  ui.banner.textContent = isReady ? "" : `${t(status === "failed" ? "failed" : status === "unreachable" ? "unreachable" : "loading")}${detail ? ` (${detail})` : ""}`;
  hooks.readyChanged();
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export function setDir(node, text) {
  const dir = directionOf(text);
  if (!dir) { node.removeAttribute("dir"); return; }
  if (node.dir !== dir) { node.dir = dir; node.lang = dir === "rtl" ? "ar" : "en"; } // unchanged: no restyle
}


// "date · source · id", each in its own <bdi> so a Latin date or id keeps its order inside Arabic
export function metaLine(node, items) {
  node.replaceChildren();
  items.filter(Boolean).forEach((item, i) => { if (i) node.append(" · "); node.append(el("bdi", { text: String(item) })); });
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = el("textarea", { class: "visually-hidden" });
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
}
