// docinbox review desk: plain JavaScript, no build step, no framework.
// Everything a document says is put on the page as text (textContent), never as HTML.
"use strict";

const state = { csrf: null, status: null, view: null, dirty: false, timer: null };
const STEPS = ["queued", "submitting", "submitted", "received", "done"];

// --- small helpers ---------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function when(seconds) {
  if (!seconds) return "";
  const d = new Date(seconds * 1000);
  return d.toLocaleString();
}

function toast(text, bad) {
  const t = document.getElementById("toast");
  t.textContent = text;
  t.className = bad ? "show bad" : "show";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.className = ""; }, 4000);
}

async function api(path, options) {
  const opts = Object.assign({ headers: {}, credentials: "same-origin" }, options || {});
  if (opts.method && opts.method !== "GET") {
    opts.headers["X-CSRF-Token"] = state.csrf;
    if (opts.body !== undefined) opts.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, opts);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function params() {
  const hash = location.hash.slice(1) || "now";
  const [name, query] = hash.split("?");
  return { name, query: new URLSearchParams(query || "") };
}

function stateBadge(s) {
  return el("span", { class: `badge state-${s}`, text: s });
}

function reviewBadge(doc) {
  const approval = doc.approval || {};
  const review = doc.review || {};
  let s = review.state || "";
  if (["approving", "approved", "failed"].includes(approval.state)) s = approval.state;
  if (!s || s === "none") return "";
  return el("span", { class: `badge review-${s}`, text: s === "pending" ? "to review" : s });
}

function progressBar(doc) {
  const p = doc.progress || {};
  if (p.step === null || p.step === undefined) return "";
  const label = p.pages ? `${p.pages_done}/${p.pages} pages` : STEPS[p.step];
  const budget = (state.status || {}).budget;
  const tries = doc.attempts > 1 && budget ? ` · attempt ${doc.attempts} of ${budget.max_attempts}` : "";
  return el("span", { class: "progress", title: label },
    el("progress", { max: p.steps, value: p.step + 1 }), el("span", { class: "label", text: label + tries }),
    doc.error ? el("div", { class: "quiet small", text: `retrying: ${doc.message || doc.error}` }) : "");
}

// --- the live status ---------------------------------------------------------------------------

function connect() {
  const live = document.getElementById("live");
  const source = new EventSource("/api/events");
  source.addEventListener("status", (event) => {
    live.className = "live on";
    state.status = JSON.parse(event.data);
    counters();
    const name = params().name;
    if (["now", "documents", "review", "failed"].includes(name)) later(render, 150);
    else if (name === "doc" && !state.dirty) later(render, 300);
  });
  source.onerror = () => { live.className = "live off"; };
}

function later(fn, ms) {
  clearTimeout(state.timer);
  state.timer = setTimeout(fn, ms);
}

function counters() {
  const s = state.status;
  if (!s) return;
  document.getElementById("count-review").textContent = s.under_review || "";
  document.getElementById("count-failed").textContent = s.failed || "";
}

// --- views -------------------------------------------------------------------------------------

let renders = 0;

async function render() {
  // A view is built with awaits: a render started for an older address (a live update of
  // the list, say) must not replace the view of a newer one when it finishes late.
  const mine = ++renders;
  clearTimeout(state.timer);
  const { name, query } = params();
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("current", a.id === `nav-${name}`);
  }
  const view = document.getElementById("view");
  try {
    let node;
    if (name === "now") node = await nowView();
    else if (name === "documents") node = await listView(query, "Documents");
    else if (name === "review") node = await listView(new URLSearchParams("review=pending&state=done"), "To review");
    else if (name === "failed") node = await failedView();
    else if (name === "doc") node = await docView(query.get("id"));
    else if (name === "export") node = exportView(query);
    else node = el("p", { text: "Nothing here." });
    if (mine !== renders) return;
    view.replaceChildren(node);
    view.dataset.view = name;
  } catch (err) {
    if (mine !== renders) return;
    view.replaceChildren(el("p", { class: "error", text: `Could not load this view: ${err.message}` }));
  }
}

