// The chat page: asks /chat with stream=true, renders the answer as it streams, opens each citation's exact span
// from the server (/documents/{id}?cite=...), lists and changes the articles, stores feedback.
// No framework, no build step: text is only ever inserted as text nodes.
import { MarkerSplitter, directionOf, readEvents, splitMarkers } from "./stream.js";
import { STRINGS } from "./strings.js";

const $ = (sel) => document.querySelector(sel);
const STATE_KEY = "rag-news.chat", KEY_KEY = "rag-news.api-key", LANG_KEY = "rag-news.lang";
const ui = {
  log: $("#log"), input: $("#message-input"), send: $("#send"), stop: $("#stop"), banner: $("#banner"),
  announcer: $("#announcer"), tooltip: $("#tooltip"), panel: $("#source-panel"), articles: $("#articles-panel"),
  hint: $("#empty-hint"),
};

// -- language ---------------------------------------------------------------------------------------------------
let lang = new URLSearchParams(location.search).get("lang") || localStorage.getItem(LANG_KEY) || "ar";
if (!STRINGS[lang]) lang = "ar";
const t = (key, ...args) => {
  const s = STRINGS[lang][key] ?? STRINGS.ar[key] ?? key;
  return typeof s === "function" ? s(...args) : s;
};

function applyLanguage() {
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
class ApiError extends Error {
  constructor(status, detail, kind) { super(detail); this.status = status; this.kind = kind; }
}

function describe(detail) {
  // the server's own words; a validation error is a list of {loc, msg}
  if (Array.isArray(detail)) return detail.map((e) => `${(e.loc || []).filter((x) => x !== "body").join(".")}: ${e.msg}`).join("; ");
  return String(detail ?? "");
}

async function api(path, options = {}) {
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

const json = (path, options) => api(path, options).then((r) => r.json());

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

async function checkHealth() {
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

function watchHealth() {
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
  updateComposer();
}

// -- conversation state, kept in localStorage so a reload keeps it -----------------------------------------------
let state = loadState();
let current = null; // the turn being streamed: {turn, controller}

function loadState() {
  try {
    const s = JSON.parse(localStorage.getItem(STATE_KEY));
    if (s && Array.isArray(s.turns)) return s;
  } catch { /* a damaged entry starts a new chat */ }
  return { session_id: null, turns: [] };
}

function saveState() {
  localStorage.setItem(STATE_KEY, JSON.stringify(state));
}

function updateComposer() {
  const streaming = current !== null;
  ui.send.hidden = streaming;
  ui.stop.hidden = !streaming;
  ui.send.disabled = !ready;
  ui.input.setAttribute("aria-disabled", String(!ready));
  ui.input.readOnly = !ready;
  ui.hint.hidden = state.turns.length > 0;
}

// -- rendering an answer ------------------------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
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

function setDir(node, text) {
  const dir = directionOf(text);
  if (!dir) { node.removeAttribute("dir"); return; }
  if (node.dir !== dir) { node.dir = dir; node.lang = dir === "rtl" ? "ar" : "en"; } // unchanged: no restyle
}

const chipCitation = new WeakMap(); // chip -> the server's citation it stands for

// Writes pieces ({text} / {marker}) into a container: paragraphs on blank lines, each with its own direction
// from its own text; each marker a chip in its own <bdi>, bound to the server's citation with that number.
class AnswerBody {
  constructor(container, citations) {
    this.container = container;
    this.citations = citations; // Map n -> citation (may fill in later: a generated answer sends them last)
    this.newlines = 0;
    this.text = "";
    this.chips = [];
    this.paragraph();
  }

  paragraph() {
    this.p = el("p");
    this.pText = "";
    this.container.append(this.p);
  }

  breakLines() {
    if (this.newlines >= 2 && (this.pText || this.p.childNodes.length)) this.paragraph();
    else if (this.newlines === 1 && this.p.childNodes.length) this.p.append(el("br"));
    this.newlines = 0;
  }

  write(pieces) {
    for (const piece of pieces) {
      if (piece.marker !== undefined) {
        this.breakLines();
        this.text += `[${piece.marker}]`;
        this.p.append(this.chip(piece.marker));
        continue;
      }
      this.text += piece.text;
      for (const part of piece.text.split(/(\n)/)) {
        if (part === "\n") { this.newlines += 1; continue; }
        if (!part) continue;
        if (this.newlines) {
          if (!/\S/.test(part)) continue; // spaces between lines
          this.breakLines();
        }
        const last = this.p.lastChild;
        if (last && last.nodeType === Node.TEXT_NODE) last.appendData(part);
        else this.p.append(document.createTextNode(part));
        this.pText += part;
      }
      setDir(this.p, this.pText);
    }
  }

  chip(n) {
    const button = el("button", { type: "button", class: "chip", "data-testid": "citation", "data-n": n, text: String(n) });
    const bdi = el("bdi", { class: "cite" }, button);
    this.chips.push(button);
    this.bind(button);
    return bdi;
  }

  bind(button) {
    const c = this.citations.get(Number(button.dataset.n));
    if (c) chipCitation.set(button, c);
    if (!c) { button.classList.add("pending"); button.setAttribute("aria-label", t("sourcePending", button.dataset.n)); return; }
    button.classList.remove("pending");
    button.dataset.citationId = c.id;
    button.setAttribute("aria-label", t("sourceLabel", c.n, c.title || c.doc_id));
  }

  rebind() { for (const b of this.chips) this.bind(b); }
}

function renderQuestion(text) {
  const div = el("div", { class: "question" }, el("p", { text }));
  setDir(div, text);
  return div;
}

function answerShell() {
  return el("article", { class: "answer", "data-testid": "answer", "data-status": "streaming", "data-abstained": "false",
                         "aria-busy": "true", "aria-label": t("answer") },
    el("div", { class: "answer-head" }), el("div", { class: "answer-body" }), el("div", { class: "answer-foot" }));
}

// The final form of an answer, from the answer object the server sent last (or a stored turn). What was
// streamed stays when it already is that form: the same text, every chip bound to the final citation.
function renderFinal(article, turn, streamed = null) {
  const a = turn.answer;
  const body = article.querySelector(".answer-body");
  const citations = new Map((a?.citations || []).map((c) => [c.n, c]));
  const text = a ? a.answer : turn.partial || "";
  const same = streamed && a && streamed.text === text &&
    streamed.chips.every((b) => chipCitation.get(b) && chipCitation.get(b).id === citations.get(Number(b.dataset.n))?.id);
  if (!same) {
    body.replaceChildren();
    const writer = new AnswerBody(body, citations);
    // a marker that names no citation the server sent stays text
    writer.write(splitMarkers(text).map((p) => (p.marker !== undefined && !citations.has(p.marker) ? { text: `[${p.marker}]` } : p)));
  }
  setDir(article, text.replace(/\[[^\]]*\]/g, ""));
  article.dataset.status = turn.status === "error" ? "error" : "done";
  article.dataset.abstained = String(Boolean(a?.abstained));
  article.setAttribute("aria-busy", "false");
  article.classList.toggle("abstained", Boolean(a?.abstained));
  renderHead(article, turn);
  renderFoot(article, turn);
}

function renderHead(article, turn) {
  const head = article.querySelector(".answer-head");
  head.replaceChildren();
  const a = turn.answer;
  if (a?.abstained) head.append(el("p", { class: "badge abstain", text: t("abstained") }));
  else if (a) head.append(el("span", { class: "badge mode", text: t(a.mode === "generative" ? "generative" : "extractive") }));
  if (a?.notice) head.append(el("p", { class: "notice", role: "note", text: `${t("notice")} ${a.notice}` }));
  if (turn.stopped) head.append(el("p", { class: "notice", text: t("stopped") }));
  if (turn.status === "error") head.append(el("p", { class: "error", text: turn.error }));
}

function renderFoot(article, turn) {
  const foot = article.querySelector(".answer-foot");
  foot.replaceChildren();
  const a = turn.answer;
  if (a && a.citations.length) {
    const list = el("ol", { class: "sources", "aria-label": t("sources") });
    for (const c of a.citations) {
      const li = el("li", {}, el("bdi", { class: "n", text: `[${c.n}]` }), " ", el("span", { class: "title", text: c.title || c.doc_id }));
      setDir(li.querySelector(".title"), c.title || "");
      list.append(li);
    }
    foot.append(list);
  }
  const actions = el("div", { class: "actions" });
  if (a) {
    actions.append(el("button", { type: "button", class: "copy", text: t("copyAnswer"), onclick: () => copyAnswer(turn) }));
    for (const rating of ["up", "down"]) {
      actions.append(el("button", { type: "button", class: `rate ${rating}`, "aria-label": t(rating === "up" ? "helpful" : "unhelpful"),
                                    "aria-pressed": String(turn.rating === rating), text: rating === "up" ? "👍" : "👎",
                                    onclick: (e) => rate(turn, rating, e.currentTarget) }));
    }
  }
  if (turn.status === "error" && turn.retry) {
    actions.append(el("button", { type: "button", class: "retry", text: t("retry"), onclick: () => retry(turn) }));
  }
  foot.append(actions);
}

function turnElement(turn) {
  const li = el("li", { class: "turn" }, renderQuestion(turn.question), answerShell());
  turn.el = li;
  return li;
}

function renderAll() {
  ui.log.replaceChildren();
  for (const turn of state.turns) {
    ui.log.append(turnElement(turn));
    if (turn.status === "streaming") Object.assign(turn, { status: "error", error: t("interrupted"), retry: true });
    renderFinal(turn.el.querySelector("[data-testid=answer]"), turn);
  }
  updateComposer();
}

// -- auto-scroll, only while the reader is at the bottom ---------------------------------------------------------
// Whether the reader is at the bottom is read on their scrolls only, and the page follows once per frame: no
// layout is forced per token.
const atBottom = () => window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 48;
let following = true, frame = 0, ours = -1;
window.addEventListener("scroll", () => {
  // a scroll event arrives a frame late: the page's own scroll is not the reader leaving the bottom
  if (Math.abs(window.scrollY - ours) > 1) following = atBottom();
}, { passive: true });
function follow(force = false) {
  if (force) following = true;
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    if (!following) return;
    window.scrollTo({ top: document.documentElement.scrollHeight });
    ours = window.scrollY;
  });
}

