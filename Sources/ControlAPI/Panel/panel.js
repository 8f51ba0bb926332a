// acerelay's panel: renders the control API's snapshots, kept live by
// Server-Sent Events (GET /api/v1/events/live), with polling of
// /api/v1/panel/snapshot when SSE does not get through (a proxy that buffers or cuts it).
"use strict";

const API = "/api/v1";
const KEY_STORAGE = "acerelay.apiKey";
const HISTORY_POINTS = 300;
const POLL_MS = 2000;
const SSE_SILENCE_MS = 10000;
const SSE_FAILURES_BEFORE_POLLING = 3;
const SSE_RETRY_WHILE_POLLING_MS = 30000;
const SLOW_REFRESH_MS = 10000;

const $ = (id) => document.getElementById(id);

const state = {
  snapshot: null,
  // Per content id: [{t, peers, speed, bitrate}], newest last.
  history: new Map(),
  selected: null,
  events: [],
  source: null,
  sseFailures: 0,
  lastMessage: 0,
  pollTimer: null,
  mode: "connecting",
};

// MARK: formatting

function ago(iso) {
  if (!iso) return "Never";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${Math.floor(seconds)}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

function duration(iso) {
  if (!iso) return "–";
  let s = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return h > 0 ? `${h}h ${String(m).padStart(2, "0")}m` : `${m}m ${String(s).padStart(2, "0")}s`;
}

function mbit(bps) { return bps ? (bps / 1e6).toFixed(2) : "–"; }
function orDash(v) { return v === null || v === undefined ? "–" : String(v); }
function shortKey(key) { return key && key.length > 16 ? `${key.slice(0, 8)}…${key.slice(-6)}` : (key || "–"); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// MARK: messages and the API key

function showMessage(text, ok) {
  const box = $("message");
  box.textContent = text;
  box.classList.toggle("ok", !!ok);
  box.hidden = false;
  clearTimeout(showMessage.timer);
  showMessage.timer = setTimeout(() => { box.hidden = true; }, ok ? 4000 : 12000);
}

function apiKey() {
  try { return localStorage.getItem(KEY_STORAGE) || ""; } catch (e) { return ""; }
}

function setupKey() {
  $("api-key").value = apiKey();
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    try {
      if (key) localStorage.setItem(KEY_STORAGE, key); else localStorage.removeItem(KEY_STORAGE);
      showMessage(key ? "API key kept in this browser." : "API key removed from this browser.", true);
    } catch (e) {
      showMessage("This browser does not allow keeping the key (localStorage is unavailable).");
    }
  });
}

// A write with the key. Resolves to the parsed body, or null after showing why it failed.
async function write(method, path, what) {
  const headers = {};
  const key = apiKey() || $("api-key").value.trim();
  if (key) headers["Authorization"] = `Bearer ${key}`;
  let response;
  try {
    response = await fetch(API + path, { method, headers });
  } catch (e) {
    showMessage(`${what}: the control API did not answer (${e.message}).`);
    return null;
  }
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (response.ok) return body || {};
  const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : (body.detail.message || JSON.stringify(body.detail))) : response.statusText;
  if (response.status === 401) showMessage(`${what}: the API key is missing (401: ${detail}). Type it in the API key field and press Keep.`);
  else if (response.status === 403) showMessage(`${what}: the API key was refused (403: ${detail}). Check the key and press Keep.`);
  else showMessage(`${what} failed (${response.status}: ${detail}).`);
  return null;
}

async function read(path) {
  const response = await fetch(API + path, { cache: "no-store" });
  if (!response.ok) { const error = new Error(`${response.status}`); error.status = response.status; throw error; }
  return response.json();
}

// MARK: rendering

