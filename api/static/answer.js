// An answer as the reader sees it: paragraphs with their own direction, chips in <bdi> bound to the server's
// citations, the head (mode, abstention, notice, error) and the foot (sources, copy, feedback, retry).
import { splitMarkers } from "./stream.js";
import { el, setDir, t } from "./core.js";

export const handlers = { copy: () => {}, rate: () => {}, retry: () => {} }; // app.js: what the foot's buttons do

export const chipCitation = new WeakMap(); // chip -> the server's citation it stands for

// Writes pieces ({text} / {marker}) into a container: paragraphs on blank lines, each with its own direction
// from its own text; each marker a chip in its own <bdi>, bound to the server's citation with that number.
export class AnswerBody {
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

export function answerShell() {
  return el("article", { class: "answer", "data-testid": "answer", "data-status": "streaming", "data-abstained": "false",
                         "aria-busy": "true", "aria-label": t("answer") },
    el("div", { class: "answer-head" }), el("div", { class: "answer-body" }), el("div", { class: "answer-foot" }));
}

// The final form of an answer, from the answer object the server sent last (or a stored turn). What was
// streamed stays when it already is that form: the same text, every chip bound to the final citation.
export function renderFinal(article, turn, streamed = null) {
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
  if (a?.searched_as) {  // an English question: the Arabic wording its words were matched by, labelled in the page's
    // language and direction (the block around it is RTL when it quotes Arabic)
    foot.append(el("p", { class: "searched", dir: document.documentElement.dir || "auto" }, `${t("searchedAs")} `,
                   el("bdi", { lang: "ar", dir: "rtl", text: a.searched_as })));
  }
  const actions = el("div", { class: "actions" });
  if (a) {
    actions.append(el("button", { type: "button", class: "copy", text: t("copyAnswer"), onclick: () => handlers.copy(turn) }));
    for (const rating of ["up", "down"]) {
      actions.append(el("button", { type: "button", class: `rate ${rating}`, "aria-label": t(rating === "up" ? "helpful" : "unhelpful"),
                                    "aria-pressed": String(turn.rating === rating), text: rating === "up" ? "👍" : "👎",
                                    onclick: (e) => handlers.rate(turn, rating, e.currentTarget) }));
    }
  }
  if (turn.status === "error" && turn.retry) {
    actions.append(el("button", { type: "button", class: "retry", text: t("retry"), onclick: () => handlers.retry(turn) }));
  }
  foot.append(actions);
}

export function turnElement(turn) {
  const li = el("li", { class: "turn" }, renderQuestion(turn.question), answerShell());
  turn.el = li;
  return li;
}
