// hookrun ui: follows a running operation through its server-sent events and updates the page in place (text only,
// never HTML). Every page works without this script; it only saves reloading an operation's page.
"use strict";
(function () {
  const op = document.getElementById("op");
  if (!op || op.dataset.finished === "true" || !window.EventSource) return;
  const text = (id, value) => { const el = document.getElementById(id); if (el) el.textContent = value; };
  const size = (n, unit) => {
    if (unit !== "bytes") return n + " " + unit;
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0, v = n;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return i === 0 ? v + " B" : v.toFixed(1) + " " + units[i];
  };
  const events = new EventSource(op.dataset.events);
  events.onmessage = (message) => {
    const s = JSON.parse(message.data);
    text("op-hook", s.hook || "starting");
    const bar = document.getElementById("op-bar");
    if (bar) bar.value = s.percent || 0;
    text("op-percent", s.percent === null ? "" : s.percent + " %");
    text("op-bytes", s.total > 0 ? size(s.done, s.unit) + " / " + size(s.total, s.unit) : "");
    text("op-eta", s.eta_seconds === null ? "" : "ETA " + s.eta_seconds + " s");
    const rows = document.getElementById("op-services");
    if (rows) {
      rows.replaceChildren(...s.services.map((service) => {
        const tr = document.createElement("tr");
        const seconds = service.downtime_ms === null ? "—" : (service.downtime_ms / 1000).toFixed(1) + " s";
        for (const [value, cls] of [[service.service, ""], [service.state, ""], [seconds, "num"]]) {
          const td = document.createElement("td");
          td.textContent = value;
          if (cls) td.className = cls;
          tr.appendChild(td);
        }
        return tr;
      }));
    }
    const log = document.getElementById("op-log");
    if (log) {
      const follow = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.textContent = s.log.map((line) => line + "\n").join("");
      if (follow) log.scrollTop = log.scrollHeight;
    }
    if (s.finished) {
      events.close();
      op.dataset.finished = "true";
      const status = document.getElementById("op-status");
      if (status) {
        const span = document.createElement("span");
        span.className = s.finished.ok ? "ok" : "bad";
        span.textContent = s.finished.ok ? "succeeded" : "failed";
        status.replaceChildren(span);
      }
      text("op-step", "Last step: ");
      text("op-outcome", s.finished.summary + " (exit " + s.finished.exit_code + ")");
    }
  };
})();