function render(snapshot) {
  state.snapshot = snapshot;
  const k = snapshot.kpis;
  document.querySelector('[data-testid="kpi-players"]').textContent = String(k.players);
  document.querySelector('[data-testid="kpi-hubs"]').textContent = String(k.hubs);
  document.querySelector('[data-testid="kpi-streams"]').textContent = String(k.streams);
  document.querySelector('[data-testid="kpi-egress-mbps"]').textContent = k.egress_mbps.toFixed(2);
  document.querySelector('[data-testid="kpi-ingress-mbps"]').textContent = k.ingress_mbps.toFixed(2);
  document.querySelector('[data-testid="kpi-engines-healthy"]').textContent = String(k.engines_healthy);
  document.querySelector('[data-testid="kpi-engines-total"]').textContent = String(k.engines_total);
  renderVPN(snapshot.vpn);
  const now = Date.now();
  for (const stream of snapshot.streams) {
    const list = state.history.get(stream.key) || [];
    list.push({ t: now, peers: stream.peers, speed: stream.speed_down, bitrate: stream.relay ? stream.relay.bitrate_bps / 1e6 : null });
    if (list.length > HISTORY_POINTS) list.splice(0, list.length - HISTORY_POINTS);
    state.history.set(stream.key, list);
  }
  const live = new Set(snapshot.streams.map((s) => s.key));
  for (const key of state.history.keys()) if (!live.has(key)) state.history.delete(key);
  if (!state.selected || !live.has(state.selected)) state.selected = snapshot.streams.length ? snapshot.streams[0].key : null;
  renderEngines(snapshot.engines);
  renderStreams(snapshot.streams);
  drawChart();
}

function renderEngines(engines) {
  const body = $("engines");
  body.replaceChildren(...engines.map((e) => {
    const health = e.health_status || "unknown";
    return el("tr", { "data-testid": "engine-row", "data-engine-id": e.container_id, "data-health": health },
      el("td", {}, el("span", { class: `dot dot-${health}`, "aria-hidden": "true" }), health),
      el("td", {}, e.container_name || e.container_id, e.forwarded ? " " : null,
        e.forwarded ? el("span", { class: "badge badge-blue", text: "forwarded" }) : null),
      el("td", { class: "mono", text: `${e.host}:${e.port}` }),
      el("td", { class: "num", text: String(e.stream_count) }),
      el("td", { text: ago(e.last_health_check) }),
      el("td", { text: ago(e.last_stream_usage) }),
      el("td", { text: orDash(e.version) }));
  }));
  $("engines-empty").hidden = engines.length > 0;
}

function renderStreams(streams) {
  const body = $("streams");
  body.replaceChildren(...streams.map((s) => {
    const relay = s.relay || {};
    const row = el("tr", { "data-testid": "stream-row", "data-content-id": s.key, "data-stream-id": s.id,
      "data-players": String(relay.players ?? 0), class: s.key === state.selected ? "selected" : null },
      el("td", { class: "mono", title: s.key, text: shortKey(s.key) }),
      el("td", { text: s.container_name || s.container_id }),
      el("td", { class: "num players", text: String(relay.players ?? 0) }),
      el("td", { class: "num", text: mbit(relay.bitrate_bps) }),
      el("td", { class: "num", text: orDash(s.peers) }),
      el("td", { class: "num", text: `${orDash(s.speed_down)} / ${orDash(s.speed_up)}` }),
      el("td", { class: "num", text: orDash(relay.continuity_errors) }),
      el("td", { class: "num", text: duration(s.started_at) }),
      el("td", {}, el("div", { class: "actions" },
        el("button", { type: "button", text: "Chart", "aria-pressed": String(s.key === state.selected),
          onclick: () => { state.selected = s.key; renderStreams(state.snapshot.streams); drawChart(); } }),
        el("button", { type: "button", class: "danger", text: "Stop", onclick: () => stopStream(s) }))));
    return row;
  }));
  $("streams-empty").hidden = streams.length > 0;
}

async function stopStream(stream) {
  if (!window.confirm(`Stop ${shortKey(stream.key)}? Its players are disconnected.`)) return;
  const body = await write("DELETE", `/streams/${encodeURIComponent(stream.id)}`, "Stop stream");
  if (body) showMessage(`Stopped ${shortKey(stream.key)}.`, true);
}

