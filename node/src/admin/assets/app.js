// The IFS node dashboard: reads /api/* only, renders, refreshes every 5 s.
"use strict";

const REFRESH_MS = 5000;
// Beyond loopback the API asks for a token: open the page as /#token=...
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const headers = token ? { Authorization: "Bearer " + token } : {};
let sortKey = "state", sortAsc = true, peerRows = [];

const $ = (id) => document.getElementById(id);

function bytes(n) {
  if (n == null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0, v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)) + " " + units[i];
}

function duration(s) {
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  if (d) return d + "d " + h + "h";
  if (h) return h + "h " + m + "m";
  if (m) return m + "m " + (s % 60) + "s";
  return s + "s";
}

// Text and the exact value (tests and copy-paste read data-value).
function put(id, text, value) {
  const el = $(id);
  el.textContent = text;
  if (value !== undefined) el.dataset.value = String(value);
}

async function getJson(path) {
  const r = await fetch(path, { headers, cache: "no-store" });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status + (r.status === 401 ? " (open the page as /#token=TOKEN, the token is in DIR/admin.token)" : ""));
  return r.json();
}

function renderOverview(o) {
  $("peer-id").textContent = o.peer_id;
  const health = $("health");
  const bad = o.nodes.dead > 0 || o.audits.failed > 0 || o.warnings > 0;
  health.textContent = o.reachability.state === "alone" ? "alone: no other node alive"
    : bad ? "up, with warnings" : "healthy";
  health.className = "badge " + (o.reachability.state === "alone" ? "bad" : bad ? "warn" : "ok");
  put("reach", o.reachability.state + " (" + o.reachability.alive_peers + " alive)", o.reachability.state);
  put("uptime", duration(o.uptime_s), o.uptime_s);
  put("version", o.version, o.version);
  put("connected", o.reachability.connected_peers, o.reachability.connected_peers);
  const c = o.capacity;
  put("donated-bytes", bytes(c.donated_bytes), c.donated_bytes);
  put("used-bytes", bytes(c.used_bytes), c.used_bytes);
  put("reserved-bytes", bytes(c.reserved_bytes), c.reserved_bytes);
  put("free-bytes", bytes(c.free_bytes), c.free_bytes);
  put("awaiting-bytes", bytes(c.awaiting_collection_bytes), c.awaiting_collection_bytes);
  put("owner-reserve", c.owner_reserve_pct + "% (owner uses " + c.owner_need_pct + "%)", c.owner_reserve_pct);
  put("chunks", o.chunks, o.chunks);
  const n = o.nodes;
  put("node-count", n.total, n.total);
  put("nodes-alive", n.alive, n.alive);
  put("nodes-suspect", (n.suspect + n.unreachable + n.unverified), n.suspect + n.unreachable + n.unverified);
  put("nodes-dead", n.dead, n.dead);
  const a = o.audits;
  put("audits-passed", a.passed, a.passed);
  put("audits-failed", a.failed, a.failed);
  put("audits-noanswer", a.no_answer, a.no_answer);
  put("audits-answered", a.answered + (a.answer_errors ? " (" + a.answer_errors + " not)" : ""), a.answered);
  put("reputation", a.min_peer_reputation.toFixed(2) + " / " + a.mean_peer_reputation.toFixed(2), a.min_peer_reputation);
  put("repair-queue", o.repair.queued + " chunks", o.repair.queued);
  put("copying", o.repair.copying, o.repair.copying);
  put("repairs", o.repair.completed + " / " + o.repair.incomplete, o.repair.completed);
  const off = o.offload;
  put("offload", (off.leaving ? "leaving: " : "") + bytes(off.excess_bytes) + " to move, " + off.queued + " queued, " + off.offloaded + " moved", off.excess_bytes);
  // Progress of the chunks offload has taken on: moved of (moved + queued).
  const busy = off.excess_bytes > 0 || off.queued > 0;
  $("offload-bar").parentElement.hidden = !busy;
  $("offload-bar").style.width = (100 * off.offloaded / Math.max(1, off.offloaded + off.queued)) + "%";
  renderVolumes(o.volumes, c);
  put("hour-in", bytes(o.traffic.hour_in_bytes), o.traffic.hour_in_bytes);
  put("hour-out", bytes(o.traffic.hour_out_bytes), o.traffic.hour_out_bytes);
  put("day-in", bytes(o.traffic.day_in_bytes), o.traffic.day_in_bytes);
  put("day-out", bytes(o.traffic.day_out_bytes), o.traffic.day_out_bytes);
}

function renderVolumes(volumes, c) {
  const box = $("volumes");
  box.textContent = "";
  for (const v of volumes) {
    const div = document.createElement("div");
    div.className = "volume";
    div.dataset.path = v.path;
    const pct = (x) => v.donated_bytes ? Math.min(100, 100 * x / v.donated_bytes) : 0;
    div.innerHTML = '<div class="path"></div><div class="bar"><div class="used"></div><div class="unremoved"></div></div><dl></dl>';
    div.querySelector(".path").textContent = v.path;
    div.querySelector(".used").style.width = pct(v.used_bytes) + "%";
    div.querySelector(".unremoved").style.width = pct(v.unremoved_bytes) + "%";
    const dl = div.querySelector("dl");
    for (const [k, val] of [["Donated", v.donated_bytes], ["Used", v.used_bytes], ["Free", v.free_bytes],
        ["Unremoved", v.unremoved_bytes], ["Disk size", v.fs_size_bytes], ["Disk free", v.fs_avail_bytes]]) {
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = bytes(val); dd.dataset.value = val;
      dl.append(dt, dd);
    }
    box.append(div);
  }
  const note = $("volumes-note");
  note.textContent = "All volumes: " + bytes(c.reserved_bytes) + " reserved by puts in progress, "
    + bytes(c.awaiting_collection_bytes) + " awaiting collection, " + bytes(c.quarantined_bytes) + " quarantined.";
}