async function nowView() {
  const s = state.status || (await api("/api/status"));
  const counts = s.counts || {};
  const cards = ["queued", "submitting", "submitted", "received", "done", "failed"].map((k) =>
    el("div", { class: `card state-${k}` }, el("b", { text: counts[k] || 0 }), el("span", { text: k })));
  const services = (s.services || []).length
    ? el("ul", { class: "services" }, s.services.map((svc) =>
        el("li", { class: `svc ${svc.condition}` }, el("b", { text: svc.name }), ` ${svc.condition}`,
          svc.reason ? ` — ${svc.reason}` : "", svc.until ? ` (until ${when(svc.until)})` : "")))
    : el("p", { class: "quiet", text: "Every service is answering." });
  const paused = s.paused
    ? el("p", { class: "paused", text: s.paused_until ? `Paused until ${when(s.paused_until)}.` : "Paused until resumed." })
    : "";
  const active = await api("/api/documents?limit=50");
  const working = active.documents.filter((d) => !["done", "failed"].includes(d.state));
  const recent = active.documents.filter((d) => ["done", "failed"].includes(d.state)).slice(0, 10);
  return el("section", { class: "now" },
    el("h2", { text: "Now" }),
    s.activity && s.pending ? el("p", { class: "activity", text: s.activity }) : "",
    paused,
    el("div", { class: "cards" }, cards),
    el("h3", { text: "Services" }), services,
    el("h3", { text: `In progress (${working.length})` }),
    working.length ? docTable(working) : el("p", { class: "quiet", text: "Nothing in flight: drop documents into the inbox." }),
    el("h3", { text: "Recently finished" }),
    recent.length ? docTable(recent) : el("p", { class: "quiet", text: "Nothing yet." }));
}

function docTable(docs, extra) {
  const rows = docs.map((d) => el("tr", { class: "doc", "data-id": d.id, "data-state": d.state },
    el("td", {}, el("a", { class: "doc-link", href: `#doc?id=${d.id}`, text: d.name }),
      d.folder ? el("div", { class: "quiet small", text: d.folder }) : "",
      d.snippet ? snippet(d.snippet) : ""),
    el("td", {}, stateBadge(d.state), " ", reviewBadge(d)),
    el("td", { text: d.service || "" }),
    el("td", {}, ["done", "failed"].includes(d.state) ? when(d.finished_at || d.updated_at) : progressBar(d)),
    extra ? el("td", {}, extra(d)) : null));
  return el("table", { class: "docs" },
    el("thead", {}, el("tr", {}, el("th", { text: "Document" }), el("th", { text: "State" }),
      el("th", { text: "Service" }), el("th", { text: "When / progress" }), extra ? el("th", {}) : null)),
    el("tbody", {}, rows));
}

function snippet(text) {
  // The store marks matches with \u0002 … \u0003; everything else stays text.
  const node = el("div", { class: "snippet" });
  const parts = text.split(/([\u0002\u0003])/);
  let inMark = false;
  for (const part of parts) {
    if (part === "\u0002") inMark = true;
    else if (part === "\u0003") inMark = false;
    else if (part) node.append(inMark ? el("mark", { text: part }) : document.createTextNode(part));
  }
  return node;
}

async function listView(query, title) {
  const q = query.get("q") || "";
  const shown = new URLSearchParams(query);
  shown.set("limit", "300");
  const data = await api(`/api/documents?${shown}`);
  const form = el("form", { class: "filters", onsubmit: (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const next = new URLSearchParams();
    for (const [k, v] of f.entries()) if (v) next.set(k, v);
    location.hash = `documents?${next}`;
  } },
    el("input", { name: "q", value: q, placeholder: "words", "aria-label": "Words" }),
    el("input", { name: "folder", value: query.get("folder") || "", placeholder: "folder glob, e.g. facturas/**", "aria-label": "Folder" }),
    el("input", { name: "service", value: query.get("service") || "", placeholder: "service", "aria-label": "Service" }),
    el("input", { name: "since", type: "date", value: query.get("since") || "", "aria-label": "Since" }),
    selectOf("state", ["", "queued", "submitting", "submitted", "received", "done", "failing", "failed"], query.get("state") || ""),
    el("button", { type: "submit", text: "Filter" }));
  const heading = q ? `${title}: “${q}”` : title;
  return el("section", {},
    el("h2", { text: `${heading} (${data.total})` }),
    title === "Documents" ? form : "",
    data.documents.length ? docTable(data.documents) : el("p", { class: "quiet empty", text: "No document matches." }));
}