// The chart: one lane per series (peers, download speed, bitrate), each on
// its own scale from zero, so numbers of very different sizes stay readable
// and never hide one another; the legend gives the current values.
function drawChart() {
  const canvas = $("chart");
  const points = state.selected ? (state.history.get(state.selected) || []) : [];
  canvas.dataset.points = String(points.length);
  $("chart-title").textContent = state.selected ? `Stream ${shortKey(state.selected)}, last ${points.length} updates` : "Select a stream to chart it.";
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, width, height);
  const styles = getComputedStyle(document.documentElement);
  const series = [
    ["peers", "Peers", styles.getPropertyValue("--green").trim(), "legend-peers", (v) => String(Math.round(v))],
    ["speed", "Down KiB/s", styles.getPropertyValue("--accent").trim(), "legend-speed", (v) => String(Math.round(v))],
    ["bitrate", "Mbit/s", styles.getPropertyValue("--amber").trim(), "legend-bitrate", (v) => v.toFixed(2)],
  ];
  const lane = height / series.length;
  const pad = 8 * ratio;
  g.font = `${12 * ratio}px system-ui, sans-serif`;
  g.textBaseline = "top";
  series.forEach(([field, label, colour, legend, format], index) => {
    const top = index * lane;
    const bottom = top + lane;
    g.strokeStyle = "#2a313b";
    g.lineWidth = 1;
    if (index > 0) { g.beginPath(); g.moveTo(0, Math.round(top) + 0.5); g.lineTo(width, Math.round(top) + 0.5); g.stroke(); }
    const values = points.map((p) => p[field]);
    const known = values.filter((v) => typeof v === "number");
    $(legend).textContent = known.length ? format(known[known.length - 1]) : "–";
    const max = known.length ? Math.max(...known) : 0;
    g.fillStyle = "#9aa4b2";
    g.fillText(`${label}  max ${known.length ? format(max) : "–"}`, pad, top + pad / 2);
    if (!known.length) return;
    const scale = max > 0 ? max * 1.15 : 1;
    const plotTop = top + pad * 2.5;
    const plotHeight = bottom - pad - plotTop;
    g.strokeStyle = colour;
    g.lineWidth = 2 * ratio;
    g.beginPath();
    let started = false;
    values.forEach((v, i) => {
      if (typeof v !== "number") return;
      const x = points.length > 1 ? pad + ((width - 2 * pad) * i) / (points.length - 1) : width - pad;
      const y = plotTop + plotHeight * (1 - v / scale);
      if (started) g.lineTo(x, y); else { g.moveTo(x, y); started = true; }
    });
    g.stroke();
  });
}

function addEvent(kind, data) {
  const at = data.at ? new Date(data.at) : new Date();
  let text;
  if (kind === "stream") {
    const who = shortKey(data.content_id);
    const words = { hub_started: "hub opened", hub_closed: "hub closed", player_joined: "player joined", player_left: "player left",
      stream_started: "engine session started", stream_ended: "engine session ended" };
    text = `${who}: ${words[data.type] || data.type}${data.players !== undefined ? ` (${data.players} playing)` : ""}${data.reason ? `, ${data.reason}` : ""}`;
  } else if (kind === "vpn") {
    text = data.message;
  } else {
    text = `engine ${data.container_id}: ${data.type === "health_changed" ? `${data.previous} → ${data.health_status}` : data.type.replace("engine_", "")}`;
  }
  state.events.unshift({ at, text });
  state.events.length = Math.min(state.events.length, 50);
  $("events").replaceChildren(...state.events.map((e) => el("li", {}, el("time", { datetime: e.at.toISOString(), text: e.at.toLocaleTimeString() }), e.text)));
  $("events-empty").hidden = state.events.length > 0;
}

// A stream event moves the row's player count at once; the next snapshot confirms it.
function applyStreamEvent(data) {
  if (data.players === undefined) return;
  const row = document.querySelector(`[data-testid="stream-row"][data-content-id="${CSS.escape(data.content_id)}"]`);
  if (row) {
    row.dataset.players = String(data.players);
    const cell = row.querySelector(".players");
    if (cell) cell.textContent = String(data.players);
  }
}