// Bars of in (left half of each slot) and out (right half), as SVG.
function chart(el, buckets, stepLabel) {
  const W = 600, H = 120, pad = 18;
  const max = Math.max(1, ...buckets.map((b) => Math.max(b.in_bytes, b.out_bytes)));
  const slot = W / buckets.length, bw = Math.max(1, slot / 2 - 0.5);
  const y = (v) => H - pad - (H - pad - 4) * v / max;
  let svg = '<svg viewBox="0 0 ' + W + " " + H + '" preserveAspectRatio="none" role="img" aria-label="bytes in and out ' + stepLabel + '">';
  svg += '<line x1="0" x2="' + W + '" y1="' + (H - pad) + '" y2="' + (H - pad) + '" stroke="#ccc"/>';
  buckets.forEach((b, i) => {
    const x = i * slot;
    if (b.in_bytes) svg += '<rect x="' + x.toFixed(1) + '" y="' + y(b.in_bytes).toFixed(1) + '" width="' + bw.toFixed(1) + '" height="' + (H - pad - y(b.in_bytes)).toFixed(1) + '" fill="#2e6fdb"><title>in ' + bytes(b.in_bytes) + "</title></rect>";
    if (b.out_bytes) svg += '<rect x="' + (x + bw).toFixed(1) + '" y="' + y(b.out_bytes).toFixed(1) + '" width="' + bw.toFixed(1) + '" height="' + (H - pad - y(b.out_bytes)).toFixed(1) + '" fill="#e0871b"><title>out ' + bytes(b.out_bytes) + "</title></rect>";
  });
  svg += '<text x="2" y="12" font-size="11" fill="#667085">' + bytes(max) + "</text>";
  svg += '<text x="2" y="' + (H - 4) + '" font-size="11" fill="#667085">' + new Date(buckets[0].start_ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) + "</text>";
  svg += '<text x="' + (W - 2) + '" y="' + (H - 4) + '" font-size="11" fill="#667085" text-anchor="end">now</text></svg>';
  el.innerHTML = svg;
}

const stateOrder = { alive: 0, unverified: 1, unreachable: 2, suspect: 3, dead: 4 };

function renderPeers() {
  const rows = peerRows.slice().sort((a, b) => {
    let x = a[sortKey], y = b[sortKey];
    if (sortKey === "state") { x = stateOrder[x] ?? 9; y = stateOrder[y] ?? 9; }
    if (x == null) return 1;
    if (y == null) return -1;
    const c = x < y ? -1 : x > y ? 1 : 0;
    return sortAsc ? c : -c;
  });
  const body = document.querySelector("#peers tbody");
  body.textContent = "";
  for (const r of rows) {
    const tr = document.createElement("tr");
    tr.dataset.peer = r.peer_id;
    tr.dataset.state = r.state;
    if (r.is_self) tr.className = "self";
    const cells = [
      [r.peer_id.slice(0, 8) + "…" + r.peer_id.slice(-6), "mono"],
      [r.state, "state " + r.state],
      [r.rtt_ms == null ? "–" : r.rtt_ms.toFixed(1), "num"],
      [r.hops == null ? "–" : r.hops, "num"],
      [bytes(r.donated_bytes), "num"],
      [bytes(r.used_bytes), "num"],
      [bytes(r.free_bytes), "num"],
      [r.reputation.toFixed(2), "num"],
      [duration(r.report_age_s), "num"],
    ];
    for (const [text, cls] of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      td.className = cls;
      tr.append(td);
    }
    tr.firstChild.title = r.peer_id;
    body.append(tr);
  }
  document.querySelectorAll("#peers th").forEach((th) => {
    th.classList.toggle("sorted", th.dataset.key === sortKey);
    th.classList.toggle("asc", th.dataset.key === sortKey && sortAsc);
  });
}

function renderEvents(events) {
  const ul = $("events");
  ul.textContent = "";
  if (!events.length) {
    const li = document.createElement("li");
    li.textContent = "Nothing yet.";
    ul.append(li);
  }
  for (const e of events.slice(0, 50)) {
    const li = document.createElement("li");
    li.className = e.level;
    li.dataset.kind = e.kind;
    const t = document.createElement("time");
    t.textContent = new Date(e.at_ms).toLocaleString();
    const k = document.createElement("b");
    k.textContent = e.kind.replace(/_/g, " ");
    const m = document.createElement("span");
    m.className = "msg";
    m.textContent = e.message;
    li.append(t, k, m);
    ul.append(li);
  }
}

async function refresh() {
  try {
    const [o, peers, events, bw] = await Promise.all([
      getJson("api/overview"), getJson("api/peers"), getJson("api/events?limit=50"), getJson("api/bandwidth")]);
    renderOverview(o);
    peerRows = peers;
    renderPeers();
    renderEvents(events);
    chart($("chart-hour"), bw.minutes, "per minute");
    chart($("chart-day"), bw.quarters, "per 15 minutes");
    $("error").hidden = true;
    put("updated", "updated " + new Date().toLocaleTimeString());
    document.body.dataset.loaded = String(Date.now());
  } catch (e) {
    $("error").textContent = "Cannot read the node: " + e.message;
    $("error").hidden = false;
  }
}

document.querySelectorAll("#peers th").forEach((th) => th.addEventListener("click", () => {
  const key = th.dataset.key;
  sortAsc = key === sortKey ? !sortAsc : true;
  sortKey = key;
  renderPeers();
}));

refresh();
setInterval(refresh, REFRESH_MS);
