// The chat page: asks /chat with stream=true, renders the answer as it streams, opens each citation's exact span
// from the server (/documents/{id}?cite=...), lists and changes the articles, stores feedback.
// No framework, no build step: text is only ever inserted as text nodes.
import { MarkerSplitter, readEvents } from "./stream.js";
import { $, ApiError, STATE_KEY, api, applyLanguage, checkHealth, copyText, describe, el, hooks, isReady, json, lang,
         setDir, setLang, t, ui, watchHealth } from "./core.js";
import { AnswerBody, handlers, renderFinal, turnElement } from "./answer.js";
import { addArticle, closePanel, hideTooltip, openArticles, openCitation, showTooltip, uploadArticle } from "./panels.js";

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
  const ready = isReady();
  ui.send.disabled = !ready;
  ui.input.setAttribute("aria-disabled", String(!ready));
  ui.input.readOnly = !ready;
  ui.hint.hidden = state.turns.length > 0;
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

// -- wiring -------------------------------------------------------------------------------------------------------
function submit() {
  if (!isReady() || current) return;
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
  setLang(lang === "ar" ? "en" : "ar");
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

hooks.readyChanged = updateComposer;
Object.assign(handlers, { copy: copyAnswer, rate, retry });
applyLanguage();
renderAll();
checkHealth().then((ok) => { if (!ok) watchHealth(); });
