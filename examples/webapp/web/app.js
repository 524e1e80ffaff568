// keyward clinic: the frontend. Plain JavaScript, no library, no build
// step. Every value from the server is put into the page as text
// (textContent), never as HTML.
"use strict";

const state = { session: null, page: 1, searching: false, events: null };

// --- helpers ---------------------------------------------------------------

function $(sel) { return document.querySelector(sel); }

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}

class APIError extends Error {
  constructor(status, body) { super(body.error || ("HTTP " + status)); this.status = status; this.body = body; }
}

// api calls the JSON API. State-changing requests carry the session's
// CSRF token; values travel in bodies, never in URLs.
async function api(method, path, body) {
  const opts = { method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
  if (method !== "GET") {
    opts.headers["Content-Type"] = "application/json";
    if (state.session) opts.headers["X-CSRF-Token"] = state.session.csrf;
    opts.body = JSON.stringify(body || {});
  }
  const res = await fetch(path, opts);
  if (res.status === 204) return null;
  const data = await res.json().catch(() => ({}));
  if (res.status === 401 && path !== "/api/signin") { showSignIn(); }
  if (!res.ok) throw new APIError(res.status, data);
  return data;
}

let flashTimer;
function flash(msg, isError) {
  const f = $("#flash");
  f.textContent = msg;
  f.className = isError ? "error" : "";
  f.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { f.hidden = true; }, 5000);
}