function applyEngineEvent(data) {
  const row = document.querySelector(`[data-testid="engine-row"][data-engine-id="${CSS.escape(data.container_id)}"]`);
  if (row && data.health_status) row.dataset.health = data.health_status;
}

// MARK: live updates

function setMode(mode) {
  state.mode = mode;
  const badge = $("connection");
  const looks = { live: ["live", "badge-green"], polling: ["polling", "badge-amber"], offline: ["offline", "badge-red"], connecting: ["connecting", "badge-grey"] };
  const [text, cls] = looks[mode];
  badge.textContent = text;
  badge.className = `badge ${cls}`;
}

function connect() {
  if (state.source) state.source.close();
  const source = new EventSource(`${API}/events/live`);
  state.source = source;
  let heard = false;
  const heardNow = () => {
    state.lastMessage = Date.now();
    if (!heard) { heard = true; state.sseFailures = 0; stopPolling(); setMode("live"); }
  };
  source.addEventListener("snapshot", (event) => {
    heardNow();
    try { render(JSON.parse(event.data)); } catch (e) { console.warn("panel: a snapshot did not parse", e); }
  });
  source.addEventListener("stream", (event) => {
    heardNow();
    const data = JSON.parse(event.data);
    applyStreamEvent(data);
    addEvent("stream", data);
  });
  source.addEventListener("vpn", (event) => {
    heardNow();
    addEvent("vpn", JSON.parse(event.data));
  });
  source.addEventListener("engine", (event) => {
    heardNow();
    const data = JSON.parse(event.data);
    applyEngineEvent(data);
    addEvent("engine", data);
  });
  source.onopen = () => { state.lastMessage = Date.now(); };
  source.onerror = () => {
    // CONNECTING: the browser retries by itself (after a restart, say). CLOSED: it gave up; so do we, later.
    if (!heard) state.sseFailures += 1;
    heard = false;
    if (state.sseFailures >= SSE_FAILURES_BEFORE_POLLING) {
      source.close();
      startPolling();
      setTimeout(connect, SSE_RETRY_WHILE_POLLING_MS);
    } else if (source.readyState === EventSource.CLOSED) {
      setTimeout(connect, 2000);
    }
    if (state.mode !== "polling") setMode("offline");
  };
}

// An open stream that stays silent is a proxy holding it back: count it as failed.
function watchSilence() {
  setInterval(() => {
    if (state.mode === "live" && Date.now() - state.lastMessage > SSE_SILENCE_MS) {
      state.sseFailures += 1;
      if (state.sseFailures >= SSE_FAILURES_BEFORE_POLLING) {
        state.source.close();
        startPolling();
        setTimeout(connect, SSE_RETRY_WHILE_POLLING_MS);
      } else {
        connect();
      }
    }
  }, 2000);
}

function startPolling() {
  if (state.pollTimer) return;
  setMode("polling");
  const poll = async () => {
    try { render(await read("/panel/snapshot")); setMode("polling"); } catch (e) { setMode("offline"); }
  };
  poll();
  state.pollTimer = setInterval(poll, POLL_MS);
}

function stopPolling() {
  if (state.pollTimer) clearInterval(state.pollTimer);
  state.pollTimer = null;
}

// MARK: slower sections

// The VPN as /vpn/status shows it, from every snapshot: the KPI's word and the card.
function renderVPN(vpn) {
  let word = "disabled";
  if (vpn && vpn.enabled) word = vpn.connected ? "up" : (vpn.status === "unknown" ? "checking" : "down");
  document.querySelector('[data-testid="kpi-vpn"]').textContent = word;
  $("vpn-state").textContent = word;
  $("vpn-state").className = `badge ${{ up: "badge-green", down: "badge-red", checking: "badge-amber" }[word] || "badge-grey"}`;
  $("vpn-container").textContent = orDash(vpn && vpn.container_name);
  $("vpn-public-ip").textContent = orDash(vpn && vpn.public_ip);
  $("vpn-forwarded-port").textContent = vpn && vpn.enabled ? orDash(vpn.forwarded_port) : "–";
  $("vpn-last-check").textContent = vpn && vpn.last_check ? ago(vpn.last_check) : "Never";
  $("vpn-reason").textContent = vpn && vpn.reason && vpn.enabled ? vpn.reason : "";
}

