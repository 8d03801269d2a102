// Reading the /chat event stream and cutting its text into words and citation markers.
// Pure functions, no DOM: app.js renders what these yield.

// Server-Sent Events from a fetch() body. One streaming TextDecoder for the whole body, so a character whose
// UTF-8 bytes are split across network chunks is decoded whole, and a line buffer across chunks, so an event
// split anywhere (even between "\r" and "\n") is parsed once it is complete. Yields {event, data} with data
// JSON-decoded; comment lines (the server's pings) are skipped.
export async function* readEvents(body, signal) {
  const reader = body.getReader();
  const decoder = new TextDecoder("utf-8");
  let buffer = "", ended = false, event = "message", data = [];
  const onAbort = () => reader.cancel().catch(() => {});
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    while (!ended) {
      const { value, done } = await reader.read();
      ended = done;
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      for (;;) {
        const cut = lineEnd(buffer, ended);
        if (cut === null) break;
        const [line, rest] = cut;
        buffer = rest;
        if (line === "") {
          if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
          event = "message"; data = [];
        } else if (line.startsWith("event:")) {
          event = line.slice(6).trim();
        } else if (line.startsWith("data:")) {
          data.push(line.slice(5).replace(/^ /, ""));
        } // ":" comments, "id:" and "retry:" are not used
      }
    }
    if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

// [line, rest] for the first complete line of `buffer`, or null. A "\r" at the very end may be the first half
// of "\r\n": wait for the next chunk unless the stream has ended.
function lineEnd(buffer, ended) {
  for (let i = 0; i < buffer.length; i++) {
    const c = buffer[i];
    if (c === "\n") return [buffer.slice(0, i), buffer.slice(i + 1)];
    if (c === "\r") {
      if (i + 1 === buffer.length && !ended) return null;
      return [buffer.slice(0, i), buffer.slice(buffer[i + 1] === "\n" ? i + 2 : i + 1)];
    }
  }
  return null;
}

// Digits a marker may be written in: ASCII, Arabic-Indic (٠-٩) and Extended Arabic-Indic (۰-۹).
function digitValue(ch) {
  const c = ch.codePointAt(0);
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x660 && c <= 0x669) return c - 0x660;
  if (c >= 0x6f0 && c <= 0x6f9) return c - 0x6f0;
  return -1;
}

// Cuts streamed text into pieces: {text} and {marker: n}. A marker is "[" digits "]"; its start is held back
// until it closes or turns out not to be one, so "[" in one chunk and "1]" in the next is still one marker.
// This is a scanner over the stream, not a regex over the rendered text: what it yields is rendered as nodes,
// text never becomes HTML.
export class MarkerSplitter {
  constructor() { this.held = ""; }

  push(text) {
    const out = [];
    let plain = "";
    const flush = () => { if (plain) { out.push({ text: plain }); plain = ""; } };
    for (const ch of text) { // by code point
      if (this.held) {
        if (digitValue(ch) >= 0 && this.held.length < 5) { this.held += ch; continue; }
        if (ch === "]" && this.held.length > 1) {
          flush();
          let n = 0;
          for (const d of this.held.slice(1)) n = n * 10 + digitValue(d);
          out.push({ marker: n });
          this.held = "";
          continue;
        }
        plain += this.held;
        this.held = "";
      }
      if (ch === "[") this.held = "[";
      else plain += ch;
    }
    flush();
    return out;
  }

  end() {
    const rest = this.held;
    this.held = "";
    return rest ? [{ text: rest }] : [];
  }
}

// All pieces of a whole text (the final answer, a stored turn).
export function splitMarkers(text) {
  const splitter = new MarkerSplitter();
  return [...splitter.push(text), ...splitter.end()];
}

const RTL = /[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]/gu;
const LTR = /[A-Za-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff]/gu;

// A block's direction from its own letters (markers are never part of the text given here). Counting, not the
// first strong character: an Arabic sentence that starts with "NATO" or a number is still Arabic. null when the
// text has no letters (then the block inherits the page's direction).
export function directionOf(text) {
  const rtl = (text.match(RTL) || []).length, ltr = (text.match(LTR) || []).length;
  if (!rtl && !ltr) return null;
  return rtl >= ltr ? "rtl" : "ltr";
}