// -- asking -------------------------------------------------------------------------------------------------------
const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));

async function ask(question, existing = null) {
  if (current) return;
  const turn = existing || { question, status: "streaming" };
  Object.assign(turn, { status: "streaming", answer: null, partial: "", error: "", retry: false, stopped: false, rating: null });
  if (!existing) state.turns.push(turn);
  if (!existing) ui.log.append(turnElement(turn));
  const article = turn.el.querySelector("[data-testid=answer]");
  Object.assign(article.dataset, { status: "streaming", abstained: "false" });
  article.removeAttribute("dir");
  article.setAttribute("aria-busy", "true");
  article.querySelector(".answer-head").replaceChildren();
  article.querySelector(".answer-foot").replaceChildren();
  const body = article.querySelector(".answer-body");
  body.replaceChildren();
  follow(true); // the reader just asked: show the question
  const controller = new AbortController();
  current = { turn, controller };
  updateComposer();
  saveState();

  const citations = new Map();
  const writer = new AnswerBody(body, citations);
  const splitter = new MarkerSplitter();
  let finished = false, painted = null;
  try {
    const response = await api("/chat", {
      method: "POST", signal: controller.signal, headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ message: question, stream: true, ...(state.session_id ? { session_id: state.session_id } : {}) }),
    });
    for await (const { event, data } of readEvents(response.body, controller.signal)) {
      if (event === "token") {
        painted ??= nextFrame();
        writer.write(splitter.push(data.text));
        turn.partial += data.text;
        if (!article.dir) setDir(article, turn.partial); // from its first letters; the final form recounts
      } else if (event === "citations") {
        for (const c of data) citations.set(c.n, c);
        writer.rebind();
      } else if (event === "answer") {
        writer.write(splitter.end());
        await (painted ?? nextFrame()); // the streamed text has been painted before the final form replaces it
        turn.answer = data;
        turn.status = "done";
        if (data.session_id) state.session_id = data.session_id;
        finished = true;
      } else if (event === "error") {
        Object.assign(turn, { status: "error", error: `${t("failedMidway")} ${describe(data.detail)}`, retry: true });
        finished = true;
      }
      follow();
    }
    if (!finished) Object.assign(turn, { status: "error", error: t("broken"), retry: true });
  } catch (e) {
    if (e.name === "AbortError" || controller.signal.aborted) {
      Object.assign(turn, { status: "done", stopped: true });
    } else if (e instanceof ApiError) {
      // a 4xx is the server saying what is wrong with the question: no retry; a lost server or 5xx may pass
      Object.assign(turn, { status: "error", error: e.message, retry: e.status === 0 || e.status >= 500 });
    } else {
      Object.assign(turn, { status: "error", error: `${t("broken")} (${e.message})`, retry: true });
    }
  }
  if (controller.signal.aborted && !finished) Object.assign(turn, { status: "done", stopped: true, error: "" });
  current = null;
  renderFinal(article, turn, writer);
  follow();
  saveState();
  updateComposer();
  announce(turn);
}