function selectOf(name, options, value) {
  return el("select", { name, "aria-label": name },
    options.map((o) => el("option", { value: o, selected: o === value, text: o || `any ${name}` })));
}

async function failedView() {
  const data = await api("/api/documents?state=failed&limit=500");
  const shown = data.documents.filter((d) => !d.dismissed);
  const actions = (d) => el("span", { class: "actions" },
    el("button", { class: "retry", onclick: () => act(d.id, "retry", `${d.name}: back in line`) , text: "Retry" }),
    el("button", { class: "dismiss secondary", onclick: () => act(d.id, "dismiss", `${d.name}: dismissed (its files stay in failed/)`), text: "Dismiss" }));
  const items = shown.map((d) => el("article", { class: "failure", "data-id": d.id },
    el("h3", {}, el("a", { href: `#doc?id=${d.id}`, text: d.name }), " ", el("code", { text: d.error || "" })),
    el("p", { text: d.message || "" }),
    d.hint ? el("p", { class: "hint", text: d.hint }) : "",
    el("p", { class: "quiet small", text: `${d.location || ""} · ${d.attempts} attempt(s) · ${when(d.updated_at)}` }),
    actions(d)));
  return el("section", {}, el("h2", { text: `Failed (${shown.length})` }),
    items.length ? items : el("p", { class: "quiet empty", text: "No failed document. 🎉" }));
}

async function act(id, what, said) {
  try {
    await api(`/api/documents/${id}/${what}`, { method: "POST" });
    toast(said);
    render();
  } catch (err) {
    toast(err.message, true);
  }
}

// --- one document ------------------------------------------------------------------------------

async function docView(id) {
  const d = await api(`/api/documents/${encodeURIComponent(id)}`);
  state.dirty = false;
  const pending = new Set(((d.review || {}).fields) || []);
  const corrections = {};
  for (const c of ((d.approval || {}).corrections) || []) corrections[c.label] = c.text;
  const head = el("div", { class: "doc-head" },
    el("h2", { text: d.name }), stateBadge(d.state), " ", reviewBadge(d),
    el("p", { class: "quiet", text: `${d.path} · ${d.type || "?"} · ${d.pages || "?"} page(s) · ${d.bytes} bytes` }));
  const left = el("div", { class: "page-col" }, pagesOf(d));
  const right = el("div", { class: "fields-col" },
    fieldsForm(d, pending, corrections), tablesOf(d.tables || []), provenance(d), historyOf(d.history || []));
  const md = d.markdown ? el("section", { class: "markdown" }, el("h3", { text: "document.md" }), markdown(d.markdown)) : "";
  return el("section", { class: "doc-view", "data-id": d.id }, head,
    d.state === "failed" ? el("p", { class: "error", text: `${d.error}: ${d.message || ""}` }) : "",
    el("div", { class: "split" }, left, right), md);
}

function pagesOf(d) {
  if (!d.page_images) {
    return el("p", { class: "quiet", text: d.state === "done" || d.state === "failed"
      ? "No picture of the original (it was deleted, or its kind cannot be drawn)."
      : "The original is still being processed." });
  }
  const count = Math.max(1, d.pages || 1);
  const img = el("img", { class: "page", alt: `page 1 of ${d.name}`, src: `/api/documents/${d.id}/pages/1.png` });
  const nav = count > 1
    ? el("div", { class: "pager" }, Array.from({ length: Math.min(count, 200) }, (_, i) =>
        el("button", { class: "secondary", text: String(i + 1), onclick: () => {
          img.src = `/api/documents/${d.id}/pages/${i + 1}.png`;
          img.alt = `page ${i + 1} of ${d.name}`;
        } })))
    : "";
  return el("div", {}, nav, img);
}