function fmtTime(s) {
  const d = new Date(s);
  return d.toLocaleString([], { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function fmtAge(sec) {
  if (sec < 60) return sec + " s";
  if (sec < 3600) return Math.floor(sec / 60) + " min";
  if (sec < 86400) return Math.floor(sec / 3600) + " h";
  return Math.floor(sec / 86400) + " d";
}

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

function guard(fn) {
  return async (...args) => {
    try { await fn(...args); } catch (e) { flash(e.message, true); }
  };
}

// --- session and navigation ------------------------------------------------

async function showSignIn() {
  state.session = null;
  closeEvents();
  $("#nav").hidden = true;
  $("#whoami").hidden = true;
  $("#user-name").textContent = "";
  clear($("#records tbody"));
  clear($("#stored tbody"));
  const box = $("#users");
  clear(box);
  showPage("signin");
  const users = await api("GET", "/api/users");
  clear(box);
  for (const u of users) {
    box.append(el("div", { class: "card" },
      el("h2", {}, u.name),
      el("div", {}, el("span", { class: "state" }, u.roles.join(", "))),
      el("p", { class: "hint" }, u.description),
      el("button", { id: "signin-" + u.id, onclick: guard(() => signIn(u.id)) }, "Sign in as " + u.name)));
  }
}

async function signIn(id) {
  state.session = await api("POST", "/api/signin", { user: id });
  if (location.hash !== "#records") location.hash = "#records"; // the hashchange routes
  else await route();
}

async function loadSession() {
  try {
    state.session = await api("GET", "/api/session");
    return true;
  } catch (e) {
    if (e.status === 401) return false;
    throw e;
  }
}

function showPage(name) {
  for (const p of document.querySelectorAll(".page")) p.hidden = p.id !== "page-" + name;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === name);
}

async function route() {
  if (!state.session && !(await loadSession())) { await showSignIn(); return; }
  const s = state.session;
  $("#nav").hidden = false;
  $("#whoami").hidden = false;
  $("#user-name").textContent = s.user.name;
  $("#user-roles").textContent = s.user.roles.join(", ");
  for (const a of document.querySelectorAll("nav a")) a.hidden = !s.pages.includes(a.dataset.page);
  const [page, arg] = (location.hash.slice(1) || "records").split("/");
  const name = s.pages.includes(page) ? page : "records";
  if (name !== "keys") closeEvents();
  showPage(name);
  const load = { records: loadRecords, stored: () => loadStored(arg), keys: loadKeys, audit: loadAudit, monitoring: loadMonitoring }[name];
  await load();
}

// --- records -----------------------------------------------------------------

function maskedCell(field) {
  return el("td", { class: "masked", dataset: { field } }, "••••••");
}

function renderRecords(data, title) {
  $("#list-title").textContent = title;
  const tb = $("#records tbody");
  clear(tb);
  for (const r of data.records) {
    const tr = el("tr", { dataset: { id: r.id } });
    tr.append(el("td", { class: "name" }, r.name));
    tr.append(r.email == null ? maskedCell("email") : el("td", { class: "email", dataset: { field: "email" } }, r.email));
    tr.append(maskedCell("ssn"), maskedCell("notes"));
    tr.append(el("td", { class: "hint" }, fmtTime(r.created_at) + " by " + r.created_by));
    tr.append(el("td", {},
      el("button", { class: "small reveal", onclick: guard(() => reveal(r.id)) }, "Reveal"), " ",
      el("a", { href: "#stored/" + r.id, class: "stored-link" }, "Stored")));
    tb.append(tr);
  }
  $("#page-info").textContent = data.total + " records" + (data.pages > 1 ? ", page " + data.page + " of " + data.pages : "");
  $("#prev").disabled = state.searching || data.page <= 1;
  $("#next").disabled = state.searching || data.page >= data.pages;
  const may = state.session.may_decrypt;
  const can = Object.keys(may).filter(k => may[k]);
  $("#may").textContent = "Your role may decrypt: " + (can.length ? can.join(", ") : "nothing") + ". The server decides again on every request.";
}

async function loadRecords() {
  state.searching = false;
  renderRecords(await api("GET", "/api/records?page=" + state.page), "All records");
}

// cell is the cell of field in the row of record id as the list shows it
// now (the list may have been drawn again while a request ran).
function cell(id, field) {
  const tr = [...document.querySelectorAll("#records tbody tr")].find(r => r.dataset.id === id);
  return tr ? tr.querySelector('td[data-field="' + field + '"]') : null;
}

async function reveal(id) {
  try {
    const r = await api("POST", "/api/records/" + encodeURIComponent(id) + "/reveal");
    for (const f of ["ssn", "notes"]) {
      const td = cell(id, f);
      if (!td) continue;
      td.className = "revealed";
      td.textContent = r[f] || "(empty)";
    }
  } catch (e) {
    if (e.status !== 403) throw e;
    for (const f of ["ssn", "notes"]) {
      const td = cell(id, f);
      if (!td) continue;
      td.className = "denied";
      td.textContent = "denied (audited)";
    }
    flash(e.message, true);
  }
}

async function createRecord(ev) {
  ev.preventDefault();
  const f = ev.target;
  const body = { name: f.name.value, ssn: f.ssn.value, email: f.email.value, notes: f.notes.value };
  const r = await api("POST", "/api/records", body);
  f.reset();
  flash("Record created: its SSN, e-mail and notes are stored encrypted.");
  state.page = 1;
  await loadRecords();
  return r;
}

async function search(ev) {
  ev.preventDefault();
  const email = $("#s-email").value;
  const data = await api("POST", "/api/records/search", { email });
  state.searching = true;
  renderRecords(data, data.total + " found by e-mail");
}

// --- what the database stores ------------------------------------------------

async function loadStored(id) {
  const table = $("#stored");
  $("#stored-empty").hidden = !!id;
  table.hidden = !id;
  if (!id) return;
  const data = await api("GET", "/api/records/" + encodeURIComponent(id) + "/stored");
  const tb = table.querySelector("tbody");
  clear(tb);
  for (const c of data.columns) {
    const seen = c.masked ? el("td", { class: "masked" }, "•••••• (your role may not decrypt it)") : el("td", {}, c.seen);
    tb.append(el("tr", { dataset: { column: c.column } },
      el("td", {}, c.column, c.note ? el("div", { class: "hint" }, c.note) : ""),
      el("td", { class: "token" }, c.stored),
      el("td", {}, c.key_id ? String(c.key_id) + (c.algorithm ? " (" + c.algorithm + ")" : "") : ""),
      seen));
  }
}

// --- keys --------------------------------------------------------------------

async function loadKeys() {
  const data = await api("GET", "/api/keys");
  $("#keyring-name").textContent = data.keyring;
  const tb = $("#keys tbody");
  clear(tb);
  for (const k of data.keys) {
    tb.append(el("tr", { dataset: { key: k.id }, class: k.primary ? "primary-key" : "" },
      el("td", {}, String(k.id) + (k.primary ? " (primary)" : "")),
      el("td", {}, k.purpose),
      el("td", {}, el("span", { class: "state state-" + k.state }, k.state)),
      el("td", {}, fmtAge(k.age_seconds)),
      el("td", {}, String(k.encryptions)),
      el("td", { class: "stored-count" }, String(k.stored))));
  }
  const inv = $("#inventory tbody");
  clear(inv);
  for (const k of data.inventory.by_key) {
    const share = data.inventory.total ? Math.round(100 * k.values / data.inventory.total) : 0;
    inv.append(el("tr", { dataset: { key: k.key_id, primary: k.key_id === data.primary ? "yes" : "no" } },
      el("td", {}, String(k.key_id) + (k.key_id === data.primary ? " (primary)" : "")),
      el("td", { class: "values" }, String(k.values)),
      el("td", { class: "hint" }, share + "%")));
  }
  for (const k of data.inventory.indexes) {
    inv.append(el("tr", { dataset: { index: k.key_id } },
      el("td", {}, String(k.key_id) + " (derive)"),
      el("td", {}, String(k.values) + " blind indexes"),
      el("td", { class: "hint" }, "stable while data keys rotate")));
  }
  if (data.inventory.not_tokens) {
    inv.append(el("tr", {}, el("td", {}, "not a token"), el("td", {}, String(data.inventory.not_tokens)), el("td", {}, "")));
  }
  showJob(data.job);
  if (data.job.running) watchJob();
}

function showJob(j) {
  const p = $("#progress");
  p.max = Math.max(j.total, 1);
  p.value = j.scanned;
  let text = "";
  if (j.running) text = "re-encrypting: " + j.scanned + " of " + j.total + " values read, " + j.rewritten + " rewritten";
  else if (j.done) text = "done: " + j.rewritten + " rewritten, " + j.current + " already current" + (j.skipped ? ", " + j.skipped + " changed meanwhile" : "");
  else if (j.error) text = "stopped: " + j.error;
  $("#progress-text").textContent = text;
  $("#progress-text").dataset.state = j.running ? "running" : (j.done ? "done" : (j.error ? "error" : "idle"));
  $("#reencrypt").disabled = j.running;
}

function closeEvents() {
  if (state.events) { state.events.close(); state.events = null; }
}

// watchJob follows the re-encryption over server-sent events.
function watchJob() {
  closeEvents();
  const es = new EventSource("/api/keys/reencrypt/events");
  state.events = es;
  es.addEventListener("progress", ev => {
    const j = JSON.parse(ev.data);
    showJob(j);
    if (!j.running) { closeEvents(); guard(loadKeys)(); }
  });
  es.onerror = () => closeEvents();
}

async function rotate() {
  const r = await api("POST", "/api/keys/rotate");
  flash("New primary key " + r.primary + ". Old keys still decrypt; re-encrypt to move the data.");
  await loadKeys();
}

async function reencrypt() {
  const j = await api("POST", "/api/keys/reencrypt");
  showJob(j);
  watchJob();
}

// --- audit -------------------------------------------------------------------

async function loadAudit() {
  const q = new URLSearchParams();
  if ($("#a-user").value) q.set("user", $("#a-user").value);
  if ($("#a-result").value) q.set("result", $("#a-result").value);
  const data = await api("GET", "/api/audit?" + q);
  const v = data.verification;
  const b = $("#verify");
  b.className = "banner " + (v.ok ? "ok" : "bad");
  b.textContent = v.ok
    ? "Chain verified: " + v.records + " records in " + v.files + " file(s), every MAC and link intact, nothing cut from the end."
    : "Verification FAILED: " + v.error;
  const sel = $("#a-user");
  const cur = sel.value;
  clear(sel);
  sel.append(el("option", { value: "" }, "all"));
  for (const u of data.users) sel.append(el("option", { value: u }, u));
  sel.value = cur;
  const tb = $("#audit tbody");
  clear(tb);
  for (const e of data.entries) {
    tb.append(el("tr", { dataset: { decision: e.decision, user: e.user } },
      el("td", {}, String(e.seq)),
      el("td", { class: "hint" }, fmtTime(e.time)),
      el("td", {}, e.user + (e.roles && e.roles.length ? " (" + e.roles.join(", ") + ")" : "")),
      el("td", {}, e.action),
      el("td", {}, e.resource),
      el("td", { class: e.decision === "deny" ? "bad" : "ok" }, e.decision),
      el("td", { class: "hint" }, e.reason)));
  }
}

async function tamper() {
  const d = await api("GET", "/api/audit/tamper");
  $("#tamper-out").hidden = false;
  $("#tamper-result").textContent = d.result.ok ? "verified (unexpected)" : d.result.error;
  $("#tamper-where").textContent = "(" + d.file + ", line " + d.line + ")";
  $("#tamper-original").textContent = d.original;
  $("#tamper-tampered").textContent = d.tampered;
}

// --- monitoring --------------------------------------------------------------

async function loadMonitoring() {
  const data = await api("GET", "/api/monitoring");
  drawChart(data);
  const tb = $("#findings tbody");
  clear(tb);
  for (const f of data.findings) {
    tb.append(el("tr", { dataset: { kind: f.kind, user: f.user_id } },
      el("td", {}, f.kind),
      el("td", {}, f.user_id),
      el("td", { class: "sev-" + f.severity }, f.severity + (f.open ? " (open)" : "")),
      el("td", { class: "hint" }, fmtTime(f.start)),
      el("td", {}, String(f.events)),
      el("td", {}, f.detail)));
  }
  if (!data.findings.length) tb.append(el("tr", {}, el("td", { colspan: "6", class: "hint" }, "No findings yet.")));
}

// drawChart draws one row per user: encryptions, decryptions and denied
// accesses per time bucket as lines, findings as marked bands.
function drawChart(data) {
  const box = $("#chart");
  clear(box);
  const W = 1100, left = 110, right = 20, rowH = 74, top = 26, bottom = 24;
  const n = data.users.length ? data.users[0].counts[0].length : 1;
  const H = top + Math.max(data.users.length, 1) * rowH + bottom;
  const s = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "activity per user" });
  const start = Date.parse(data.start), bucketMs = data.bucket_seconds * 1000;
  const x = i => left + (W - left - right) * (n <= 1 ? 0 : i / (n - 1));
  const xt = t => x(Math.max(0, Math.min(n - 1, (Date.parse(t) - start) / bucketMs)));
  // legend
  let lx = left;
  for (const name of data.series) {
    s.append(svg("rect", { x: lx, y: 6, width: 10, height: 10, class: "legend-" + name }));
    s.append(svg("text", { x: lx + 14, y: 15 }, name));
    lx += 90;
  }
  s.append(svg("text", { x: W - right, y: 15, "text-anchor": "end" }, data.bucket_seconds + " s per point"));
  if (!data.users.length) {
    s.append(svg("text", { x: left, y: top + 30 }, "No activity yet."));
  }
  data.users.forEach((u, row) => {
    const y0 = top + row * rowH, y1 = y0 + rowH - 14;
    const g = svg("g", { "data-user": u.user });
    g.append(svg("line", { x1: left, x2: W - right, y1: y1, y2: y1, class: "axis" }));
    g.append(svg("text", { x: 6, y: y0 + rowH / 2, class: "user" }, u.name));
    g.append(svg("text", { x: 6, y: y0 + rowH / 2 + 14 }, u.user));
    let max = 1;
    for (const c of u.counts) for (const v of c) max = Math.max(max, v);
    g.append(svg("text", { x: left - 6, y: y0 + 10, "text-anchor": "end" }, String(max)));
    data.findings.filter(f => f.user_id === u.user).forEach((f, i) => {
      const fx = xt(f.start), fx2 = Math.max(xt(f.end), fx + 6);
      const band = svg("rect", { x: fx - 3, y: y0, width: fx2 - fx + 6, height: y1 - y0, class: "finding", "data-finding": f.kind });
      band.append(svg("title", {}, f.kind + ": " + f.detail));
      g.append(band);
      // Labels stack; near the right edge they sit left of the band.
      const atRight = fx > left + 0.7 * (W - left - right);
      g.append(svg("text", { x: atRight ? fx - 6 : fx2 + 6, y: y0 + 10 + 12 * i, class: "finding-label",
        "text-anchor": atRight ? "end" : "start" }, "\u25B2 " + f.kind + " (" + f.severity + ")"));
    });
    u.counts.forEach((c, si) => {
      const pts = c.map((v, i) => x(i).toFixed(1) + "," + (y1 - (y1 - y0 - 4) * v / max).toFixed(1)).join(" ");
      g.append(svg("polyline", { points: pts, class: "s-" + data.series[si], "data-series": data.series[si] }));
    });
    s.append(g);
  });
  s.append(svg("text", { x: left, y: H - 6 }, fmtTime(data.start)));
  s.append(svg("text", { x: W - right, y: H - 6, "text-anchor": "end" }, fmtTime(data.end)));
  box.append(s);
}

