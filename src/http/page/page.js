// The status page. Everything shown comes from the JSON API and is put into the page as
// text (textContent, attribute values, SVG built node by node), never as markup, so a label
// value such as `<img src=x onerror=...>` shows as those characters.
"use strict";

const ALERTS_EVERY_MS = 5000;
const PLOTS_EVERY_MS = 30000;
const PLOT_HOURS = 6;
const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];
const SEVERITY_COLOURS = { emergency: "#7a0010", critical: "#c0262d", page: "#c0262d", high: "#e0560b", error: "#e0560b", warning: "#c79a00" };
const EVENT_COLOURS = { firing: "#c0262d", escalated: "#7a0010", deescalated: "#e0560b", resolved: "#23863a", acknowledged: "#5a43a8" };

const state = { alerts: [], rules: null, silences: [], outbox: null, series: {}, history: [], plotsAt: 0 };

// ---- small helpers -------------------------------------------------------------------

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children) e.append(typeof c === "string" ? document.createTextNode(c) : c);
  return e;
}

function byId(id) { return document.getElementById(id); }

function token() { return byId("token").value.trim(); }

/** GETs or sends JSON; an answer that is not 2xx throws its `error` text. */
async function api(path, options) {
  const opts = Object.assign({ headers: {} }, options || {});
  if (opts.method && opts.method !== "GET" && token()) opts.headers.Authorization = "Bearer " + token();
  const resp = await fetch(path, opts);
  let body = null;
  try { body = await resp.json(); } catch (_) { body = null; }
  if (!resp.ok) throw new Error((body && body.error) || ("HTTP " + resp.status));
  return body;
}

/** Numbers as an operator reads them: up to 4 significant digits, small ones not rounded to 0. */
function fmt(v) {
  if (v === null || v === undefined) return "no data";
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-3) return v.toExponential(3).replace(/\.?0+e/, "e");
  return String(Number(v.toPrecision(4)));
}