async function refreshLooping() {
  let data;
  try { data = await read("/looping-streams"); } catch (e) {
    $("looping").replaceChildren();
    $("looping-empty").textContent = e.status === 503 ? "Loop detection is not running." : "None.";
    $("looping-empty").hidden = false;
    $("looping-clear").disabled = true;
    return;
  }
  const ids = data.stream_ids || [];
  $("looping").replaceChildren(...ids.map((id) => el("li", { "data-testid": "looping-row", "data-stream-id": id },
    el("span", {}, el("span", { class: "mono", title: id, text: shortKey(id) }), " ",
      el("span", { class: "empty", text: data.streams && data.streams[id] ? `since ${ago(data.streams[id])}` : "" })),
    el("button", { type: "button", text: "Remove", onclick: async () => {
      if (await write("DELETE", `/looping-streams/${encodeURIComponent(id)}`, "Remove looping stream")) { showMessage("Removed.", true); refreshLooping(); }
    } }))));
  $("looping-empty").textContent = "None.";
  $("looping-empty").hidden = ids.length > 0;
  $("looping-clear").disabled = ids.length === 0;
}

async function refreshChannels() {
  let channels;
  try { channels = await read("/channels"); } catch (e) {
    $("channels").replaceChildren();
    $("channels-empty").textContent = e.status === 404 ? "No channels (this acerelay has no channel list)." : "Channels could not be read.";
    $("channels-empty").hidden = false;
    return;
  }
  $("channels").replaceChildren(...channels.map((c) => {
    const sources = (c.sources || []).slice().sort((a, b) => (b.score ?? -Infinity) - (a.score ?? -Infinity));
    return el("tr", { "data-testid": "channel-row", "data-channel-id": c.id },
      el("td", {}, c.name || c.id),
      el("td", { text: orDash(c.group) }),
      el("td", { class: "sources" }, ...sources.map((s, i) => el("span", { class: "source", title: s.content_id },
        `${i + 1}. ${shortKey(s.content_id)} `, el("span", { class: "score", text: typeof s.score === "number" ? s.score.toFixed(2) : "–" }),
        s.reason ? el("span", { class: "reason", text: ` ${s.reason}` }) : null))));
  }));
  $("channels-empty").hidden = channels.length > 0;
}

async function loadLoopConfig() {
  try {
    const config = await read("/stream-loop-detection/config");
    $("loop-enabled").checked = !!config.enabled;
    $("loop-threshold").value = config.threshold_seconds;
    $("loop-interval").value = config.check_interval_seconds;
    $("loop-retention").value = config.retention_minutes;
    $("loop-note").hidden = true;
  } catch (e) {
    $("loop-note").textContent = e.status === 503 ? "Loop detection is not running." : "The settings could not be read.";
    $("loop-note").hidden = false;
  }
}

function setupForms() {
  $("loop-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const query = new URLSearchParams({
      enabled: String($("loop-enabled").checked),
      threshold_seconds: $("loop-threshold").value,
      check_interval_seconds: $("loop-interval").value,
      retention_minutes: $("loop-retention").value,
    });
    const saved = await write("POST", `/stream-loop-detection/config?${query}`, "Save loop detection");
    if (saved) { showMessage("Loop detection saved.", true); loadLoopConfig(); }
  });
  $("looping-clear").addEventListener("click", async () => {
    if (!window.confirm("Clear every looping stream? They may be played again.")) return;
    if (await write("POST", "/looping-streams/clear", "Clear looping streams")) { showMessage("Cleared.", true); refreshLooping(); }
  });
  window.addEventListener("resize", drawChart);
}

function slowRefresh() {
  refreshLooping();
  refreshChannels();
}

setupKey();
setupForms();
loadLoopConfig();
slowRefresh();
setInterval(slowRefresh, SLOW_REFRESH_MS);
// The first paint comes from the snapshot route, so the page shows data before the first SSE tick.
read("/panel/snapshot").then(render).catch(() => {});
connect();
watchSilence();