function fieldsForm(d, pending, corrections) {
  const fields = d.fields || [];
  const approval = d.approval || {};
  const reviewable = d.state === "done" && d.result;
  const labels = fields.map((f) => f.label);
  for (const label of pending) if (!labels.includes(label)) fields.push({ label, text: "", score: null, missing: true });
  const rows = fields.map((f) => el("tr", { class: pending.has(f.label) ? "needs-review" : "" },
    el("th", { text: f.label || "?" }),
    el("td", {}, el("input", {
      class: "field-input", "data-label": f.label, value: f.label in corrections ? corrections[f.label] : (f.text || ""),
      "data-original": f.text || "", disabled: !reviewable || approval.state === "approving",
      oninput: () => { state.dirty = true; },
    }), f.original !== undefined && f.corrected ? el("div", { class: "quiet small", text: `model read: ${f.original ?? "(nothing)"}` }) : ""),
    el("td", { class: "score", text: f.score === null || f.score === undefined ? (f.missing ? "not found" : "") : Number(f.score).toFixed(2) })));
  const status = el("p", { id: "approval-state", class: `approval ${approval.state || ""}` }, approvalText(d));
  const approve = el("button", { id: "approve", disabled: !reviewable || approval.state === "approving",
    text: "Approve", onclick: () => approveDoc(d, approve) });
  const save = el("button", { id: "save", class: "secondary", disabled: !reviewable || approval.state === "approving",
    text: "Keep corrections", onclick: () => saveCorrections(d).then(() => toast("Corrections kept")) });
  return el("section", { class: "fields" }, el("h3", { text: "Fields" }),
    fields.length ? el("table", { class: "fields" }, el("tbody", {}, rows)) : el("p", { class: "quiet", text: "No fields." }),
    reviewable ? el("div", { class: "actions" }, approve, save) : "", status);
}

function approvalText(d) {
  const a = d.approval || {};
  const r = d.review || {};
  if (a.state === "approving") return a.error ? `Sending the approval… (retrying: ${a.message})` : "Sending the approval…";
  if (a.state === "failed") return `The service refused the approval: ${a.message}`;
  if (r.state === "approved") {
    const where = r.sent ? `sent to ${d.service}` : (r.note || "corrected locally only");
    return `Approved by ${r.by} on ${when(r.at)} — ${where}.`;
  }
  if (r.state === "pending") return `Needs review: ${r.fields.join(", ")}.`;
  if (a.state === "editing") return "Corrections kept; not approved yet.";
  return "";
}

function changedFields(d) {
  const out = [];
  for (const input of document.querySelectorAll("input.field-input")) {
    const label = input.dataset.label;
    const before = (d.fields.find((f) => f.label === label) || {}).text || "";
    if (input.value !== before) out.push({ label, text: input.value });
  }
  return out;
}

async function saveCorrections(d) {
  const fields = changedFields(d);
  if (fields.length) await api(`/api/documents/${d.id}/fields`, { method: "PATCH", body: JSON.stringify({ fields }) });
  state.dirty = false;
}

async function approveDoc(d, button) {
  button.disabled = true;
  try {
    await saveCorrections(d);
    await api(`/api/documents/${d.id}/approve`, { method: "POST" });
    toast("Approval sent");
  } catch (err) {
    toast(err.message, true);
  }
  render();
}

function tablesOf(tables) {
  return tables.map((t) => el("section", { class: "table" },
    el("h3", { text: `${t.label || "Table"}${t.page !== null && t.page !== undefined ? ` (page ${t.page + 1})` : ""}` }),
    el("table", { class: "grid" },
      el("thead", {}, el("tr", {}, (t.columns || []).map((c) => el("th", { text: c })))),
      el("tbody", {}, (t.rows || []).map((r) => el("tr", {}, r.map((v) => el("td", { text: v }))))))));
}

function provenance(d) {
  const route = d.route;
  const because = route ? route.because.join("; ") : "no [[routes]] entry takes it to this service now";
  const items = [
    ["From", d.path],
    ["Original now", d.location || "—"],
    ["Service", d.service || "—"],
    ["Route", route ? `routes[${route.index}] → ${route.service}: ${because}` : because],
    ["Result", d.result || "—"],
  ];
  for (const [k, v] of Object.entries(d.remote || {})) items.push([k, typeof v === "object" ? JSON.stringify(v) : String(v)]);
  return el("section", { class: "provenance" }, el("h3", { text: "Where it came from" }),
    el("dl", {}, items.map(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])));
}

function historyOf(history) {
  return el("section", { class: "history" }, el("h3", { text: "History" }),
    el("ol", {}, history.map((h) => el("li", {}, el("time", { text: when(h.at) }), " ",
      `${h.from || "—"} → ${h.to}`, h.note ? el("span", { class: "quiet", text: ` (${h.note})` }) : ""))));
}

// --- Markdown, rendered as text nodes only ------------------------------------------------------