function duration(ms) {
  let s = Math.max(0, Math.round(ms / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return d + "d " + h + "h";
  if (h) return h + "h " + m + "m";
  if (m) return m + "m " + s + "s";
  return s + "s";
}

function when(iso) {
  const d = new Date(iso);
  return d.toLocaleString([], { dateStyle: "short", timeStyle: "medium" });
}

function labelText(k, v) { return k + "=" + JSON.stringify(v); }

function labelChips(labels, skip) {
  return el("div", { class: "labels" },
    Object.keys(labels).sort().filter((k) => !(skip || []).includes(k))
      .map((k) => el("span", { class: "label" }, labelText(k, labels[k]))));
}

/** Whether every label of `sub` is in `sup` with the same value. */
function within(sub, sup) {
  return Object.keys(sub).every((k) => sup[k] === sub[k]);
}

function rulesList() {
  if (!state.rules) return [];
  return state.rules.groups.flatMap((g) => g.rules.map((r) => Object.assign({ group: g.name }, r)));
}

function ruleOf(alert) { return rulesList().find((r) => r.name === alert.alertname && r.kind === "alert"); }

function showProblem(text) {
  const p = byId("problem");
  p.hidden = !text;
  p.textContent = text || "";
}

// ---- alerts --------------------------------------------------------------------------

function alertValue(alert) {
  const rule = ruleOf(alert);
  if (alert.value === null || alert.value === undefined) return "no data";
  if (rule && rule.boolean) return alert.value ? "condition true" : "condition false";
  return fmt(alert.value);
}

function alertCard(a, full) {
  const muted = a.silenced || a.inhibited || a.acknowledged;
  const card = el("article", { class: "alert " + a.state + (muted ? " muted-alert" : ""), "data-fingerprint": a.fingerprint });
  const head = el("div", { class: "head" },
    el("a", { class: "name", href: "#/alert/" + a.fingerprint }, a.alertname),
    el("span", { class: "badge " + a.state }, a.state),
    el("span", { class: "badge severity", "data-severity": a.severity }, a.severity),
    el("span", { class: "value", title: "value at the last evaluation" }, alertValue(a)));
  if (a.silenced) head.append(el("span", { class: "marker silenced" }, "silenced"));
  if (a.inhibited) head.append(el("span", { class: "marker inhibited" }, "inhibited"));
  if (a.acknowledged) {
    const k = a.acknowledged;
    const title = [k.comment, k.until ? "until " + when(k.until) : ""].filter(Boolean).join(" — ");
    head.append(el("span", { class: "marker acknowledged", title: title || null }, "acknowledged by " + (k.by || "?")));
  }
  if (a.nodata || a.value === null || a.value === undefined) head.append(el("span", { class: "marker nodata" }, "no data"));
  card.append(head);
  const times = el("div", { class: "times" });
  if (a.state === "firing" && a.starts_at) {
    times.append("active since " + when(a.starts_at) + " (", el("span", { "data-since": a.starts_at }, duration(Date.now() - Date.parse(a.starts_at))), ")");
  } else if (a.starts_at) {
    times.append("pending since " + when(a.starts_at));
    if (a.fires_at) times.append(" · fires in ", el("span", { class: "countdown", "data-until": a.fires_at }, countdown(a.fires_at)));
  }
  card.append(times);
  const ann = Object.keys(a.annotations || {}).sort((x, y) => annRank(x) - annRank(y) || x.localeCompare(y));
  if (ann.length) {
    const dl = el("dl", { class: "annotations" });
    for (const k of ann) dl.append(el("dt", {}, k), el("dd", {}, annotationValue(a.annotations[k])));
    card.append(dl);
  }
  card.append(labelChips(a.labels, full ? [] : ["alertname", "severity"]));
  const silence = el("button", { type: "button", class: "silence-this" }, "Silence…");
  silence.addEventListener("click", () => prefillSilence(a));
  card.append(el("div", { class: "actions" }, silence, full ? null : el("a", { href: "#/alert/" + a.fingerprint }, "details")));
  return card;
}

function annRank(k) { return ["summary", "description", "runbook", "runbook_url"].indexOf(k) + 1 || 9; }

/** A link when the annotation is an http(s) URL, text otherwise. */
function annotationValue(v) {
  try {
    const u = new URL(v);
    if (u.protocol === "http:" || u.protocol === "https:") return el("a", { href: u.href, rel: "noopener noreferrer" }, v);
  } catch (_) { /* not a URL */ }
  return v;
}

function countdown(iso) {
  const left = Date.parse(iso) - Date.now();
  return left > 0 ? duration(left) : "the next evaluation";
}

function renderAlerts() {
  const box = byId("alerts");
  const firing = state.alerts.filter((a) => a.state === "firing");
  const pending = state.alerts.filter((a) => a.state === "pending");
  byId("alert-counts").textContent = firing.length + " firing, " + pending.length + " pending";
  const cards = firing.concat(pending).map((a) => alertCard(a, false));
  box.replaceChildren(...(cards.length ? cards : [el("p", { class: "muted" }, "Nothing is pending or firing.")]));
}

function renderAlertView() {
  const view = byId("alert-view");
  const m = /^#\/alert\/([0-9a-f]{16})$/.exec(location.hash);
  byId("alerts-section").hidden = !!m;
  if (!m) { view.hidden = true; view.replaceChildren(); return; }
  const fp = m[1];
  const a = state.alerts.find((x) => x.fingerprint === fp);
  const rows = state.history.filter((h) => h.fingerprint === fp);
  const parts = [el("p", {}, el("a", { href: "#/" }, "← all alerts"))];
  let ruleName = a ? a.alertname : (rows[0] && rows[0].rule);
  if (a) parts.push(alertCard(a, true));
  else parts.push(el("p", { class: "alert-gone" }, "Alert " + fp + " is not pending or firing now."));
  const rule = rulesList().find((r) => r.name === ruleName);
  if (rule) parts.push(plotRule(rule, a ? a.labels : null));
  if (rows.length) {
    parts.push(el("h3", {}, "Its transitions"),
      el("table", { class: "wide" }, el("tbody", {}, rows.map((h) => el("tr", {},
        el("td", { "data-h": "time" }, when(h.at)), el("td", { "data-h": "event" }, h.event),
        el("td", { "data-h": "severity" }, h.severity), el("td", { "data-h": "value", class: "num" }, fmt(h.value)))))));
  }
  view.replaceChildren(...parts);
  view.hidden = false;
}

// ---- plots ---------------------------------------------------------------------------

/** One rule: title, tiers, and a plot of its instances (only those within `only`, if given). */
function plotRule(rule, only) {
  const box = el("div", { class: "rule", "data-rule": rule.name });
  const tiers = (rule.tiers || []).map((t) => t.severity + (t.threshold === null ? "" : " " + (t.condition === "below" ? "< " : "> ") + fmt(t.threshold)) + (t.for ? " for " + duration(t.for * 1000) : ""));
  box.append(el("div", { class: "title" },
    el("strong", {}, rule.name),
    el("span", { class: "muted" }, rule.group + " · " + rule.kind + " · " + rule.instances + " instance" + (rule.instances === 1 ? "" : "s")),
    rule.health === "err" ? el("span", { class: "bad" }, rule.last_error) : null),
    el("code", {}, rule.expr));
  if (tiers.length) box.append(el("div", { class: "muted" }, "tiers: " + tiers.join(" → ")));
  let series = state.series[rule.name] || [];
  if (only) series = series.filter((s) => within(s.labels, only));
  // An alert's transitions carry the severity of their time: compare without it.
  const events = state.history.filter((h) => h.rule === rule.name && h.event !== "action" && (!only || within(stripSeverity(h.labels), stripSeverity(only))));
  box.append(plot(series, rule.tiers || [], events));
  return box;
}

function stripSeverity(l) { const c = Object.assign({}, l); delete c.severity; return c; }

function plot(series, tiers, events) {
  const W = 760, H = 220, L = 48, R = 8, T = 14, B = 22;
  const to = Date.now(), from = to - PLOT_HOURS * 3600e3;
  const values = [];
  for (const s of series) for (const p of s.points) for (const v of [p[1], p[2]]) if (v !== null) values.push(v);
  const lines = tiers.filter((t) => t.threshold !== null);
  for (const t of lines) values.push(t.threshold);
  const root = svg("svg", { class: "plot", viewBox: "0 0 " + W + " " + H, role: "img" });
  if (!values.length) {
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#888" }, "no values recorded in the last " + PLOT_HOURS + " h"));
    return root;
  }
  let lo = Math.min(...values), hi = Math.max(...values);
  if (lo === hi) { lo -= 1; hi += 1; }
  const pad = (hi - lo) * 0.08; lo -= pad; hi += pad;
  const x = (t) => L + (t - from) / (to - from) * (W - L - R);
  const y = (v) => T + (hi - v) / (hi - lo) * (H - T - B);
  // Axes: a label per hour, three value labels.
  for (let h = Math.ceil(from / 3600e3) * 3600e3; h <= to; h += 3600e3) {
    root.append(svg("line", { x1: x(h), x2: x(h), y1: T, y2: H - B, stroke: "#e4e4e4" }));
    root.append(svg("text", { x: x(h), y: H - 6, "font-size": 11, "text-anchor": "middle", fill: "#666" }, new Date(h).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
  }
  for (const v of [lo + pad, (lo + hi) / 2, hi - pad]) {
    root.append(svg("text", { x: L - 4, y: y(v) + 4, "font-size": 11, "text-anchor": "end", fill: "#666" }, fmt(v)));
  }
  series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length];
    const pts = s.points.filter((p) => p[3] !== null && p[0] >= from);
    const step = pts.length > 1 ? Math.min(...pts.slice(1).map((p, j) => p[0] - pts[j][0])) : 60e3;
    const g = svg("g", { class: "series" }, svg("title", {}, Object.keys(s.labels).sort().map((k) => labelText(k, s.labels[k])).join(", ") || "(no labels)"));
    // Runs without gaps: a band from min to max and a line through the last values.
    let run = [];
    const flush = () => {
      if (!run.length) return;
      const band = run.map((p) => x(p[0]) + "," + y(p[2])).concat(run.slice().reverse().map((p) => x(p[0]) + "," + y(p[1])));
      g.append(svg("polygon", { points: band.join(" "), fill: colour, "fill-opacity": 0.15, stroke: "none" }));
      if (run.length === 1) g.append(svg("circle", { cx: x(run[0][0]), cy: y(run[0][3]), r: 2, fill: colour }));
      else g.append(svg("polyline", { points: run.map((p) => x(p[0]) + "," + y(p[3])).join(" "), fill: "none", stroke: colour, "stroke-width": 1.6 }));
      run = [];
    };
    pts.forEach((p, j) => { if (j && p[0] - pts[j - 1][0] > 3 * step) flush(); run.push(p); });
    flush();
    root.append(g);
  });
  for (const t of lines) {
    const colour = SEVERITY_COLOURS[t.severity] || "#c79a00";
    root.append(svg("line", { class: "threshold", x1: L, x2: W - R, y1: y(t.threshold), y2: y(t.threshold), stroke: colour, "stroke-dasharray": "5 4" }),
      svg("text", { x: W - R - 2, y: y(t.threshold) - 3, "font-size": 11, "text-anchor": "end", fill: colour }, t.severity + " " + fmt(t.threshold)));
  }
  for (const e of events) {
    const at = Date.parse(e.at);
    if (at < from) continue;
    const colour = EVENT_COLOURS[e.event] || "#444";
    root.append(svg("path", { class: "transition", d: "M" + x(at) + " " + T + " l-4 -7 h8 z", fill: colour },
      svg("title", {}, when(e.at) + " " + e.event + " " + e.severity + (e.value === null ? "" : " at " + fmt(e.value)))),
    svg("line", { x1: x(at), x2: x(at), y1: T, y2: H - B, stroke: colour, "stroke-opacity": 0.35 }));
  }
  const wrap = el("figure", { class: "plot-box" });
  wrap.append(root);
  const legend = el("figcaption", { class: "legend" });
  series.forEach((s, i) => legend.append(el("span", {}, el("i", { class: "swatch-" + (i % PALETTE.length) }), Object.keys(s.labels).sort().map((k) => labelText(k, s.labels[k])).join(", ") || "(no labels)")));
  const seen = [...new Set(events.map((e) => e.event))];
  for (const ev of seen) legend.append(el("span", {}, "▼ " + ev));
  wrap.append(legend);
  return wrap;
}

function renderRules() {
  const box = byId("rules");
  const rules = rulesList();
  box.replaceChildren(...(rules.length ? rules.map((r) => plotRule(r, null)) : [el("p", { class: "muted" }, "No rules loaded.")]));
}

function renderReload() {
  const r = state.rules && state.rules.last_reload;
  const box = byId("reload");
  if (!r) return box.replaceChildren();
  if (r.successful && !r.error) {
    box.replaceChildren(el("p", { class: "reload-ok" }, "Configuration loaded " + when(r.last_success)));
  } else {
    box.replaceChildren(el("div", { class: "reload-failed" },
      el("strong", {}, "The last reload failed; the configuration loaded " + when(r.last_success) + " keeps running:"),
      el("pre", {}, r.error || "")));
  }
}

// ---- silences ------------------------------------------------------------------------

function matcherText(m) {
  const op = (m.isEqual === false ? "!" : "=") + (m.isRegex ? "~" : (m.isEqual === false ? "=" : ""));
  return m.name + op + m.value;
}

function renderSilences() {
  const rows = state.silences.map((s) => {
    const expire = s.status === "expired" ? null : el("button", { type: "button", class: "expire" }, "Expire");
    if (expire) expire.addEventListener("click", () => expireSilence(s.id));
    return el("tr", { class: "silence " + s.status, "data-id": s.id },
      el("td", { "data-h": "matchers" }, s.matchers.map((m) => el("span", { class: "label" }, matcherText(m)))),
      el("td", { "data-h": "status" }, s.status),
      el("td", { "data-h": "from" }, when(s.starts_at)),
      el("td", { "data-h": "until" }, when(s.ends_at)),
      el("td", { "data-h": "by" }, s.created_by),
      el("td", { "data-h": "comment" }, s.comment),
      el("td", {}, expire));
  });
  byId("silences").replaceChildren(rows.length
    ? el("table", { class: "wide" }, el("thead", {}, el("tr", {}, ["matchers", "status", "from", "until", "by", "comment", ""].map((h) => el("th", {}, h)))), el("tbody", {}, rows))
    : el("p", { class: "muted" }, "No silences."));
}

/** `name=value`, `name!=value`, `name=~regex`, `name!~regex`, separated by commas. */
function parseMatchers(text) {
  return text.split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*)$/.exec(s);
    if (!m) throw new Error("`" + s + "` is not name=value, name!=value, name=~regex or name!~regex");
    let value = m[3].trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = JSON.parse(value);
    return { name: m[1], value, isRegex: m[2].includes("~"), isEqual: !m[2].startsWith("!") };
  });
}