function announce(turn) {
  // once, when the answer is complete: the answer region is aria-busy while it streams, never a live region
  const text = turn.status === "error" ? turn.error : (turn.answer?.answer ?? turn.partial).replace(/\s*\[\d+\]/g, "");
  ui.announcer.textContent = `${t("answerReady")} ${text}`;
}

function retry(turn) {
  ask(turn.question, turn);
}

function stop() {
  current?.controller.abort();
}

function newChat() {
  stop();
  state = { session_id: null, turns: [] };
  saveState();
  closePanel();
  renderAll();
  ui.input.focus();
}

// -- copying and feedback ----------------------------------------------------------------------------------------
async function copyText(text) {
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

function answerAsText(turn) {
  const a = turn.answer;
  const lines = [turn.question, "", a.answer];
  if (a.citations.length) {
    lines.push("", t("sources"));
    for (const c of a.citations) lines.push(`[${c.n}] ${c.title || c.doc_id} (${c.id})`, `    «${c.quote}»`);
  }
  return lines.join("\n");
}

async function copyAnswer(turn) {
  await copyText(answerAsText(turn));
  ui.announcer.textContent = t("copied");
}

async function rate(turn, rating, button) {
  const a = turn.answer;
  try {
    await json("/feedback", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ rating, question: turn.question, answer: a.answer, citations: a.citations.map((c) => c.id),
                             session_id: a.session_id || "", mode: a.mode }),
    });
    turn.rating = rating;
    saveState();
    for (const b of button.parentElement.querySelectorAll(".rate")) b.setAttribute("aria-pressed", String(b === button));
    ui.announcer.textContent = t("thanks");
  } catch (e) {
    ui.announcer.textContent = e.message;
    button.parentElement.append(el("p", { class: "error", text: e.message }));
  }
}

