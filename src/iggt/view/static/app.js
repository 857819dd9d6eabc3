// The page: runs, result list, the 3D view, instance table, input views, queries and downloads.
// Every tab keeps its own state here; the server keys runs and results by ID, so tabs never mix.
"use strict";

const $ = (selector) => document.querySelector(selector);
const state = { resultId: null, meta: null, points: null, labels: null, selected: 0, scores: {}, images: [] };
const renderer = new PointsRenderer($("#scene"));
window.iggtViewer = { state, renderer, timings: {} };

function showMessage(text, kind) {
  const box = $("#message");
  box.textContent = text; box.className = kind || ""; box.hidden = !text;
}

async function api(path, options) {
  const response = await fetch(path, options);
  if (!response.ok) {
    let text = `${response.status} ${response.statusText}`;
    try { text = (await response.json()).error || text; } catch (_) { /* not JSON */ }
    throw new Error(text);
  }
  return response;
}
const json = async (path, options) => (await api(path, options)).json();
const PAGE_HEADER = { "X-IGGT-Page": "1" };  // the server takes POSTs from this page only (server.py)
const postJson = (path, value) => json(path, { method: "POST", headers: { ...PAGE_HEADER, "Content-Type": "application/json" }, body: JSON.stringify(value) });

async function refreshResults() {
  const select = $("#result-select"), results = await json("/api/results");
  select.replaceChildren(new Option("open a result…", ""));
  for (const row of results) select.add(new Option(`${row.name} (${row.views} views, ${row.instances} instances)`, row.id));
  if (state.resultId) select.value = state.resultId;
  return results;
}

async function openResult(resultId) {
  const started = performance.now();
  document.body.dataset.ready = "";
  showMessage("");
  const binary = (name) => api(`/api/results/${resultId}/${name}`).then((r) => r.arrayBuffer());
  const [meta, points, labels, images, downloads] = await Promise.all([
    json(`/api/results/${resultId}/scene`), binary("points.bin"), binary("labels.bin"), binary("images.bin"),
    json(`/api/results/${resultId}/exports`),
  ]);
  const timings = window.iggtViewer.timings;
  timings.fetch_ms = performance.now() - started;
  Object.assign(state, { resultId, meta, points, labels: new Uint32Array(labels), images: new Uint8Array(images), selected: 0, scores: {}, ranking: null });
  renderer.selected = 0;
  renderer.setScene(meta, points);
  renderer.gl.finish();
  timings.first_frame_ms = performance.now() - started;
  $("#point-count").textContent = `${meta.num_points.toLocaleString()} of ${meta.num_pixels.toLocaleString()} pixels drawn`;
  $("#result-select").value = resultId;
  buildInstanceTable();
  buildViews();
  timings.views_ms = performance.now() - started;
  buildDownloads(downloads);
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));  // shown on screen
  timings.open_ms = performance.now() - started;
  document.body.dataset.ready = resultId;
}

function buildInstanceTable() {
  const body = $("#instance-table tbody");
  body.replaceChildren();
  for (const row of state.meta.instances) {
    const tr = document.createElement("tr");
    tr.dataset.id = row.id;
    tr.dataset.views = row.views.join(",");
    const score = state.scores[row.id];
    const cells = [`<span class="swatch" style="background: rgb(${row.colour.join(",")})"></span>`, row.id,
      "", row.pixels, row.views.join(" "), score === undefined ? "" : score.toFixed(3)];
    tr.innerHTML = cells.map((cell) => `<td>${cell}</td>`).join("");
    tr.children[2].textContent = row.label || "";  // labels are text, never markup
    tr.addEventListener("click", () => select(row.id));
    body.append(tr);
  }
  if (state.ranking) {  // the server's order (ties and rounding of the shown scores aside)
    const position = Object.fromEntries(state.ranking.map((row, index) => [row.id, index]));
    body.append(...[...body.children].sort((a, b) => position[a.dataset.id] - position[b.dataset.id]));
  }
}

