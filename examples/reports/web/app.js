// The page: one SSE stream (/events) brings the recent reports, every
// status change and the per-plan figures each second; the form POSTs to
// /reports. No framework, no build step.
"use strict";

const PLANS = ["paid", "free", "cron"];
const COLORS = { paid: "#2563eb", free: "#16a34a", cron: "#d97706" };
const MAX_ROWS = 50;
const HISTORY = 120; // chart points, one a second

const reports = new Map(); // id → report, as the stream last said
const series = { latency: [], depth: [] }; // {at, paid, free, cron}

function $(sel) { return document.querySelector(sel); }

function fmtMs(ms) {
  if (!ms) return "–";
  return ms < 1000 ? Math.round(ms) + " ms" : (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
}

function fmtTime(iso) {
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour12: false });
}

// ---- the recent reports table ----

function latencyOf(r) {
  if (r.state !== "sent" && r.state !== "failed") return "";
  return fmtMs(new Date(r.updated_at) - new Date(r.accepted_at));
}

function renderRow(tr, r) {
  tr.dataset.id = r.id;
  tr.dataset.state = r.state;
  tr.dataset.plan = r.plan;
  const cells = [
    ["id", r.id], ["user", r.user], ["plan", r.plan], ["kind", r.kind], ["state", null],
    ["attempts", String(r.attempts)], ["accepted", fmtTime(r.accepted_at)], ["latency", latencyOf(r)],
  ];
  if (tr.children.length === 0) {
    for (const [cls] of cells) {
      const td = document.createElement("td");
      td.className = cls;
      tr.appendChild(td);
    }
  }
  cells.forEach(([cls, text], i) => {
    const td = tr.children[i];
    if (cls === "state") {
      td.replaceChildren();
      const badge = document.createElement("span");
      badge.className = "state";
      badge.dataset.state = r.state;
      badge.textContent = r.state;
      if (r.error) badge.title = r.error;
      td.appendChild(badge);
    } else {
      td.textContent = text;
    }
  });
}

function upsert(r) {
  reports.set(r.id, r);
  const body = $("#report-rows");
  let tr = body.querySelector(`tr[data-id="${CSS.escape(r.id)}"]`);
  if (!tr) {
    tr = document.createElement("tr");
    // Newest first, by acceptance time.
    let before = null;
    for (const row of body.children) {
      const other = reports.get(row.dataset.id);
      if (other && new Date(other.accepted_at) <= new Date(r.accepted_at)) { before = row; break; }
    }
    body.insertBefore(tr, before);
    while (body.children.length > MAX_ROWS) {
      const last = body.lastElementChild;
      reports.delete(last.dataset.id);
      last.remove();
    }
  }
  renderRow(tr, r);
  $("#recent-count").textContent = `(${body.children.length} shown)`;
}

// ---- the per-plan table and the charts ----

function renderStats(doc) {
  const point = { at: new Date(doc.at) };
  const depth = { at: point.at };
  for (const p of doc.plans) {
    const tr = document.getElementById("plan-" + p.plan);
    if (!tr) continue;
    const set = (field, text) => { tr.querySelector(`[data-field="${field}"]`).textContent = text; };
    set("waiting", String(p.waiting));
    set("p50", fmtMs(p.p50_ms));
    set("p95", fmtMs(p.p95_ms));
    set("sent", String(p.sent));
    set("failed", String(p.failed));
    set("per_minute", p.per_minute.toFixed(1));
    set("hold", fmtMs(p.hold_ms));
    const wip = tr.querySelector('[data-field="wip"]');
    wip.querySelector(".wiptext").textContent = `${p.wip.in_use}/${p.wip.limit}`;
    wip.querySelector(".bar > span").style.width = Math.min(100, 100 * p.wip.in_use / p.wip.limit) + "%";
    wip.dataset.inUse = p.wip.in_use;
    wip.dataset.limit = p.wip.limit;
    point[p.plan] = p.p95_ms / 1000;
    depth[p.plan] = p.waiting;
  }
  const mins = Math.round(doc.window_seconds / 60);
  $("#window-note").textContent = `Latency and counts over the last ${mins} minute${mins === 1 ? "" : "s"}; WIP and queued are now.`;
  for (const [name, pt] of [["latency", point], ["depth", depth]]) {
    series[name].push(pt);
    if (series[name].length > HISTORY) series[name].shift();
  }
  drawChart($("#chart-latency"), series.latency, 1, tickLabel);
  drawChart($("#chart-depth"), series.depth, 4, tickLabel);
}