function parseDuration(text) {
  const re = /(\d+(?:\.\d+)?)(d|h|m|s)/g;
  const unit = { d: 86400e3, h: 3600e3, m: 60e3, s: 1e3 };
  let ms = 0, used = "";
  for (const m of text.trim().matchAll(re)) { ms += Number(m[1]) * unit[m[2]]; used += m[0]; }
  if (!ms || used !== text.trim().replace(/\s+/g, "")) throw new Error("duration `" + text + "`: write e.g. 30m, 2h or 1d");
  return ms;
}

function prefillSilence(a) {
  byId("sil-matchers").value = Object.keys(a.labels).sort().filter((k) => k !== "severity")
    .map((k) => k + "=" + JSON.stringify(a.labels[k])).join(", ");
  byId("sil-matchers").scrollIntoView({ block: "center" });
  byId("sil-author").focus();
}

async function createSilence(ev) {
  ev.preventDefault();
  const out = byId("sil-result");
  try {
    const body = {
      matchers: parseMatchers(byId("sil-matchers").value),
      ends_at: new Date(Date.now() + parseDuration(byId("sil-duration").value)).toISOString(),
      created_by: byId("sil-author").value.trim(),
      comment: byId("sil-comment").value,
    };
    const r = await api("api/v1/silences", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    out.textContent = "created silence " + r.silence_id;
    out.className = "muted";
    await refresh();
  } catch (e) {
    out.textContent = "not created: " + e.message;
    out.className = "bad";
  }
}

async function expireSilence(id) {
  const out = byId("sil-result");
  try {
    await api("api/v1/silences/" + encodeURIComponent(id), { method: "DELETE" });
    out.textContent = "expired silence " + id;
    out.className = "muted";
    await refresh();
  } catch (e) {
    out.textContent = "not expired: " + e.message;
    out.className = "bad";
  }
}

// ---- delivery ------------------------------------------------------------------------

function renderDelivery() {
  const o = state.outbox;
  if (!o) return;
  const count = (name, status) => o.entries.filter((e) => e.receiver === name && e.status === status).length;
  const rows = o.receivers.map((r) => el("tr", { class: "receiver", "data-receiver": r.name },
    el("td", { "data-h": "receiver" }, r.name),
    el("td", { "data-h": "pending", class: "num" }, String(r.pending)),
    el("td", { "data-h": "failed", class: "num" + (count(r.name, "failed") ? " bad" : "") }, String(count(r.name, "failed"))),
    el("td", { "data-h": "dead", class: "num" + (count(r.name, "dead") ? " bad" : "") }, String(count(r.name, "dead"))),
    el("td", { "data-h": "circuit", class: r.circuit_open ? "bad" : "" }, r.circuit_open ? "open: sends held back" : "closed")));
  byId("receivers").replaceChildren(el("table", { class: "wide" },
    el("thead", {}, el("tr", {}, ["receiver", "pending", "failed", "dead", "circuit breaker"].map((h) => el("th", {}, h)))),
    el("tbody", {}, rows)));
  const stopped = o.entries.filter((e) => e.status !== "pending");
  if (!stopped.length) return byId("outbox").replaceChildren();
  byId("outbox").replaceChildren(el("h3", {}, "Failed and dead notifications"), el("table", { class: "wide" },
    el("thead", {}, el("tr", {}, ["id", "receiver", "status", "attempts", "last error", "queued", ""].map((h) => el("th", {}, h)))),
    el("tbody", {}, stopped.map((e) => {
      const retry = el("button", { type: "button", class: "retry" }, "Retry");
      retry.addEventListener("click", async () => {
        try { await api("api/v1/outbox/" + e.id + "/retry", { method: "POST" }); await refresh(); } catch (err) { showProblem("retry of " + e.id + " failed: " + err.message); }
      });
      return el("tr", { "data-id": e.id },
        el("td", { "data-h": "id", class: "num" }, String(e.id)), el("td", { "data-h": "receiver" }, e.receiver),
        el("td", { "data-h": "status", class: "bad" }, e.status), el("td", { "data-h": "attempts", class: "num" }, String(e.attempts)),
        el("td", { "data-h": "last error" }, e.last_error || ""), el("td", { "data-h": "queued" }, when(e.created)), el("td", {}, retry));
    }))));
}

// ---- refresh loop --------------------------------------------------------------------

async function refreshPlots() {
  const since = new Date(Date.now() - PLOT_HOURS * 3600e3).toISOString();
  const names = [...new Set(rulesList().map((r) => r.name))];
  const got = await Promise.all(names.map((n) => api("api/v1/series?rule=" + encodeURIComponent(n)).then((r) => [n, r.series], () => [n, []])));
  state.series = Object.fromEntries(got);
  state.history = (await api("api/v1/history?limit=2000&since=" + encodeURIComponent(since))).history;
  state.plotsAt = Date.now();
}

async function refresh() {
  try {
    const [alerts, rules, silences, outbox] = await Promise.all([
      api("api/v1/alerts"), api("api/v1/rules"), api("api/v1/silences"), api("api/v1/outbox?limit=1000"),
    ]);
    state.alerts = alerts.alerts;
    state.rules = rules;
    state.silences = silences.silences;
    state.outbox = outbox;
    if (Date.now() - state.plotsAt > PLOTS_EVERY_MS) await refreshPlots();
    renderReload();
    renderAlerts();
    renderRules();
    renderSilences();
    renderDelivery();
    renderAlertView();
    byId("updated").textContent = "updated " + new Date().toLocaleTimeString();
    showProblem(null);
  } catch (e) {
    showProblem("Cannot reach the daemon (showing what was last seen): " + e.message);
  }
}

function tick() {
  for (const e of document.querySelectorAll("[data-until]")) e.textContent = countdown(e.getAttribute("data-until"));
  for (const e of document.querySelectorAll("[data-since]")) e.textContent = duration(Date.now() - Date.parse(e.getAttribute("data-since")));
}

function start() {
  byId("plot-hours").textContent = String(PLOT_HOURS);
  const t = byId("token");
  t.value = sessionStorage.getItem("tocsin-token") || "";
  t.addEventListener("change", () => sessionStorage.setItem("tocsin-token", t.value.trim()));
  byId("silence-form").addEventListener("submit", createSilence);
  window.addEventListener("hashchange", () => { renderAlertView(); window.scrollTo(0, 0); });
  refresh();
  setInterval(refresh, ALERTS_EVERY_MS);
  setInterval(tick, 1000);
}

document.addEventListener("DOMContentLoaded", start);