// -- citation preview (hover / focus) ----------------------------------------------------------------------------
const citationViews = new Map();

function viewOf(id) {
  if (!citationViews.has(id)) citationViews.set(id, json(`/citations/${encodeURIComponent(id)}?context=0`).catch(() => null));
  return citationViews.get(id);
}

function citationOf(button) {
  return chipCitation.get(button) || null;
}

async function showTooltip(button) {
  const c = citationOf(button);
  if (!c) return;
  const tip = ui.tooltip;
  const title = el("strong", { text: c.title || c.doc_id }), date = el("span", { class: "date" }), quote = el("span", { class: "quote", text: c.quote });
  setDir(title, c.title || ""); setDir(quote, c.quote);
  tip.replaceChildren(title, date, quote);
  tip.hidden = false;
  button.setAttribute("aria-describedby", "tooltip");
  place(tip, button);
  const view = await viewOf(c.id);
  if (view && !tip.hidden) { metaLine(date, [view.date, view.source]); place(tip, button); }
}

function place(tip, anchor) {
  const r = anchor.getBoundingClientRect();
  const width = Math.min(tip.offsetWidth, window.innerWidth - 16);
  const left = Math.max(8, Math.min(r.left + r.width / 2 - width / 2, window.innerWidth - width - 8));
  const below = r.bottom + 8 + tip.offsetHeight < window.innerHeight;
  tip.style.left = `${left}px`;
  tip.style.top = `${below ? r.bottom + 6 : Math.max(8, r.top - tip.offsetHeight - 6)}px`;
}

function hideTooltip() {
  ui.tooltip.hidden = true;
  for (const b of document.querySelectorAll("[aria-describedby=tooltip]")) b.removeAttribute("aria-describedby");
}

// "date · source · id", each in its own <bdi> so a Latin date or id keeps its order inside Arabic
function metaLine(node, items) {
  node.replaceChildren();
  items.filter(Boolean).forEach((item, i) => { if (i) node.append(" · "); node.append(el("bdi", { text: String(item) })); });
}