// drawChart draws one line per plan; the y axis starts at 0 and reaches at
// least minMax.
function drawChart(canvas, points, minMax, label) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
  if (canvas.width !== w * dpr) { canvas.width = w * dpr; canvas.height = h * dpr; }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const left = 34, right = 8, top = 8, bottom = 18;
  let maxV = 0;
  for (const pt of points) for (const p of PLANS) maxV = Math.max(maxV, pt[p] || 0);
  maxV = niceCeil(Math.max(maxV, minMax));
  ctx.font = "10px system-ui, sans-serif";
  ctx.fillStyle = "#6b7280";
  ctx.strokeStyle = "#e5e7eb";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = top + (h - top - bottom) * (1 - i / 4);
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(w - right, y); ctx.stroke();
    ctx.fillText(label(maxV * i / 4), 2, y + 3);
  }
  ctx.fillText(`last ${HISTORY} s`, w - right - 52, h - 4);
  const xOf = (i) => left + (w - left - right) * (i + HISTORY - points.length) / (HISTORY - 1);
  const yOf = (v) => top + (h - top - bottom) * (1 - v / maxV);
  ctx.lineWidth = 2;
  for (const p of PLANS) {
    ctx.strokeStyle = COLORS[p];
    ctx.beginPath();
    points.forEach((pt, i) => {
      const x = xOf(i), y = yOf(pt[p] || 0);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
}

function tickLabel(v) {
  return Number.isInteger(v) ? String(v) : v.toFixed(v < 1 ? 2 : 1);
}

function niceCeil(v) {
  const e = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * e) return m * e;
  return 10 * e;
}

// ---- the stream ----

function connect() {
  const es = new EventSource("/events");
  const conn = $("#connection");
  es.onopen = () => { conn.dataset.state = "live"; conn.textContent = "live"; };
  es.onerror = () => { conn.dataset.state = "lost"; conn.textContent = "reconnecting…"; };
  es.addEventListener("snapshot", (e) => {
    const d = JSON.parse(e.data);
    $("#report-rows").replaceChildren();
    reports.clear();
    for (const r of d.reports.slice().reverse()) upsert(r);
  });
  es.addEventListener("status", (e) => upsert(JSON.parse(e.data).report));
  es.addEventListener("stats", (e) => renderStats(JSON.parse(e.data)));
}

// ---- requests ----

async function submit(body) {
  const resp = await fetch("/reports", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await resp.json().catch(() => ({}));
  if (resp.status !== 202) throw new Error(data.error || resp.statusText);
  return data;
}

function showResult(text, isError) {
  const el = $("#submit-result");
  el.textContent = text;
  el.classList.toggle("error", !!isError);
}

document.addEventListener("DOMContentLoaded", () => {
  connect();
  $("#submit-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { user: $("#user").value, plan: $("#plan").value, kind: $("#kind").value };
    try {
      const r = await submit(body);
      showResult(`Accepted ${r.id} (${body.plan}): follow it below or at ${r.status_url}`);
      $("#submit-result").dataset.lastId = r.id;
    } catch (err) {
      showResult("Refused: " + err.message, true);
    }
  });
  for (const btn of document.querySelectorAll("button[data-burst]")) {
    btn.addEventListener("click", async () => {
      const p = btn.dataset.burst, n = Number(btn.dataset.count);
      try {
        for (let i = 0; i < n; i++) {
          await submit({ user: `${p}-burst-${i + 1}`, plan: p, kind: "usage" });
        }
        showResult(`Accepted ${n} ${p} report${n === 1 ? "" : "s"}.`);
      } catch (err) {
        showResult("Refused: " + err.message, true);
      }
    });
  }
});
