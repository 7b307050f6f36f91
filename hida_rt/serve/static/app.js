// hida_rt live sketch: webcam -> WS /v1/stream (JPEG frames) -> sketched frames on a canvas.
// Protocol (big-endian): client sends uint32 frame id + JPEG; server answers uint32 id, uint32 n,
// n bytes of JSON (faces, timings, dropped), then the sketched frame as JPEG. The server keeps only
// the newest frame, so this page may send at camera rate without a queue building up.
"use strict";

const SEND_FPS = 15;          // frames offered per second (the server drops what it cannot sketch)
const MAX_SIDE = 640;         // frames are sent at most this wide or high
const JPEG_QUALITY = 0.8;
const $ = (id) => document.getElementById(id);

const stats = { drawn: 0, fps: 0, latencyMs: null, serverMs: null, faces: null, dropped: 0, errors: 0,
                connected: false, lastError: null };
window.hidaStats = stats;  // read by tests and curious users

let apiKey = null;
let socket = null;
let cameraStream = null;
let sendTimer = null;
let nextId = 1;
const sentAt = new Map();    // frame id -> performance.now() when sent
const drawTimes = [];        // when the last frames were drawn, for FPS
const latencies = [];        // the last end-to-end latencies (sent -> drawn)
const grab = document.createElement("canvas");

function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function authHeaders() {
  return apiKey ? { Authorization: "Bearer " + apiKey } : {};
}

function b64url(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  bytes.forEach((b) => { bin += String.fromCharCode(b); });
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function currentStyle() {
  const choice = document.querySelector('input[name="style"]:checked').value;
  $("mix").hidden = choice !== "mix";
  if (choice !== "mix") return choice;
  const w = ["w1", "w2", "w3"].map((id) => Number($(id).value));
  if (w.every((x) => x === 0)) return "2";
  return w.join(",");
}

async function waitUntilReady() {
  for (;;) {
    try {
      const r = await fetch("/healthz");
      const body = await r.json();
      if (r.ok) return body;
      setStatus("server: " + (body.error || r.status) + " …");
    } catch (e) {
      setStatus("server unreachable, retrying …", true);
    }
    await new Promise((ok) => setTimeout(ok, 1000));
  }
}

function askForKey() {
  apiKey = sessionStorage.getItem("hidaApiKey");
  if (!apiKey) {
    apiKey = window.prompt("This sketch server needs its API key:") || "";
    sessionStorage.setItem("hidaApiKey", apiKey);
  }
}

async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setStatus("no camera API here (the page must come from localhost or https); the upload form still works", true);
    return false;
  }
  try {
    cameraStream = await navigator.mediaDevices.getUserMedia(
      { video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (e) {
    setStatus("camera refused or missing (" + e.name + "); the upload form still works", true);
    return false;
  }
  $("camera").srcObject = cameraStream;
  await $("camera").play().catch(() => {});
  $("toggle").textContent = "stop camera";
  return true;
}

function stopCamera() {
  clearInterval(sendTimer);
  sendTimer = null;
  if (cameraStream) cameraStream.getTracks().forEach((t) => t.stop());
  cameraStream = null;
  $("camera").srcObject = null;
  if (socket) socket.close(1000);
  socket = null;
  $("toggle").textContent = "start camera";
}

function connect() {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/stream";
  const protocols = apiKey ? ["hida.v1", "bearer." + b64url(apiKey)] : ["hida.v1"];
  const ws = new WebSocket(url, protocols);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => {
    stats.connected = true;
    ws.send(JSON.stringify({ style: currentStyle() }));
  };
  ws.onmessage = (event) => {
    if (typeof event.data === "string") onText(JSON.parse(event.data));
    else onFrame(event.data);
  };
  ws.onclose = (event) => {
    stats.connected = false;
    if (socket !== ws) return;  // stopped on purpose
    setStatus("stream closed (" + (event.reason || event.code) + "); reconnecting …", true);
    setTimeout(() => { if (socket === ws && cameraStream) socket = connect(); }, 1500);
  };
  return ws;
}

function onText(msg) {
  if (msg.error) {
    stats.errors += 1;
    stats.lastError = msg.error;
    setStatus("stream: " + msg.error, true);
  } else if (msg.hello) {
    setStatus("live · backend " + msg.backend + " · style " + msg.style);
  } else if (msg.style) {
    setStatus("live · style " + msg.style);
  }
}

async function onFrame(buffer) {
  const view = new DataView(buffer);
  const id = view.getUint32(0);
  const n = view.getUint32(4);
  const meta = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, n)));
  const bitmap = await createImageBitmap(new Blob([new Uint8Array(buffer, 8 + n)], { type: "image/jpeg" }));
  const canvas = $("sketch");
  if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
  }
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  bitmap.close();
  const now = performance.now();
  const sent = sentAt.get(id);
  for (const key of sentAt.keys()) if (key <= id) sentAt.delete(key);  // answered, or dropped by the server
  if (sent !== undefined) {
    latencies.push(now - sent);
    if (latencies.length > 20) latencies.shift();
  }
  drawTimes.push(now);
  while (drawTimes.length && now - drawTimes[0] > 2000) drawTimes.shift();
  stats.drawn += 1;
  stats.fps = drawTimes.length > 1 ? (drawTimes.length - 1) / ((now - drawTimes[0]) / 1000) : 0;
  stats.latencyMs = latencies.length ? latencies.reduce((a, b) => a + b, 0) / latencies.length : null;
  stats.serverMs = meta.timings.server;
  stats.faces = meta.faces;
  stats.dropped = meta.dropped;
  $("fps").textContent = stats.fps.toFixed(1);
  $("latency").textContent = stats.latencyMs === null ? "–" : stats.latencyMs.toFixed(0);
  $("server").textContent = stats.serverMs.toFixed(0);
  $("faces").textContent = String(meta.faces);
  $("dropped").textContent = String(meta.dropped);
}

