// The radioloc web page: pick a deployment, click the map, see the estimate, its radii and the posterior.
// Plain JavaScript, no libraries: the page works on a machine that reaches nothing but the service.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("map");
const ctx = canvas.getContext("2d");
let view = null;       // GET /v1/deployments/{id}/view
let city = null;       // the building map image
let overlay = null;    // {image, origin_row_m, origin_col_m, size} of the last heatmap
let marks = {};        // truth and estimate of the last answer

function key() { return $("key").value.trim(); }
function status(text, isError) { $("status").textContent = text; $("status").className = isError ? "error" : ""; }

async function api(path, options) {
  const sep = path.includes("?") ? "&" : "?";
  const response = await fetch(`${path}${sep}key=${encodeURIComponent(key())}`, options);
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error(body?.error?.message || `HTTP ${response.status}`);
  return body;
}

function scale() { return canvas.width / Math.max(view.rows, view.cols); }
function toCanvas(row, col) { return [(col + 0.5) * scale(), (row + 0.5) * scale()]; }
function toGrid(x, y) { return [y / scale() - 0.5, x / scale() - 0.5]; }

// lat/lng of a grid point from the area's corners (bilinear: exact to centimetres across a few km)
function gridToLatLng(row, col) {
  const [nw, ne, se, sw] = view.corners;
  const u = (col + 0.5) / view.cols, v = (row + 0.5) / view.rows;
  const mix = (a, b, t) => a + (b - a) * t;
  const lat = mix(mix(nw.lat, ne.lat, u), mix(sw.lat, se.lat, u), v);
  const lng = mix(mix(nw.lng, ne.lng, u), mix(sw.lng, se.lng, u), v);
  return [lat, lng];
}

function draw() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!view) return;
  if (city) ctx.drawImage(city, 0, 0, view.cols * scale(), view.rows * scale());
  if (overlay) {
    const [x, y] = toCanvas(overlay.origin_row_m - 0.5, overlay.origin_col_m - 0.5);
    ctx.drawImage(overlay.image, x, y, overlay.size * scale(), overlay.size * scale());
  }
  for (const bs of view.stations) {
    const [x, y] = toCanvas(bs.row_m, bs.col_m);
    ctx.fillStyle = "#e63946";
    ctx.beginPath(); ctx.moveTo(x, y - 6); ctx.lineTo(x - 5, y + 4); ctx.lineTo(x + 5, y + 4); ctx.fill();
  }
  if (marks.truth) {
    const [x, y] = toCanvas(...marks.truth);
    ctx.fillStyle = "#2a9d8f"; ctx.beginPath(); ctx.arc(x, y, 5, 0, 2 * Math.PI); ctx.fill();
  }
  if (marks.estimate) {
    const [x, y] = toCanvas(marks.estimate.row_m, marks.estimate.col_m);
    ctx.strokeStyle = "#1d3557"; ctx.lineWidth = 2;
    ctx.setLineDash([]); ctx.beginPath(); ctx.arc(x, y, marks.estimate.accuracy_68 * scale(), 0, 2 * Math.PI); ctx.stroke();
    ctx.setLineDash([6, 4]); ctx.beginPath(); ctx.arc(x, y, marks.estimate.accuracy_95 * scale(), 0, 2 * Math.PI); ctx.stroke();
    ctx.setLineDash([]); ctx.fillStyle = "#1d3557"; ctx.beginPath(); ctx.arc(x, y, 5, 0, 2 * Math.PI); ctx.fill();
  }
}

async function connect() {
  try {
    const me = await api("/v1/whoami");
    const select = $("deployment");
    select.innerHTML = "";
    const ids = me.role === "admin" ? (await api("/v1/deployments")).filter((d) => d.state === "ready").map((d) => d.id) : [me.deployment_id];
    for (const id of ids.filter(Boolean)) select.add(new Option(id, id));
    if (!select.options.length) throw new Error("no deployment is ready for this key");
    localStorage.setItem("radioloc-key", key());
    await loadDeployment();
  } catch (error) { status(error.message, true); }
}

async function loadDeployment() {
  const id = $("deployment").value;
  view = await api(`/v1/deployments/${id}/view`);
  const localizers = $("localizer");
  localizers.innerHTML = "";
  for (const name of view.localizers) localizers.add(new Option(name, name));
  const response = await fetch(`/v1/deployments/${id}/city.png?key=${encodeURIComponent(key())}`);
  city = await createImageBitmap(await response.blob());
  overlay = null; marks = {};
  draw();
  status(`${view.name}: ${view.rows} x ${view.cols} m, ${view.stations.length} BSs. Click the map.`);
}

function parseReports() {
  const cells = [], pathloss = [];
  const power = new Map(view.stations.map((s) => [s.cellId, s.tx_power_dbm]));
  for (const line of $("reports").value.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const [cell, dbm] = line.split(",").map(Number);
    if (!Number.isInteger(cell) || !Number.isFinite(dbm)) throw new Error(`not 'cellId,dBm': ${line}`);
    cells.push(cell);
    pathloss.push(dbm - (power.get(cell) ?? 23));
  }
  if (!cells.length) throw new Error("no report to locate from");
  return { cells, pathloss_db: pathloss };
}

async function locate() {
  try {
    const report = parseReports();
    const body = { reports: [report], localizer: $("localizer").value, heatmap: true };
    const answer = await api(`/v1/deployments/${view.id}/locate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const result = answer.results[0];
    if (result.error) throw new Error(result.error);
    marks.estimate = result;
    if (answer.heatmap) {
      const image = new Image();
      image.src = `data:image/png;base64,${answer.heatmap.png_base64}`;
      await image.decode();
      overlay = { image, ...answer.heatmap };
    }
    const error = marks.truth ? Math.hypot(result.row_m - marks.truth[0], result.col_m - marks.truth[1]) : null;
    $("answer").innerHTML = `<table id="estimate">
      <tr><td>estimate</td><td>${result.lat.toFixed(6)}, ${result.lng.toFixed(6)}</td></tr>
      <tr><td>68 % radius</td><td>${result.accuracy_68.toFixed(1)} m</td></tr>
      <tr><td>95 % radius</td><td>${result.accuracy_95.toFixed(1)} m</td></tr>
      ${error === null ? "" : `<tr><td>error</td><td>${error.toFixed(1)} m</td></tr>`}
      <tr><td>localizer</td><td>${answer.localizer}, ${answer.ms.toFixed(1)} ms</td></tr></table>`;
    draw();
    status("located");
  } catch (error) { status(error.message, true); }
}

canvas.addEventListener("click", async (event) => {
  if (!view) return;
  const rect = canvas.getBoundingClientRect();
  const [row, col] = toGrid((event.clientX - rect.left) * canvas.width / rect.width, (event.clientY - rect.top) * canvas.height / rect.height);
  const [lat, lng] = gridToLatLng(row, col);
  try {
    const heard = await api(`/v1/deployments/${view.id}/reports?lat=${lat}&lng=${lng}`);
    if (!heard.cellTowers.length) throw new Error("a phone there hears no BS");
    marks = { truth: [heard.row_m, heard.col_m] };
    $("reports").value = heard.cellTowers.slice(0, 8).map((t) => `${t.cellId},${t.signalStrength}`).join("\n");
    await locate();
  } catch (error) { status(error.message, true); }
});
$("connect").addEventListener("click", connect);
$("deployment").addEventListener("change", () => loadDeployment().catch((e) => status(e.message, true)));
$("locate").addEventListener("click", locate);
$("key").value = new URLSearchParams(location.search).get("key") || localStorage.getItem("radioloc-key") || "";
if (key()) connect();
