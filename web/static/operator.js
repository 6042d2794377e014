// gtvision operator page: log in, then a live feed of plate passes and hotlist alerts over SSE.
// Plain browser JavaScript, no build step. Tokens live in sessionStorage (this tab only).
"use strict";

const TYPES = "lpr.detected,alert.triggered";
const MAX_CARDS = 200;
const $ = (id) => document.getElementById(id);

const session = {
  get access() { return sessionStorage.getItem("gtv.access"); },
  get refresh() { return sessionStorage.getItem("gtv.refresh"); },
  save(tokens) {
    sessionStorage.setItem("gtv.access", tokens.access_token);
    sessionStorage.setItem("gtv.refresh", tokens.refresh_token);
  },
  clear() { sessionStorage.removeItem("gtv.access"); sessionStorage.removeItem("gtv.refresh"); },
};

let source = null;
let lastEventId = "";
const shown = new Map(); // event id -> card element
const counts = { plates: 0, alerts: 0 };

async function api(path, options = {}, retry = true) {
  const headers = { "Accept": "application/json", ...(options.headers || {}) };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (session.access) headers["Authorization"] = `Bearer ${session.access}`;
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401 && retry && session.refresh) {
    if (await refreshTokens()) return api(path, options, false);
  }
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
    const err = new Error(detail);
    err.status = response.status;
    throw err;
  }
  return response.status === 204 ? null : response.json();
}

async function refreshTokens() {
  try {
    const tokens = await fetch("/auth/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: session.refresh }),
    });
    if (!tokens.ok) { session.clear(); return false; }
    session.save(await tokens.json());
    return true;
  } catch (_) {
    return false;
  }
}

function setStatus(text, on) {
  const el = $("status");
  el.textContent = text;
  el.className = `status ${on ? "on" : "off"}`;
}

function fmtTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString();
}

async function attachCrop(img, eventId) {
  try {
    const detail = await api(`/events/${encodeURIComponent(eventId)}`);
    const url = detail.crop_url || (detail.urls && detail.urls.crop);
    if (url) { img.src = url; img.classList.remove("pending"); }
  } catch (_) { /* the card stays without picture */ }
}

const cameraNames = new Map(); // camera id -> name

function listOf(body) {
  return Array.isArray(body) ? body : (body && body.items) || [];
}

async function loadCameras(city) {
  const select = $("live-camera");
  select.replaceChildren();
  try {
    const query = city === null ? "" : `?city_id=${city}`;
    for (const cam of listOf(await api(`/cameras${query}`))) {
      cameraNames.set(cam.id, cam.name);
      if (cam.enabled === false) continue;
      const option = document.createElement("option");
      option.value = String(cam.id);
      option.textContent = cam.name;
      select.append(option);
    }
  } catch (_) { /* ids are shown instead of names */ }
  $("live").hidden = select.options.length === 0;
}

// Live video: WebRTC from the API's relay (POST /cameras/{id}/webrtc; offer with all
// candidates gathered, the server does not trickle).
let livePc = null;

function stopLive(text = "") {
  if (livePc) { livePc.close(); livePc = null; }
  const video = $("live-video");
  video.srcObject = null;
  video.hidden = true;
  $("live-watch").textContent = "Watch";
  $("live-status").textContent = text;
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 3000); // use what was gathered by then
  });
}

async function watchLive() {
  if (livePc) { stopLive(); return; }
  const camera = $("live-camera").value;
  if (!camera) return;
  const pc = new RTCPeerConnection({ iceServers: [] });
  livePc = pc;
  $("live-watch").textContent = "Stop";
  $("live-status").textContent = "connecting…";
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.ontrack = (ev) => {
    const video = $("live-video");
    video.srcObject = ev.streams[0] || new MediaStream([ev.track]);
    video.hidden = false;
  };
  pc.onconnectionstatechange = () => {
    if (pc !== livePc) return;
    if (pc.connectionState === "connected") $("live-status").textContent = "live";
    if (pc.connectionState === "failed") stopLive("connection lost");
  };
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const answer = await api(`/cameras/${camera}/webrtc`, {
      method: "POST",
      body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp }),
    });
    if (pc === livePc) await pc.setRemoteDescription(answer);
  } catch (err) {
    if (pc === livePc) stopLive(err.message);
  }
}

// The latest stored passes and alerts, so the page is not empty until the next car.
async function loadRecent(city) {
  const base = city === null ? "" : `&city_id=${city}`;
  const rows = [];
  for (const [type, limit] of [["lpr.detected", 15], ["alert.triggered", 5]]) {
    try {
      rows.push(...listOf(await api(`/events?type=${type}&limit=${limit}${base}`)));
    } catch (_) { /* live events still arrive */ }
  }
  rows.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
  for (const row of rows) {
    const event = typeof row.payload === "string" ? JSON.parse(row.payload) : row.payload;
    if (event && event.id) addCard(event, row.crop_url || null, false);
  }
}