function sendFrame() {
  const video = $("camera");
  if (!socket || socket.readyState !== WebSocket.OPEN || socket.bufferedAmount > 0) return;
  if (!video.videoWidth || video.readyState < 2) return;
  const scale = Math.min(1, MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
  grab.width = Math.round(video.videoWidth * scale);
  grab.height = Math.round(video.videoHeight * scale);
  grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
  const id = nextId++;
  grab.toBlob(async (blob) => {
    if (!blob || !socket || socket.readyState !== WebSocket.OPEN) return;
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, id);
    sentAt.set(id, performance.now());
    socket.send(await new Blob([header, blob]).arrayBuffer());
  }, "image/jpeg", JPEG_QUALITY);
}

async function startLive() {
  if (!(await startCamera())) return;
  socket = connect();
  sendTimer = setInterval(sendFrame, 1000 / SEND_FPS);
}

async function upload(event) {
  event.preventDefault();
  const form = new FormData();
  const [photo, depth] = [event.target.photo.files[0], event.target.depth.files[0]];
  form.append("photo", photo);
  if (depth) form.append("depth", depth);
  const out = $("upload-status");
  out.classList.remove("error");
  out.textContent = "sketching …";
  const t0 = performance.now();
  try {
    const r = await fetch("/v1/sketch?style=" + encodeURIComponent(currentStyle()),
                          { method: "POST", body: form, headers: authHeaders() });
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      throw new Error(body.error || "HTTP " + r.status);
    }
    const img = $("result");
    if (img.src) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(await r.blob());
    out.textContent = "done in " + (performance.now() - t0).toFixed(0) + " ms";
  } catch (e) {
    out.classList.add("error");
    out.textContent = e.message;
  }
}

function onStyleChange() {
  const style = currentStyle();
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ style }));
}

async function main() {
  $("upload").addEventListener("submit", upload);
  document.querySelectorAll('input[name="style"], #mix input').forEach((el) => el.addEventListener("change", onStyleChange));
  $("toggle").addEventListener("click", () => (cameraStream ? stopCamera() : startLive()));
  currentStyle();
  const health = await waitUntilReady();
  if (health.api_key_required) askForKey();
  setStatus("ready · backend " + health.backend + " · opening the camera …");
  await startLive();
}

main();
