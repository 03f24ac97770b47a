// astrolatent explorer: sliders over the latents, the decoded spectrum, its nearest real
// spectra and a latent-vs-label scatter. Plain DOM + SVG, no dependencies.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const COLORS = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#ff7f0e"];
const STEPS = 400;  // slider resolution
const MARGIN = { left: 56, right: 12, top: 10, bottom: 34 };

const state = {
  meta: null,
  z: [],
  sliders: [],          // dims that have a slider, in display order
  window: null,         // [lo, hi] in Angstrom, or null for the full range
  decoded: null,        // {wave, flux}
  neighbors: null,      // {wave, neighbors}
  scatter: null,        // {label, dim, ids, x, y}
  current: null,        // id of the spectrum whose latent position was loaded
};

const $ = (id) => document.getElementById(id);

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const payload = await response.json();
  if (!response.ok) throw new Error(payload.detail || response.statusText);
  return payload;
}

function showError(error) {
  const box = $("error");
  box.textContent = error ? String(error.message || error) : "";
  box.hidden = !error;
}

// Run `task` at most once at a time; calls made while it runs collapse into one more run.
function coalesce(task) {
  let running = false;
  let again = false;
  return async function run() {
    if (running) { again = true; return; }
    running = true;
    try {
      do { again = false; await task(); } while (again);
    } catch (error) {
      showError(error);
    } finally {
      running = false;
    }
  };
}

function debounce(fn, ms) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

// A number for people: 4 significant digits, exponent only when very large or small.
function fmt(v) {
  if (v === null || v === undefined) return "-";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  const digits = Math.max(0, 3 - Math.floor(Math.log10(a || 1)));
  return String(Number(v.toFixed(digits)));
}

// ---- drawing ---------------------------------------------------------------------------

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

// Round tick values between lo and hi, and a labeller with as many decimals as the step needs.
function niceTicks(lo, hi, count) {
  const span = hi - lo;
  if (!(span > 0)) return { ticks: [lo], label: fmt };
  const raw = span / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= count) || 10 * mag;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(t);
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const big = Math.max(Math.abs(lo), Math.abs(hi)) >= 1e6 || digits > 6;
  return { ticks, label: (t) => (big ? t.toExponential(2) : t.toFixed(digits)) };
}

function finiteRange(arrays) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const a of arrays) for (const v of a) {
    if (v !== null && Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
  }
  if (!Number.isFinite(lo)) return [0, 1];
  if (lo === hi) return [lo - 0.5, hi + 0.5];
  const pad = 0.05 * (hi - lo);
  return [lo - pad, hi + pad];
}