async function replay() {
  const b = $("#replay");
  b.disabled = true;
  try {
    const r = await api("POST", "/api/monitoring/replay");
    flash("Incident replayed as " + r.user + ": " + r.read + " e-mail addresses read, " + r.denied + " reveals denied.");
    await loadMonitoring();
  } finally {
    b.disabled = false;
  }
}

// --- wiring ------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("#create-form").addEventListener("submit", guard(createRecord));
  $("#search-form").addEventListener("submit", guard(search));
  $("#search-clear").addEventListener("click", guard(() => { $("#s-email").value = ""; return loadRecords(); }));
  $("#prev").addEventListener("click", guard(() => { state.page--; return loadRecords(); }));
  $("#next").addEventListener("click", guard(() => { state.page++; return loadRecords(); }));
  $("#rotate").addEventListener("click", guard(rotate));
  $("#reencrypt").addEventListener("click", guard(reencrypt));
  $("#a-user").addEventListener("change", guard(loadAudit));
  $("#a-result").addEventListener("change", guard(loadAudit));
  $("#tamper").addEventListener("click", guard(tamper));
  $("#replay").addEventListener("click", guard(replay));
  $("#signout").addEventListener("click", guard(async () => {
    await api("POST", "/api/signout");
    history.replaceState(null, "", location.pathname); // no hashchange: nothing else routes
    await showSignIn();
  }));
  window.addEventListener("hashchange", guard(route));
  guard(route)();
});