function addCard(event, cropUrl = null, fresh = true) {
  if (shown.has(event.id)) return;
  const isAlert = event.type === "alert.triggered";
  const card = $("card").content.firstElementChild.cloneNode(true);
  card.dataset.eventId = event.id;
  card.dataset.type = event.type;
  card.dataset.ts = String(event.last_seen || event.ts || "");
  card.classList.add(isAlert ? "alert" : "pass");
  if (fresh) card.classList.add("fresh");
  card.querySelector(".plate").textContent = event.plate || "?";
  const camera = cameraNames.get(event.camera_id) || `camera ${event.camera_id}`;
  if (isAlert) {
    const m = event.match || {};
    card.querySelector(".meta").textContent =
      `${fmtTime(event.ts)} · ${camera} · ${m.kind || ""} match on ${m.pattern || ""}`;
    card.querySelector(".reason").textContent =
      `${m.reason || "hotlist"}${m.priority ? ` (priority ${m.priority})` : ""}`;
    counts.alerts += 1;
  } else {
    const conf = typeof event.confidence === "number" ? ` · ${(event.confidence * 100).toFixed(0)}%` : "";
    card.querySelector(".meta").textContent =
      `${fmtTime(event.last_seen || event.ts)} · ${camera}${conf} · ${event.reads || 1} reads`;
    counts.plates += 1;
  }
  const img = card.querySelector(".crop");
  img.classList.add("pending");
  if (cropUrl) { img.src = cropUrl; img.classList.remove("pending"); } else if (event.crop_key) attachCrop(img, event.id);
  shown.set(event.id, card);
  const feed = $("feed");
  // newest first, also for events that arrive late (history loaded after a reconnect)
  const after = [...feed.children].find((c) => c.dataset.ts < card.dataset.ts);
  feed.insertBefore(card, after || null);
  while (feed.children.length > MAX_CARDS) {
    const old = feed.lastElementChild;
    shown.delete(old.dataset.eventId);
    old.remove();
  }
  $("empty").hidden = true;
  $("count-plates").textContent = String(counts.plates);
  $("count-alerts").textContent = String(counts.alerts);
  setTimeout(() => card.classList.remove("fresh"), 1500);
}

async function streamCity(me) {
  if (me.city_id !== null && me.city_id !== undefined) return me.city_id;
  const cities = await api("/cities");
  const list = Array.isArray(cities) ? cities : (cities.items || []);
  return list.length ? list[0].id : null;
}

async function connect(me, city) {
  if (source) { source.close(); source = null; }
  let url;
  try {
    const { token } = await api("/auth/stream-token", { method: "POST" });
    const params = new URLSearchParams({ types: TYPES, token });
    if (me.role === "admin" && city !== null) params.set("city_id", String(city));
    url = `/stream/events?${params}`;
  } catch (err) {
    if (err.status === 401) { logout(); return; }
    setStatus("reconnecting…", false);
    setTimeout(() => connect(me, city), 3000);
    return;
  }
  source = new EventSource(url);
  let opened = false;
  source.onopen = () => {
    setStatus("live", true);
    // after a reconnect with a new stream token, fetch what was stored in between
    if (opened || shown.size) loadRecent(me.role === "admin" ? city : null);
    opened = true;
  };
  const onEvent = (msg) => {
    if (msg.lastEventId) lastEventId = msg.lastEventId;
    try { addCard(JSON.parse(msg.data)); } catch (_) { /* heartbeat or foreign data */ }
  };
  source.onmessage = onEvent;
  for (const type of TYPES.split(",")) source.addEventListener(type, onEvent);
  source.onerror = () => {
    setStatus("reconnecting…", false);
    if (source && source.readyState === EventSource.CLOSED) {
      source = null;
      setTimeout(() => connect(me, city), 2000); // the stream token may have expired: get a new one
    }
  };
}

async function start() {
  let me;
  try {
    me = await api("/me");
  } catch (_) {
    showLogin();
    return;
  }
  $("login").hidden = true;
  $("feed-panel").hidden = false;
  $("who").hidden = false;
  $("username").textContent = `${me.username} (${me.role})`;
  let city = me.city_id ?? null;
  try { city = await streamCity(me); } catch (_) { /* keep the user's own city */ }
  await loadCameras(me.role === "admin" ? city : null);
  connect(me, city);
  await loadRecent(me.role === "admin" ? city : null);
}

function showLogin() {
  $("login").hidden = false;
  $("feed-panel").hidden = true;
  $("who").hidden = true;
  setStatus("not connected", false);
}

function logout() {
  stopLive();
  const refresh = session.refresh;
  if (source) { source.close(); source = null; }
  if (refresh) {
    api("/auth/logout", { method: "POST", body: JSON.stringify({ refresh_token: refresh }) }, false)
      .catch(() => {});
  }
  session.clear();
  showLogin();
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  try {
    const tokens = await api("/auth/login", {
      method: "POST",
      body: JSON.stringify({ username: $("login-user").value, password: $("login-password").value }),
    }, false);
    session.save(tokens);
    $("login-password").value = "";
    start();
  } catch (err) {
    $("login-error").textContent = err.message;
  }
});
$("logout").addEventListener("click", logout);
$("live-watch").addEventListener("click", watchLive);
$("live-camera").addEventListener("change", () => { if (livePc) { stopLive(); watchLive(); } });

if (session.access) start(); else showLogin();