function buildViews() {
  const container = $("#views");
  container.replaceChildren();
  const [height, width] = state.meta.image_size;
  state.meta.views.forEach((view, index) => {
    const figure = document.createElement("figure");
    figure.dataset.view = index;
    const canvas = document.createElement("canvas");
    canvas.width = width; canvas.height = height;
    canvas.addEventListener("click", (event) => {
      const rect = canvas.getBoundingClientRect();
      const x = Math.floor((event.clientX - rect.left) * width / rect.width), y = Math.floor((event.clientY - rect.top) * height / rect.height);
      const id = state.labels[index * width * height + y * width + x];
      id ? select(id) : showMessage(`pixel (${x}, ${y}) of ${view.name} belongs to no instance`, "info");
    });
    const caption = document.createElement("figcaption");
    caption.textContent = view.name;
    figure.append(canvas, caption);
    container.append(figure);
    drawView(index);
  });
}

function drawView(index) {
  const figure = document.querySelector(`figure[data-view="${index}"]`), canvas = figure.querySelector("canvas");
  const context = canvas.getContext("2d"), [height, width] = state.meta.image_size, offset = index * width * height;
  const pixels = context.createImageData(width, height), data = pixels.data, rgb = state.images;
  for (let p = 0; p < width * height; p++) {
    data[4 * p] = rgb[3 * (offset + p)]; data[4 * p + 1] = rgb[3 * (offset + p) + 1]; data[4 * p + 2] = rgb[3 * (offset + p) + 2]; data[4 * p + 3] = 255;
  }
  let highlighted = 0;
  if (state.selected) {
    const colour = state.meta.instances.find((row) => row.id === state.selected).colour;
    for (let p = 0; p < width * height; p++) {
      if (state.labels[offset + p] === state.selected) {
        highlighted++;
        for (let c = 0; c < 3; c++) data[4 * p + c] = 0.4 * data[4 * p + c] + 0.6 * colour[c];
      } else {
        for (let c = 0; c < 3; c++) data[4 * p + c] *= 0.35;
      }
    }
  }
  context.putImageData(pixels, 0, 0);
  figure.dataset.highlightPixels = highlighted;
}

async function select(id) {
  state.selected = id; renderer.selected = id; renderer.requestDraw();
  for (const tr of document.querySelectorAll("#instance-table tbody tr")) tr.classList.toggle("selected", Number(tr.dataset.id) === id);
  state.meta.views.forEach((_, index) => drawView(index));
  for (const figure of document.querySelectorAll("figure")) {
    figure.dataset.state = "";
    figure.querySelector("figcaption").textContent = state.meta.views[figure.dataset.view].name;
  }
  renderer.setBox(null);
  if (!id) return;
  document.body.dataset.track = "";
  const track = await json(`/api/results/${state.resultId}/track/${id}`);
  if (state.selected !== id) return;  // a later click won
  renderer.setBox(track.box.corners);
  for (const view of track.views) {
    const figure = document.querySelector(`figure[data-view="${view.view}"]`);
    figure.dataset.state = view.state;
    const caption = figure.querySelector("figcaption");
    caption.textContent = `${view.name}: `;
    const label = document.createElement("span");
    label.className = `state-${view.state}`; label.textContent = view.state.replaceAll("_", " ");
    caption.append(label);
  }
  document.body.dataset.track = id;
}

function buildDownloads(rows) {
  const list = $("#downloads");
  list.replaceChildren();
  for (const row of rows) {
    const link = document.createElement("a");
    link.href = `/api/results/${state.resultId}/download/${encodeURIComponent(row.name)}`;
    link.textContent = row.kind === "folder" ? `${row.name}/ (zip)` : row.name;
    link.dataset.name = row.name;
    link.download = row.kind === "folder" ? `${row.name}.zip` : row.name;
    const item = document.createElement("li");
    item.append(link, ` ${(row.bytes / 2 ** 20).toFixed(1)} MiB`);
    list.append(item);
  }
}