// -- the source panel: the whole article, the cited span marked from the server's pieces -------------------------
let panelOpener = null;

function openPanel(panel, opener) {
  for (const other of [ui.panel, ui.articles]) if (other !== panel) other.hidden = true;
  panelOpener = opener;
  panel.hidden = false;
  document.body.classList.add("panel-open");
  $("#articles-open").setAttribute("aria-expanded", String(panel === ui.articles));
  panel.focus();
}

function closePanel() {
  const wasOpen = !ui.panel.hidden || !ui.articles.hidden;
  ui.panel.hidden = true;
  ui.articles.hidden = true;
  document.body.classList.remove("panel-open");
  $("#articles-open").setAttribute("aria-expanded", "false");
  if (wasOpen && panelOpener && document.contains(panelOpener)) panelOpener.focus();
  panelOpener = null;
}

async function openCitation(button) {
  const c = citationOf(button);
  if (!c) return;
  // the answer's other citations of the same article are marked too
  const article = button.closest("[data-testid=answer]");
  const sameDoc = [...article.querySelectorAll("[data-testid=citation]")].map(citationOf)
    .filter((x) => x && x.doc_id === c.doc_id).map((x) => x.id);
  const ids = [...new Set([c.id, ...sameDoc])];
  await openDocument(c.doc_id, ids, button);
}

async function openDocument(docId, ids, opener) {
  const query = ids.map((id) => `cite=${encodeURIComponent(id)}`).join("&");
  $("#panel-title").textContent = t("loadingArticle");
  $("#panel-meta").replaceChildren();
  $("#panel-text").replaceChildren();
  $("#panel-cite").hidden = !ids.length;
  $("#panel-cid").textContent = ids[0] || "";
  openPanel(ui.panel, opener);
  let doc;
  try {
    doc = await json(`/documents/${encodeURIComponent(docId)}${query ? `?${query}` : ""}`);
  } catch (e) {
    $("#panel-title").textContent = t("error");
    $("#panel-text").append(el("p", { class: "error", text: e.message }));
    return;
  }
  const focus = ids[0];
  $("#panel-title").textContent = doc.title || doc.id;
  setDir($("#panel-title"), doc.title || "");
  metaLine($("#panel-meta"), [doc.date, doc.source, doc.id]);
  const text = $("#panel-text");
  setDir(text, doc.text);
  let mark = null;
  for (const seg of doc.segments || [{ text: doc.text, citations: [] }]) {
    const others = seg.citations.filter((id) => id !== focus);
    const piece = others.length
      ? el("mark", { class: "other-span", "data-citation-ids": others.join(" "), text: seg.text })
      : document.createTextNode(seg.text);
    if (seg.citations.includes(focus)) {
      if (!mark) { mark = el("mark", { "data-testid": "cited-span", class: "cited-span", "data-citation-id": focus, tabindex: "-1" }); text.append(mark); }
      mark.append(piece);
    } else {
      text.append(piece);
    }
  }
  if (mark) mark.scrollIntoView({ block: "center" });
}

// -- the articles -------------------------------------------------------------------------------------------------
const articlesStatus = (text, error = false) => {
  const s = $("#articles-status");
  s.textContent = text;
  s.classList.toggle("error", error);
};

async function openArticles(opener) {
  openPanel(ui.articles, opener);
  await listArticles();
}

async function listArticles() {
  const list = $("#articles-list");
  try {
    const docs = await json("/documents");
    list.replaceChildren(...docs.map(articleItem));
    if (!docs.length) list.append(el("li", { text: t("noArticles") }));
  } catch (e) {
    articlesStatus(e.message, true);
  }
}

function articleItem(d) {
  const title = el("button", { type: "button", class: "link", text: d.title || d.id, "data-doc-id": d.id,
                               onclick: (e) => openDocument(d.id, [], e.currentTarget) });
  setDir(title, d.title || "");
  const remove = el("button", { type: "button", class: "remove", "data-doc-id": d.id, "aria-label": t("removeLabel", d.title || d.id),
                                text: t("remove"), onclick: (e) => removeArticle(d, e.currentTarget) });
  const meta = el("span", { class: "meta" });
  metaLine(meta, [d.date, t("chars", d.chars)]);
  return el("li", {}, title, meta, remove);
}