function inline(text) {
  const out = [];
  const re = /(\*\*[^*]+\*\*|`[^`]+`|\*[^*]+\*)/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    const t = m[0];
    if (t.startsWith("**")) out.push(el("strong", { text: t.slice(2, -2) }));
    else if (t.startsWith("`")) out.push(el("code", { text: t.slice(1, -1) }));
    else out.push(el("em", { text: t.slice(1, -1) }));
    last = m.index + t.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function cells(line) {
  return line.trim().replace(/^\||\|$/g, "").split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, "|"));
}

function markdown(text) {
  const root = el("div", { class: "md" });
  const lines = text.split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (/^```/.test(line)) {
      const code = [];
      for (i++; i < lines.length && !/^```/.test(lines[i]); i++) code.push(lines[i]);
      root.append(el("pre", {}, el("code", { text: code.join("\n") })));
      i++;
    } else if (/^#{1,6}\s/.test(line)) {
      const level = line.match(/^#+/)[0].length;
      root.append(el(`h${Math.min(6, level + 2)}`, {}, inline(line.replace(/^#+\s*/, ""))));
      i++;
    } else if (/^\s*\|/.test(line) && i + 1 < lines.length && /^\s*\|?\s*:?-{3,}/.test(lines[i + 1])) {
      const head = cells(line);
      const body = [];
      for (i += 2; i < lines.length && /^\s*\|/.test(lines[i]); i++) body.push(cells(lines[i]));
      root.append(el("table", { class: "grid" }, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, inline(h))))),
        el("tbody", {}, body.map((r) => el("tr", {}, r.map((c) => el("td", {}, inline(c))))))));
    } else if (/^\s*([-*]|\d+\.)\s/.test(line)) {
      const ordered = /^\s*\d+\./.test(line);
      const list = el(ordered ? "ol" : "ul");
      for (; i < lines.length && /^\s*([-*]|\d+\.)\s/.test(lines[i]); i++) {
        list.append(el("li", {}, inline(lines[i].replace(/^\s*([-*]|\d+\.)\s/, ""))));
      }
      root.append(list);
    } else if (line.trim() === "") {
      i++;
    } else {
      const para = [];
      for (; i < lines.length && lines[i].trim() !== "" && !/^(#|```|\s*\||\s*([-*]|\d+\.)\s)/.test(lines[i]); i++) para.push(lines[i]);
      if (!para.length) { para.push(lines[i]); i++; }
      root.append(el("p", {}, inline(para.join(" "))));
    }
  }
  return root;
}

// --- export ------------------------------------------------------------------------------------

function exportView(query) {
  const link = el("a", { id: "export-download", class: "button", download: "", text: "Download" });
  const tables = el("a", { id: "export-tables", class: "button secondary", download: "", text: "Tables (CSV)" });
  const form = el("form", { class: "filters" },
    selectOf("format", ["csv", "xlsx", "jsonl"], query.get("format") || "xlsx"),
    el("input", { name: "folder", placeholder: "folder glob", value: query.get("folder") || "", "aria-label": "Folder" }),
    el("input", { name: "since", type: "date", value: query.get("since") || "", "aria-label": "Since" }),
    selectOf("state", ["done", "approved"], query.get("state") || "done"));
  const update = () => {
    const f = new FormData(form);
    const p = new URLSearchParams();
    for (const [k, v] of f.entries()) if (v) p.set(k, v);
    link.href = `/api/export?${p}`;
    link.textContent = `Download ${p.get("format")}`;
    const t = new URLSearchParams(p);
    t.set("format", "csv");
    t.set("part", "tables");
    tables.href = `/api/export?${t}`;
  };
  form.addEventListener("change", update);
  form.addEventListener("input", update);
  update();
  return el("section", {}, el("h2", { text: "Export" }),
    el("p", { class: "quiet", text: "One row per document, one column per field; tables on a second sheet (xlsx) or file (csv). The same as `docinbox export`." }),
    form, el("p", { class: "actions" }, link, " ", tables));
}

// --- start -------------------------------------------------------------------------------------

async function start() {
  const session = await api("/api/session");
  state.csrf = session.csrf;
  document.getElementById("search").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = document.getElementById("search-q").value.trim();
    location.hash = q ? `documents?${new URLSearchParams({ q })}` : "documents";
  });
  window.addEventListener("hashchange", render);
  connect();
  render();
}

start().catch((err) => {
  document.getElementById("view").textContent = `The desk could not start: ${err.message}`;
});
