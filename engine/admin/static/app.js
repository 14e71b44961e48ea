// specbridge admin dashboard: plain JS on the admin API. Data is only ever put in the page as text
// (textContent), never as HTML. The token lives in sessionStorage (this tab) and goes in the
// Authorization header; a "#token=..." fragment is taken once and removed from the address bar.
"use strict";

const KEY = "specbridge.admin.token";
const REFRESH_MS = 2000;
const $ = (sel) => document.querySelector(sel);
let cursor = null;        // keyset cursor of the next (older) page; null on the first page
let pageCursor = null;    // cursor the shown page was loaded with (null: first page, refreshed live)
let timer = null;

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const kid of kids) e.append(kid instanceof Node ? kid : document.createTextNode(kid == null ? "" : String(kid)));
  return e;
}

function ts(t) {
  if (t == null) return "–";
  const d = new Date(t * 1000), p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function badge(state) { return el("span", { class: `badge state-${state}` }, state); }

// A delivery that may have reached the platform with no outcome recorded: asked about (or resent) next.
const DOUBT_TITLE = "in doubt: the delivery may have reached the platform with no outcome recorded";
function stateCell(m) {
  return m.in_doubt ? [badge(m.state), " ", el("span", { class: "badge doubt", title: DOUBT_TITLE }, "in doubt")] : [badge(m.state)];
}

function toast(text, bad = false) {
  const t = $("#toast");
  t.textContent = text;
  t.className = bad ? "bad" : "";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

class Unauthorized extends Error {}

async function api(path, opts = {}) {
  const token = sessionStorage.getItem(KEY);
  const headers = { Authorization: `Bearer ${token}` };
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { method: opts.method || "GET", headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const data = await resp.json().catch(() => ({ error: `HTTP ${resp.status}` }));
  if (resp.status === 401 || resp.status === 403) throw new Unauthorized(data.error || "unauthorized");
  if (!resp.ok) throw new Error(data.error || `HTTP ${resp.status}`);
  return data;
}

// -- sign in -------------------------------------------------------------------------------------
function showLogin(message = "") {
  clearInterval(timer);
  $("#main").hidden = true;
  $("#logout").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message;
  $("#token").focus();
}

async function open() {
  try {
    await refresh();
  } catch (e) {
    if (e instanceof Unauthorized) { sessionStorage.removeItem(KEY); showLogin(e.message); return; }
    toast(e.message, true);
  }
  $("#login").hidden = true;
  $("#main").hidden = false;
  $("#logout").hidden = false;
  await loadMessages(null);
  clearInterval(timer);
  timer = setInterval(() => {
    refresh().catch(onError);
    if (pageCursor === null) loadMessages(null).catch(onError);
    if (!$("#detail").hidden && detailId !== null) showMessage(detailId, false);  // the open message stays current
  }, REFRESH_MS);
}

function onError(e) {
  if (e instanceof Unauthorized) { sessionStorage.removeItem(KEY); showLogin(e.message); } else toast(e.message, true);
}

// -- overview, routes, errors --------------------------------------------------------------------
async function refresh() {
  const [ov, routes, errors] = await Promise.all([api("/api/overview"), api("/api/routes"), api("/api/errors")]);
  $("#bridge-id").textContent = ov.title ? `${ov.bridge} · ${ov.title}` : ov.bridge;
  const r = $("#ready");
  r.textContent = ov.ready ? "ready" : `not ready: ${ov.reason}`;
  r.className = `badge ${ov.ready ? "ok" : "bad"}`;
  $("#journal-size").textContent = `journal: ${ov.journal.rows} messages, ${((ov.journal.db_bytes + ov.journal.wal_bytes) / 1048576).toFixed(1)} MiB`;
  renderRoutes(routes);
  renderErrors(errors.groups);
}

function renderRoutes(routes) {
  const body = $("#routes tbody");
  body.replaceChildren(...routes.map((rt) => {
    const targets = rt.targets.map((t) => `${t.target} (${t.interface})`).join(", ");
    const backlog = el("td");
    for (const t of rt.targets) {
      const parts = Object.entries(t.states).map(([s, n]) => `${s} ${n}`).join(" · ");
      backlog.append(el("div", { class: "small" }, `${t.interface}: ${parts || "–"}`));
    }
    const action = rt.paused
      ? el("button", { class: "primary", "data-route": rt.id, "data-action": "resume", on: { click: () => setPaused(rt.id, false) } }, "Resume")
      : el("button", { "data-route": rt.id, "data-action": "pause", on: { click: () => setPaused(rt.id, true) } }, "Pause");
    return el("tr", { "data-route": rt.id },
      el("td", {}, el("strong", {}, rt.id)), el("td", {}, `${rt.source} → ${targets}`),
      el("td", { class: "num" }, rt.sent_per_min.toFixed(1)), el("td", { class: "num" }, rt.failed_per_min.toFixed(1)),
      el("td", { class: "num" }, rt.sent), el("td", { class: "num" }, rt.failed), backlog,
      el("td", {}, rt.paused ? el("span", { class: "badge paused route-status" }, "paused") : el("span", { class: "badge ok route-status" }, "running")),
      el("td", {}, action));
  }));
}

function renderErrors(groups) {
  $("#no-errors").hidden = groups.length > 0;
  $("#errors tbody").replaceChildren(...groups.map((g) => {
    const actions = el("td", {},
      el("button", { on: { click: () => filterTo({ state: g.state, interface: g.interface, target: g.target }) } }, "Show"));
    if (g.state === "DEAD") {
      actions.append(" ", el("button", { class: "danger", "data-action": "replay-dead",
        on: { click: () => replayDead(g.interface, g.target) } }, "Replay all DEAD"));
    }
    return el("tr", {}, el("td", { class: "num" }, g.count), el("td", {}, badge(g.state)), el("td", {}, g.interface),
      el("td", {}, g.target), el("td", { class: "reason" }, g.reason), actions);
  }));
}

async function setPaused(route, paused) {
  try {
    await api(`/api/routes/${encodeURIComponent(route)}/${paused ? "pause" : "resume"}`, { method: "POST" });
    toast(`route ${route} ${paused ? "paused: its messages wait in the journal" : "resumed"}`);
    await refresh();
  } catch (e) { onError(e); }
}

async function replayDead(iface, target) {
  if (!confirm(`Send every DEAD message of ${iface} to ${target} again?`)) return;
  try {
    const res = await api("/api/replay-dead", { method: "POST", body: { interface: iface, target } });
    toast(`${res.replayed} DEAD message(s) queued again`);
    await refresh();
    await loadMessages(null);
  } catch (e) { onError(e); }
}

// -- messages ------------------------------------------------------------------------------------
function filters() {
  const q = new URLSearchParams();
  const val = (id) => $(id).value.trim();
  if (val("#f-state")) q.set("state", val("#f-state"));
  if (val("#f-interface")) q.set("interface", val("#f-interface"));
  if (val("#f-target")) q.set("target", val("#f-target"));
  if (val("#f-key")) q.set("key", val("#f-key"));
  for (const [id, name] of [["#f-since", "since"], ["#f-until", "until"]]) {
    if (val(id)) q.set(name, String(new Date(val(id)).getTime() / 1000));   // the browser's local time
  }
  return q;
}

function filterTo(f) {
  $("#f-state").value = f.state || "";
  $("#f-interface").value = f.interface || "";
  $("#f-target").value = f.target || "";
  $("#f-key").value = "";
  loadMessages(null).catch(onError);
}

async function loadMessages(from) {
  const q = filters();
  q.set("limit", "50");
  if (from !== null) q.set("cursor", String(from));
  const page = await api(`/api/messages?${q}`);
  pageCursor = from;
  cursor = page.next_cursor;
  $("#more").hidden = cursor === null;
  $("#count").textContent = `${page.items.length} message(s) on this page`;
  $("#messages tbody").replaceChildren(...page.items.map((m) => {
    const replay = el("button", { "data-action": "replay", "data-id": m.id, on: { click: (ev) => { ev.stopPropagation(); replayOne(m.id, m.state); } } }, "Replay");
    return el("tr", { class: "clickable", "data-id": m.id, on: { click: () => showMessage(m.id) } },
      el("td", { class: "num" }, m.id), el("td", { class: "state" }, ...stateCell(m)), el("td", {}, m.interface), el("td", {}, m.target),
      el("td", {}, m.key || ""), el("td", { class: "num" }, m.attempts), el("td", {}, ts(m.updated_at)),
      el("td", { class: "reason" }, m.last_error || ""), el("td", {}, replay));
  }));
}

async function replayOne(id, state) {
  if (state === "SENT" && !confirm(`#${id} was delivered already. Send it to the platform again?`)) return;
  try {
    const res = await api(`/api/messages/${id}/replay`, { method: "POST", body: { retranslate: true } });
    toast(`#${id} queued again (${res.state})${res.paused ? "; its route is paused" : ""}`);
    await loadMessages(pageCursor);
    if (!$("#detail").hidden && detailId === id) await showMessage(id, false);
  } catch (e) { onError(e); }
}

let detailId = null;

async function showMessage(id, scroll = true) {
  try {
    const m = await api(`/api/messages/${id}`);
    detailId = m.id;
    $("#detail-id").textContent = `#${m.id}`;
    const facts = [["State", el("span", {}, ...stateCell(m))], ["Interface", m.interface], ["Target", m.target], ["Route", m.route || "–"],
      ["Key", m.key || "–"], ["Version", m.version], ["Created", ts(m.created_at)], ["Updated", ts(m.updated_at)],
      ["Next attempt", ts(m.next_attempt_at)], ["Attempts", m.attempts], ["Last error", m.last_error || "–"]];
    if (m.superseded_by) facts.push(["Superseded by", `#${m.superseded_by}`]);
    $("#detail-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    $("#attempts tbody").replaceChildren(...m.history.map((a) => el("tr", {},
      el("td", { class: "num" }, a.n), el("td", {}, ts(a.started_at)), el("td", { class: "num" }, a.duration_ms == null ? "–" : a.duration_ms.toFixed(1)),
      el("td", {}, a.outcome), el("td", {}, a.status ?? "–"), el("td", {}, a.code ?? "–"), el("td", {}, a.request),
      el("td", { class: "reason" }, a.error || ""))));
    $("#detail-source").textContent = pretty(m.source);
    $("#detail-translated").textContent = pretty(m.translated);
    $("#detail").hidden = false;
    if (scroll) $("#detail").scrollIntoView({ behavior: "smooth", block: "nearest" });
  } catch (e) { onError(e); }
}

function pretty(text) {
  if (text == null) return "–";
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

// -- wiring --------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  $("#login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, $("#token").value.trim());
    $("#token").value = "";
    open();
  });
  $("#logout").addEventListener("click", () => { sessionStorage.removeItem(KEY); showLogin(); });
  $("#search").addEventListener("submit", (ev) => { ev.preventDefault(); loadMessages(null).catch(onError); });
  $("#more").addEventListener("click", () => loadMessages(cursor).catch(onError));
  $("#detail-close").addEventListener("click", () => { $("#detail").hidden = true; });
  if (sessionStorage.getItem(KEY)) open(); else showLogin();
});