async function removeArticle(d, button) {
  if (button.dataset.confirm !== "1") { // a second press confirms
    button.dataset.confirm = "1";
    button.textContent = t("confirmRemove");
    return;
  }
  try {
    const report = await json(`/documents/${encodeURIComponent(d.id)}`, { method: "DELETE" });
    articlesStatus(t("removed", d.title || d.id, report.documents));
    await listArticles();
  } catch (e) {
    articlesStatus(e.message, true);
  }
}

function reportText(r) {
  const parts = [];
  if (r.added.length) parts.push(t("added", r.added.join(", ")));
  if (r.updated.length) parts.push(t("updated", r.updated.join(", ")));
  if (r.unchanged.length) parts.push(t("unchanged", r.unchanged.join(", ")));
  for (const s of r.skipped || []) parts.push(`${t("skipped")} ${s.path}${s.line ? `:${s.line}` : ""}: ${s.reason}`);
  parts.push(t("counts", r.documents, r.chunks));
  return parts.join(" ");
}

async function addArticle(event) {
  event.preventDefault();
  const title = $("#add-title").value.trim(), text = $("#add-text").value;
  const id = $("#add-id").value.trim() || `article-${Date.now().toString(36)}`;
  articlesStatus(t("indexing"));
  try {
    const r = await json("/documents", { method: "POST", headers: { "Content-Type": "application/json" },
                                         body: JSON.stringify({ id, title, text }) });
    articlesStatus(reportText(r));
    event.target.reset();
    await listArticles();
  } catch (e) {
    articlesStatus(e.message, true);
  }
}

async function uploadArticle(event) {
  event.preventDefault();
  const file = $("#upload-file").files[0];
  if (!file) { articlesStatus(t("chooseFile"), true); return; }
  const form = new FormData();
  form.append("file", file);
  articlesStatus(t("indexing"));
  try {
    const r = await json("/documents", { method: "POST", body: form });
    articlesStatus(reportText(r));
    event.target.reset();
    await listArticles();
  } catch (e) {
    articlesStatus(e.message, true);
  }
}

// -- wiring -------------------------------------------------------------------------------------------------------
function submit() {
  if (!ready || current) return;
  const question = ui.input.value;
  ui.input.value = "";
  ask(question); // sent as typed, even empty: the server's message says what is wrong
}

$("#composer").addEventListener("submit", (e) => { e.preventDefault(); submit(); });
ui.input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
});
ui.stop.addEventListener("click", stop);
$("#new-chat").addEventListener("click", newChat);
$("#articles-open").addEventListener("click", (e) => openArticles(e.currentTarget));
$("#lang-toggle").addEventListener("click", () => {
  lang = lang === "ar" ? "en" : "ar";
  localStorage.setItem(LANG_KEY, lang);
  applyLanguage();
  if (!current) renderAll(); // a streaming answer keeps its element; it is re-labelled when it ends
});
$("#copy-cid").addEventListener("click", async () => { await copyText($("#panel-cid").textContent); ui.announcer.textContent = t("copied"); });
$("#add-form").addEventListener("submit", addArticle);
$("#upload-form").addEventListener("submit", uploadArticle);
for (const b of document.querySelectorAll("[data-close]")) b.addEventListener("click", closePanel);

ui.log.addEventListener("click", (e) => {
  const chip = e.target.closest("[data-testid=citation]");
  if (chip) { hideTooltip(); openCitation(chip); }
});
ui.log.addEventListener("mouseover", (e) => { const chip = e.target.closest("[data-testid=citation]"); if (chip) showTooltip(chip); });
ui.log.addEventListener("mouseout", (e) => { if (e.target.closest("[data-testid=citation]")) hideTooltip(); });
ui.log.addEventListener("focusin", (e) => { const chip = e.target.closest("[data-testid=citation]"); if (chip) showTooltip(chip); });
ui.log.addEventListener("focusout", (e) => { if (e.target.closest("[data-testid=citation]")) hideTooltip(); });
document.addEventListener("keydown", (e) => {
  if (e.key !== "Escape") return;
  if (!ui.tooltip.hidden) hideTooltip();
  if (!ui.panel.hidden || !ui.articles.hidden) { e.preventDefault(); closePanel(); }
});

applyLanguage();
renderAll();
checkHealth().then((ok) => { if (!ok) watchHealth(); });
