// The side panels: the citation preview, the source panel (the whole article, the cited span marked from the
// server's pieces) and the articles (list, open, add, upload, remove).
import { $, el, json, metaLine, setDir, t, ui } from "./core.js";
import { chipCitation } from "./answer.js";

const citationViews = new Map();

function viewOf(id) {
  if (!citationViews.has(id)) citationViews.set(id, json(`/citations/${encodeURIComponent(id)}?context=0`).catch(() => null));
  return citationViews.get(id);
}

function citationOf(button) {
  return chipCitation.get(button) || null;
}

export async function showTooltip(button) {
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

export function hideTooltip() {
  ui.tooltip.hidden = true;
  for (const b of document.querySelectorAll("[aria-describedby=tooltip]")) b.removeAttribute("aria-describedby");
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

export function closePanel() {
  const wasOpen = !ui.panel.hidden || !ui.articles.hidden;
  ui.panel.hidden = true;
  ui.articles.hidden = true;
  document.body.classList.remove("panel-open");
  $("#articles-open").setAttribute("aria-expanded", "false");
  if (wasOpen && panelOpener && document.contains(panelOpener)) panelOpener.focus();
  panelOpener = null;
}

export async function openCitation(button) {
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

export async function openArticles(opener) {
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
    await listArticles(); // the list first: what the status announces is then on screen
    articlesStatus(t("removed", d.title || d.id, report.documents));
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

export async function addArticle(event) {
  event.preventDefault();
  const title = $("#add-title").value.trim(), text = $("#add-text").value;
  const id = $("#add-id").value.trim() || `article-${Date.now().toString(36)}`;
  articlesStatus(t("indexing"));
  try {
    const r = await json("/documents", { method: "POST", headers: { "Content-Type": "application/json" },
                                         body: JSON.stringify({ id, title, text }) });
    event.target.reset();
    await listArticles(); // the list first, so a press on it after the status shows lands on the new list
    articlesStatus(reportText(r));
  } catch (e) {
    articlesStatus(e.message, true);
  }
}

export async function uploadArticle(event) {
  event.preventDefault();
  const file = $("#upload-file").files[0];
  if (!file) { articlesStatus(t("chooseFile"), true); return; }
  const form = new FormData();
  form.append("file", file);
  articlesStatus(t("indexing"));
  try {
    const r = await json("/documents", { method: "POST", body: form });
    event.target.reset();
    await listArticles(); // the list first, so a press on it after the status shows lands on the new list
    articlesStatus(reportText(r));
  } catch (e) {
    articlesStatus(e.message, true);
  }
}

