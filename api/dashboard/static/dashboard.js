// claw-pipeline dashboard: live numbers and charts on top of server-rendered pages.
// Every page works without this script; it only refreshes what the server rendered.
"use strict";

(function () {
  const prefix = document.body.dataset.prefix || "/dashboard";

  async function getJson(path) {
    const response = await fetch(prefix + path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.status === 401) { window.location.reload(); return null; }  // session gone: the page redirects to login
    if (!response.ok) throw new Error(path + ": HTTP " + response.status);
    return response.json();
  }

  function every(seconds, fn) {
    let busy = false;
    const run = async () => {
      if (busy || document.hidden) return;
      busy = true;
      try { await fn(); } catch (error) { console.warn(error); } finally { busy = false; }
    };
    run();
    return window.setInterval(run, seconds * 1000);
  }

  // -- overview ---------------------------------------------------------------------------

  function lookup(data, path) {
    return path.split("|").reduce((value, key) => (value == null ? value : value[key]), data);
  }

  function show(element, value) {
    if (element.dataset.format === "rate") value = value == null ? null : Number(value).toFixed(1);
    element.textContent = value == null ? "—" : String(value);
  }

  function cssColor(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
  }

  // A canvas sized for the screen's pixel density; returns its context and CSS size.
  function surface(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth, height = canvas.clientHeight;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const context = canvas.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);
    context.font = "11px system-ui, sans-serif";
    return { context, width, height };
  }

  const PAD = { left: 34, right: 8, top: 8, bottom: 18 };

  function axes(context, width, height, maxValue, label) {
    context.strokeStyle = cssColor("--line");
    context.fillStyle = cssColor("--muted");
    context.beginPath();
    context.moveTo(PAD.left, PAD.top);
    context.lineTo(PAD.left, height - PAD.bottom);
    context.lineTo(width - PAD.right, height - PAD.bottom);
    context.stroke();
    context.textAlign = "right";
    context.fillText(label(maxValue), PAD.left - 4, PAD.top + 8);
    context.fillText(label(0), PAD.left - 4, height - PAD.bottom);
    context.textAlign = "left";
    context.fillText("−60 min", PAD.left, height - 4);
    context.textAlign = "right";
    context.fillText("now", width - PAD.right, height - 4);
  }

  function drawThroughput(canvas, series) {
    const { context, width, height } = surface(canvas);
    const states = [["SUCCESS", cssColor("--success")], ["FAILURE", cssColor("--failure")], ["CANCELLED", cssColor("--cancelled")]];
    const totals = series.map((p) => states.reduce((sum, [s]) => sum + p[s], 0));
    const maxValue = Math.max(1, ...totals);
    axes(context, width, height, maxValue, (v) => String(v));
    const plotWidth = width - PAD.left - PAD.right, plotHeight = height - PAD.top - PAD.bottom;
    const slot = plotWidth / Math.max(1, series.length);
    series.forEach((point, i) => {
      let y = height - PAD.bottom;
      for (const [state, color] of states) {
        const h = (point[state] / maxValue) * plotHeight;
        if (h > 0) {
          context.fillStyle = color;
          context.fillRect(PAD.left + i * slot + 1, y - h, Math.max(1, slot - 2), h);
          y -= h;
        }
      }
    });
  }

  function drawFailureRate(canvas, series) {
    const { context, width, height } = surface(canvas);
    axes(context, width, height, 100, (v) => v + "%");
    const plotWidth = width - PAD.left - PAD.right, plotHeight = height - PAD.top - PAD.bottom;
    const slot = plotWidth / Math.max(1, series.length);
    context.strokeStyle = cssColor("--failure");
    context.fillStyle = cssColor("--failure");
    context.lineWidth = 2;
    context.beginPath();
    let drawing = false;
    series.forEach((point, i) => {
      const finished = point.SUCCESS + point.FAILURE;
      if (!finished) { drawing = false; return; }  // no finished task that minute: a gap, not 0%
      const x = PAD.left + (i + 0.5) * slot;
      const y = height - PAD.bottom - (point.FAILURE / finished) * plotHeight;
      if (drawing) context.lineTo(x, y); else context.moveTo(x, y);
      context.fillRect(x - 1.5, y - 1.5, 3, 3);
      drawing = true;
    });
    context.stroke();
  }

  function overview(root) {
    let latest = null;
    const draw = () => {
      if (!latest) return;
      drawThroughput(document.getElementById("chart-throughput"), latest.series);
      drawFailureRate(document.getElementById("chart-failures"), latest.series);
    };
    every(5, async () => {
      const data = await getJson("/api/overview");
      if (!data) return;
      latest = data;
      root.querySelectorAll("[data-bind]").forEach((element) => show(element, lookup(data, element.dataset.bind)));
      root.querySelectorAll("[data-show-if]").forEach((element) => { element.hidden = !lookup(data, element.dataset.showIf); });
      draw();
    });
    window.addEventListener("resize", draw);
  }

  // -- one task ---------------------------------------------------------------------------

  function task(root) {
    if (root.dataset.final === "yes") return;
    const timer = every(2, async () => {
      const record = await getJson("/api/tasks/" + encodeURIComponent(root.dataset.liveTask));
      if (!record) return;
      if (record.state !== root.dataset.state) {  // a new state brings new sections and buttons: re-render
        window.clearInterval(timer);
        window.location.reload();
        return;
      }
      const progress = record.progress || {};
      const bar = root.querySelector('[data-task-field="progress"]');
      const text = root.querySelector('[data-task-field="progress_text"]');
      if (bar) bar.value = progress.percent || 0;
      if (text) text.textContent = Math.round(progress.percent || 0) + "% " + (progress.message || "");
    });
  }

  // -- workers ----------------------------------------------------------------------------

  function workers(root) {
    const shown = root.dataset.liveWorkers.trim().split(/\s+/).filter(Boolean).sort().join(" ");
    const timer = every(3, async () => {
      const data = await getJson("/api/workers");
      if (data && data.workers.join(" ") !== shown) {
        window.clearInterval(timer);
        window.location.reload();
      }
    });
  }

  // -- times -----------------------------------------------------------------------------

  // The server writes UTC; each <time datetime> is shown in the browser's time zone, UTC stays in the tooltip.
  function pad(n) { return String(n).padStart(2, "0"); }

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach((element) => {
      const at = new Date(element.getAttribute("datetime"));
      if (Number.isNaN(at.getTime())) return;
      const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
      element.textContent = at.getFullYear() + "-" + pad(at.getMonth() + 1) + "-" + pad(at.getDate()) + " " +
        pad(at.getHours()) + ":" + pad(at.getMinutes()) + ":" + pad(at.getSeconds());
      element.dataset.zone = zone;
      element.title = element.title + " · shown in " + zone;
    });
  }

  // -- lists ------------------------------------------------------------------------------

  function selectAll(box) {
    box.addEventListener("change", () => {
      box.closest("table").querySelectorAll('tbody input[type="checkbox"]').forEach((item) => { item.checked = box.checked; });
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    localTimes(document);
    const live = document.querySelector('[data-live="overview"]');
    if (live) overview(live);
    const oneTask = document.querySelector("[data-live-task]");
    if (oneTask) task(oneTask);
    const workerList = document.querySelector("[data-live-workers]");
    if (workerList) workers(workerList);
    document.querySelectorAll("[data-select-all]").forEach(selectAll);
  });
})();