async function runJob(body) {
  const status = $("#job-status");
  document.body.dataset.job = "running";
  let job = await postJson("/api/jobs", body);
  while (job.state === "queued" || job.state === "running") {
    status.textContent = `${job.state}: ${job.stage} (${job.elapsed_s} s)`;
    await new Promise((resolve) => setTimeout(resolve, 400));
    job = await json(`/api/jobs/${job.job}`);
  }
  if (job.state === "failed") {
    status.textContent = "run failed";
    document.body.dataset.job = "failed";
    throw new Error(`the run failed: ${job.error}`);
  }
  status.textContent = `done in ${job.elapsed_s} s`;
  await refreshResults();
  await openResult(job.result);
  document.body.dataset.job = "done";
}

async function uploadAndRun() {
  const files = [...$("#upload-input").files];
  if (!files.length) throw new Error("choose images or a video first");
  const { batch } = await postJson("/api/uploads", {});
  for (const [index, file] of files.entries()) {
    $("#job-status").textContent = `uploading ${index + 1}/${files.length}`;
    try {
      await api(`/api/uploads/${batch}?name=${encodeURIComponent(file.name)}`, { method: "POST", headers: PAGE_HEADER, body: file });
    } catch (error) {
      $("#job-status").textContent = "upload refused";
      throw error;
    }
  }
  await runJob({ source: "upload", batch });
}

async function runQuery(event) {
  event.preventDefault();
  const text = $("#query-text").value;
  const reply = await postJson(`/api/results/${state.resultId}/query`, { text });
  state.scores = Object.fromEntries(reply.ranking.map((row) => [row.id, row.score]));
  state.ranking = reply.ranking;
  buildInstanceTable();
  const best = reply.ranking[0];
  $("#answer").textContent = `best match for “${text}”: instance ${best.id} (${best.score.toFixed(3)})`;
  document.body.dataset.query = best.id;
  await select(best.id);
}

async function runAsk(event) {
  event.preventDefault();
  const question = $("#ask-text").value;
  $("#answer").textContent = "asking…";
  const reply = await postJson(`/api/results/${state.resultId}/ask`, { question });
  $("#answer").textContent = `answer (${reply.mode}): instances ${reply.ids.join(", ") || "none"}. ${reply.notes.join(" ")}`;
  if (reply.ids.length) await select(reply.ids[0]);
}

// Errors of any action end up in the message box; the page stays usable.
const guarded = (action) => (event) => Promise.resolve(action(event)).catch((error) => {
  showMessage(error.message);
  document.body.dataset.error = error.message;
});

renderer.onPick = (id) => (id ? select(id) : select(0));
$("#run-example").addEventListener("click", guarded(() => runJob({ source: "example" })));
$("#run-upload").addEventListener("click", guarded(uploadAndRun));
$("#result-select").addEventListener("change", guarded((event) => event.target.value && openResult(event.target.value)));
$("#query-form").addEventListener("submit", guarded(runQuery));
$("#ask-form").addEventListener("submit", guarded(runAsk));
$("#colour-mode").addEventListener("change", (event) => { renderer.mode = Number(event.target.value); renderer.requestDraw(); });
$("#point-size").addEventListener("input", (event) => { renderer.pointSize = Number(event.target.value); renderer.requestDraw(); });
$("#confidence").addEventListener("input", (event) => {
  renderer.minConf = Number(event.target.value) / 100;
  $("#confidence-value").textContent = `${event.target.value}%`;
  renderer.requestDraw();
});

guarded(async () => {
  const [config, results] = await Promise.all([json("/api/config"), refreshResults()]);
  $("#run-example").disabled = !config.example;
  $("#ask-text").placeholder = config.endpoint ? "ask the chat model: e.g. where can I sit?" : `ask (grounded by ${config.backend}): e.g. where can I sit?`;
  const wanted = new URLSearchParams(location.search).get("result");
  const first = wanted || (results.length ? results[0].id : null);
  if (first) await openResult(first);
  document.body.dataset.loaded = "1";
})();