// Axes in `svg`; returns {x, y, invX, box} mapping data to pixels.
function axes(svg, xr, yr, xlabel, ylabel) {
  svg.replaceChildren();
  const w = svg.clientWidth || 800;
  const h = svg.clientHeight || 300;
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const box = { x0: MARGIN.left, x1: w - MARGIN.right, y0: MARGIN.top, y1: h - MARGIN.bottom };
  const x = (v) => box.x0 + ((v - xr[0]) / (xr[1] - xr[0])) * (box.x1 - box.x0);
  const y = (v) => box.y1 - ((v - yr[0]) / (yr[1] - yr[0])) * (box.y1 - box.y0);
  const invX = (px) => xr[0] + ((px - box.x0) / (box.x1 - box.x0)) * (xr[1] - xr[0]);
  const xt = niceTicks(xr[0], xr[1], 8);
  for (const t of xt.ticks) {
    el("line", { class: "grid", x1: x(t), x2: x(t), y1: box.y0, y2: box.y1 }, svg);
    el("text", { class: "xtick", x: x(t), y: box.y1 + 14, "text-anchor": "middle" }, svg).textContent = xt.label(t);
  }
  const yt = niceTicks(yr[0], yr[1], 6);
  for (const t of yt.ticks) {
    el("line", { class: "grid", x1: box.x0, x2: box.x1, y1: y(t), y2: y(t) }, svg);
    el("text", { x: box.x0 - 4, y: y(t) + 4, "text-anchor": "end" }, svg).textContent = yt.label(t);
  }
  el("rect", { x: box.x0, y: box.y0, width: box.x1 - box.x0, height: box.y1 - box.y0, fill: "none", class: "axis" }, svg);
  el("text", { x: (box.x0 + box.x1) / 2, y: box.y1 + 30, "text-anchor": "middle" }, svg).textContent = xlabel;
  el("text", { x: 12, y: (box.y0 + box.y1) / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${(box.y0 + box.y1) / 2})` }, svg).textContent = ylabel;
  return { x, y, invX, box };
}

// One polyline per run of finite values (masked pixels break the line).
function polyline(svg, map, wave, flux, attrs) {
  const group = el("g", attrs, svg);
  let points = [];
  const flush = () => {
    if (points.length > 1) el("polyline", { points: points.join(" ") }, group);
    points = [];
  };
  for (let i = 0; i < wave.length; i++) {
    if (flux[i] === null || wave[i] === null) { flush(); continue; }
    points.push(`${map.x(wave[i]).toFixed(1)},${map.y(flux[i]).toFixed(1)}`);
  }
  flush();
  return group;
}

function drawSpectrum() {
  const svg = $("spectrum-plot");
  if (!state.decoded) return;
  const showNeighbors = $("show-neighbors").checked && state.neighbors;
  const series = [state.decoded.flux];
  if (showNeighbors) for (const n of state.neighbors.neighbors) series.push(n.flux);
  const xr = state.window || [state.decoded.wave[0], state.decoded.wave[state.decoded.wave.length - 1]];
  const map = axes(svg, xr, finiteRange(series), "wavelength (\u00c5)", "normalised flux");
  if (showNeighbors) {
    state.neighbors.neighbors.forEach((n, i) => {
      polyline(svg, map, state.neighbors.wave, n.flux, {
        class: "series neighbor", stroke: COLORS[i % COLORS.length], "data-id": n.id,
      });
    });
  }
  polyline(svg, map, state.decoded.wave, state.decoded.flux, { class: "series decoded", id: "decoded-line" });
  svg.__map = map;
  $("legend").textContent =
    (state.current ? `black: decoded at the latent position of ${state.current}` : "black: decoded from the sliders") +
    (showNeighbors ? "; colours: nearest real spectra (table)" : "");
}

function drawScatter() {
  const svg = $("scatter-plot");
  const s = state.scatter;
  if (!s) return;
  const xr = finiteRange([s.x, [state.z[s.dim]]]);
  const map = axes(svg, xr, finiteRange([s.y]), `z${s.dim}`, s.label);
  const near = new Set(state.neighbors ? state.neighbors.neighbors.map((n) => n.id) : []);
  const x = map.x(state.z[s.dim]);
  el("line", { class: "marker", x1: x, x2: x, y1: map.box.y0, y2: map.box.y1 }, svg);
  const group = el("g", { id: "scatter-points" }, svg);
  const late = [];
  for (let i = 0; i < s.ids.length; i++) {
    const id = s.ids[i];
    const cls = id === state.current ? "point current" : near.has(id) ? "point near" : "point";
    const c = el("circle", { class: cls, cx: map.x(s.x[i]).toFixed(1), cy: map.y(s.y[i]).toFixed(1), r: cls === "point" ? 3 : 5, "data-id": id });
    el("title", {}, c).textContent = `${id}: z${s.dim}=${fmt(s.x[i])}, ${s.label}=${fmt(s.y[i])}`;
    if (cls === "point") group.appendChild(c); else late.push(c);
  }
  for (const c of late) group.appendChild(c);  // highlighted points on top
}

function drawNeighbors() {
  const body = $("neighbors").querySelector("tbody");
  body.replaceChildren();
  if (!state.neighbors) return;
  state.neighbors.neighbors.forEach((n, i) => {
    const row = body.insertRow();
    row.dataset.id = n.id;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = COLORS[i % COLORS.length];
    row.insertCell().appendChild(swatch);
    const cell = row.insertCell();
    cell.textContent = n.id;
    const labels = Object.entries(n.labels).map(([k, v]) => `${k}=${fmt(v)}`).join(", ");
    if (labels) {
      const small = document.createElement("div");
      small.className = "labels";
      small.textContent = labels;
      cell.appendChild(small);
    }
    row.insertCell().textContent = fmt(n.distance);
  });
}

// ---- requests --------------------------------------------------------------------------

function viewBody() {
  const svg = $("spectrum-plot");
  const width = Math.max(200, Math.round((svg.clientWidth || 800) * 2));
  return { window: state.window, max_points: Math.min(20000, width) };
}

const refreshDecoded = coalesce(async () => {
  const t0 = performance.now();
  state.decoded = await api("/api/decode", { z: state.z, ...viewBody() });
  $("timing").textContent = `decoded in ${Math.round(performance.now() - t0)} ms`;
  drawSpectrum();
  document.body.dataset.decodes = String(Number(document.body.dataset.decodes || 0) + 1);
  showError(null);
});

const refreshNeighbors = coalesce(async () => {
  const k = Math.max(1, Math.min(state.meta.max_neighbors, Number($("k").value) || 1));
  state.neighbors = await api("/api/neighbors", { z: state.z, k, ...viewBody() });
  drawNeighbors();
  drawSpectrum();
  drawScatter();
  document.body.dataset.neighbors = String(state.neighbors.neighbors.length);
  document.body.dataset.neighborUpdates = String(Number(document.body.dataset.neighborUpdates || 0) + 1);
});
const refreshNeighborsSoon = debounce(refreshNeighbors, 200);

const refreshScatter = coalesce(async () => {
  const label = $("scatter-label").value;
  if (!label) return;
  const dim = Number($("scatter-dim").value);
  state.scatter = await api(`/api/scatter?label=${encodeURIComponent(label)}&dim=${dim}`);
  drawScatter();
});

function latentChanged() {
  refreshDecoded();
  refreshNeighborsSoon();
  drawScatter();
}

// ---- sliders ---------------------------------------------------------------------------

function sliderRow(dim) {
  const info = state.meta.dims[dim];
  const tied = info.role === "tied";
  const row = document.createElement("div");
  row.className = "slider" + (info.informative ? " informative" : "") + (tied ? " tied" : "");
  const label = document.createElement("label");
  label.htmlFor = `slider-${dim}`;
  label.textContent = tied ? info.label : `z${dim}`;
  label.title = tied
    ? `z${dim}, tied to the known label ${info.label} (shown in its units)`
    : (info.informative ? "informative latent" : "latent the analysis found uninformative");
  const input = document.createElement("input");
  input.type = "range";
  input.id = `slider-${dim}`;
  // the slider runs over 0..STEPS; its position maps linearly onto [lo, hi]
  const lo = Math.min(info.lo, state.z[dim]);
  const hi = Math.max(info.hi, state.z[dim]);
  input.min = 0;
  input.max = STEPS;
  input.step = 1;
  input.value = Math.round(((state.z[dim] - lo) / (hi - lo)) * STEPS);
  input.dataset.lo = lo;
  input.dataset.hi = hi;
  const out = document.createElement("output");
  out.id = `value-${dim}`;
  out.htmlFor = input.id;
  // a tied latent reads in its label's units (label = mean + std * z); data-value is z
  const show = () => {
    const z = state.z[dim];
    out.textContent = tied ? fmt(info.label_mean + info.label_std * z) : fmt(z);
    out.dataset.value = z;
  };
  show();
  input.addEventListener("input", () => {
    state.z[dim] = lo + (Number(input.value) / STEPS) * (hi - lo);
    show();
    state.current = null;
    latentChanged();
  });
  const remove = document.createElement("button");
  remove.type = "button";
  remove.textContent = "\u00d7";
  remove.title = "remove this slider (the latent keeps its value)";
  remove.addEventListener("click", () => {
    state.sliders = state.sliders.filter((d) => d !== dim);
    renderSliders();
  });
  row.append(label, input, out, remove);
  return row;
}

// Tied latents (one per known label of the run) and free latents in two groups.
function renderSliders() {
  const box = $("sliders");
  box.replaceChildren();
  const groups = [
    ["tied", "known labels (tied latents)"],
    ["free", state.meta.tied.length ? "free latents (beyond the labels)" : null],
  ];
  for (const [role, title] of groups) {
    const dims = state.sliders.filter((d) => state.meta.dims[d].role === role);
    if (!dims.length) continue;
    const group = document.createElement("div");
    group.className = "slider-group";
    group.id = `sliders-${role}`;
    if (title) {
      const heading = document.createElement("h3");
      heading.textContent = title;
      group.appendChild(heading);
    }
    for (const dim of dims) group.appendChild(sliderRow(dim));
    box.appendChild(group);
  }
  const select = $("extra-dim");
  select.replaceChildren();
  for (const info of state.meta.dims) {
    if (state.sliders.includes(info.dim)) continue;
    const option = document.createElement("option");
    option.value = info.dim;
    const role = info.role === "tied" ? ` (${info.label})` : (info.informative ? " (informative)" : "");
    option.textContent = `z${info.dim}${role}`;
    select.appendChild(option);
  }
  $("add-dim").disabled = select.options.length === 0;
}

async function loadSpectrum(id) {
  try {
    const spectrum = await api(`/api/spectrum/${encodeURIComponent(id)}`);
    state.z = spectrum.z.slice();
    state.current = id;
    renderSliders();
    latentChanged();
    showError(null);
  } catch (error) {
    showError(error);
  }
}

// ---- set-up ----------------------------------------------------------------------------

function setupZoom() {
  const svg = $("spectrum-plot");
  let start = null;
  let rect = null;
  const px = (event) => {
    const bounds = svg.getBoundingClientRect();
    const scale = (svg.viewBox.baseVal.width || bounds.width) / bounds.width;
    return (event.clientX - bounds.left) * scale;
  };
  svg.addEventListener("mousedown", (event) => {
    if (!svg.__map) return;
    start = px(event);
    rect = el("rect", { class: "selection", x: start, y: svg.__map.box.y0, width: 0, height: svg.__map.box.y1 - svg.__map.box.y0 }, svg);
  });
  svg.addEventListener("mousemove", (event) => {
    if (start === null) return;
    const now = px(event);
    rect.setAttribute("x", Math.min(start, now));
    rect.setAttribute("width", Math.abs(now - start));
  });
  window.addEventListener("mouseup", (event) => {
    if (start === null) return;
    const end = px(event);
    const map = svg.__map;
    const [a, b] = [map.invX(Math.min(start, end)), map.invX(Math.max(start, end))];
    start = null;
    rect.remove();
    if (map.x(b) - map.x(a) > 5) setWindow([a, b]);
  });
  $("zoom").addEventListener("click", () => setWindow([Number($("wmin").value), Number($("wmax").value)]));
  $("unzoom").addEventListener("click", () => setWindow(null));
}

function setWindow(window) {
  const [w0, w1] = state.meta.wave_range;
  if (window) {
    const lo = Math.max(w0, Math.min(window[0], window[1]));
    const hi = Math.min(w1, Math.max(window[0], window[1]));
    window = hi > lo ? [lo, hi] : null;
  }
  state.window = window;
  $("wmin").value = (window ? window[0] : w0).toFixed(2);
  $("wmax").value = (window ? window[1] : w1).toFixed(2);
  return Promise.all([refreshDecoded(), refreshNeighbors()]);
}

function fillScatterControls() {
  const meta = state.meta;
  const labelSelect = $("scatter-label");
  for (const name of meta.labels) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name;
    labelSelect.appendChild(option);
  }
  const dimSelect = $("scatter-dim");
  for (const info of meta.dims) {
    const option = document.createElement("option");
    option.value = info.dim;
    const role = info.role === "tied" ? ` (${info.label})` : (info.informative ? " (informative)" : "");
    option.textContent = `z${info.dim}${role}`;
    dimSelect.appendChild(option);
  }
  const pickBest = () => {
    const best = meta.best_dims[labelSelect.value];
    dimSelect.value = best !== undefined ? best : (meta.informative[0] || 0);
  };
  pickBest();
  labelSelect.addEventListener("change", () => { pickBest(); refreshScatter(); });
  dimSelect.addEventListener("change", refreshScatter);
}

async function main() {
  try {
    state.meta = await api("/api/meta");
  } catch (error) {
    showError(error);
    return;
  }
  const meta = state.meta;
  $("run-name").textContent = meta.run;
  $("run-info").textContent =
    `${meta.n_spectra} spectra, ${meta.latent_dim} latents (informative: ` +
    `${meta.informative.map((d) => "z" + d).join(", ") || "none found"}), ` +
    (meta.tied.length
      ? `tied to known labels: ${meta.tied.map((d) => `${meta.dims[d].label} (z${d})`).join(", ")}, `
      : "") +
    `${meta.n_pixels} px from ${fmt(meta.wave_range[0])} to ${fmt(meta.wave_range[1])} \u00c5`;
  state.z = meta.dims.map((d) => d.median);
  // every tied latent, then the informative free ones
  const free = meta.informative.filter((d) => !meta.tied.includes(d));
  state.sliders = [...meta.tied, ...free];
  if (!state.sliders.length) state.sliders = [0];
  $("k").max = meta.max_neighbors;
  renderSliders();
  fillScatterControls();
  setupZoom();
  $("add-dim").addEventListener("click", () => {
    const dim = Number($("extra-dim").value);
    if (!state.sliders.includes(dim)) state.sliders.push(dim);
    renderSliders();
  });
  $("reset").addEventListener("click", () => {
    state.z = meta.dims.map((d) => d.median);
    state.current = null;
    renderSliders();
    latentChanged();
  });
  $("k").addEventListener("change", refreshNeighbors);
  $("show-neighbors").addEventListener("change", drawSpectrum);
  $("neighbors").addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-id]");
    if (row) loadSpectrum(row.dataset.id);
  });
  $("scatter-plot").addEventListener("click", (event) => {
    const id = event.target.getAttribute && event.target.getAttribute("data-id");
    if (id) loadSpectrum(id);
  });
  window.addEventListener("resize", debounce(() => { drawSpectrum(); drawScatter(); }, 150));
  await setWindow(null);
  await refreshScatter();
  document.body.dataset.state = "ready";
}

document.addEventListener("DOMContentLoaded", main);
