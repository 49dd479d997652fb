// The dashboard: polls /health and GET /bots every second and renders them; control buttons
// call the control routes with the token typed into the page (kept in this page's memory
// only: never stored, never a cookie). Every value is written with textContent, never as HTML.
"use strict";

(function () {
  const POLL_MS = 1000;
  const CHART_SPAN_MS = 5 * 60 * 1000;
  const HISTORY_MAX = 900; // points per bot: 15 minutes at one a second

  const $ = (id) => document.getElementById(id);
  const history = new Map(); // bot id -> [{t, price, equity}]
  let selected = null; // the charted bot's id
  let lastBots = [];

  // --- formatting -----------------------------------------------------------------------------

  function num(text, digits) {
    if (text === null || text === undefined) return "–";
    const value = Number(text);
    if (!isFinite(value)) return String(text);
    const abs = Math.abs(value);
    const places = digits !== undefined ? digits : abs >= 1000 ? 2 : abs >= 1 ? 4 : 8;
    return value.toLocaleString(undefined, {
      minimumFractionDigits: Math.min(places, 2),
      maximumFractionDigits: places,
    });
  }

  function signClass(text) {
    const value = Number(text);
    return !text || !isFinite(value) || value === 0 ? "" : value > 0 ? "pos" : "neg";
  }

  function stateClass(state, healthy) {
    if (healthy) return state === "paused" ? "state-warn" : "state-ok";
    return "state-bad";
  }

  function age(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    return seconds < 60 ? `${seconds.toFixed(1)} s ago` : `${Math.round(seconds / 60)} min ago`;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const s = Math.floor(seconds);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return `up ${h ? `${h} h ` : ""}${m} min ${s % 60} s`;
  }

  // --- table rows keyed by name: rows are updated in place, so a button being clicked is
  // never replaced under the pointer ---------------------------------------------------------

  function syncRows(tbody, keys, create) {
    const rows = new Map();
    for (const row of Array.from(tbody.rows)) rows.set(row.dataset.key, row);
    for (const [key, row] of rows) if (!keys.includes(key)) row.remove();
    return keys.map((key) => {
      let row = rows.get(key);
      if (!row) {
        row = create(key);
        row.dataset.key = key;
      }
      tbody.appendChild(row); // keeps the order of keys
      return row;
    });
  }

  function cells(row, fields) {
    for (const field of fields) {
      const cell = row.insertCell();
      cell.dataset.field = field;
    }
  }

  function set(row, field, text, className) {
    const cell = row.querySelector(`[data-field="${field}"]`);
    if (cell.textContent !== text) cell.textContent = text;
    const wanted = (cell.dataset.base || "") + (className ? ` ${className}` : "");
    if (cell.className !== wanted.trim()) cell.className = wanted.trim();
    return cell;
  }

  // --- rendering ------------------------------------------------------------------------------

  function renderHealth(health) {
    const status = $("status");
    status.textContent = health.status || "unknown";
    status.className = `badge ${health.status === "ok" ? "ok" : "degraded"}`;
    $("uptime").textContent = duration(health.uptime_s);

    const exchanges = health.exchanges || {};
    const names = Object.keys(exchanges);
    const fields = ["name", "state", "breaker", "age", "messages", "reconnects", "streams"];
    const rows = syncRows($("exchanges").tBodies[0], names, () => {
      const row = document.createElement("tr");
      cells(row, fields);
      row.cells[4].dataset.base = row.cells[5].dataset.base = "num";
      return row;
    });
    names.forEach((name, i) => {
      const ex = exchanges[name];
      const row = rows[i];
      set(row, "name", name);
      set(row, "state", ex.state || "?", stateClass(ex.state, ex.healthy));
      set(row, "breaker", ex.breaker || "–", ex.breaker === "closed" ? "" : "state-warn");
      set(row, "age", age(ex.last_message_age_s));
      set(row, "messages", num(ex.messages, 0));
      set(row, "reconnects", num(ex.reconnects, 0));
      const streams = Object.entries(ex.streams || {}).map(([k, v]) => `${k} ${v}`);
      set(row, "streams", streams.join(", ") || "–");
    });

    const accounts = health.accounts || {};
    const accountNames = Object.keys(accounts);
    $("accounts-section").hidden = accountNames.length === 0;
    const accountRows = syncRows($("accounts").tBodies[0], accountNames, () => {
      const row = document.createElement("tr");
      cells(row, ["name", "healthy", "details"]);
      return row;
    });
    accountNames.forEach((name, i) => {
      const account = accounts[name];
      set(accountRows[i], "name", name);
      set(accountRows[i], "healthy", account.healthy ? "yes" : "no",
        account.healthy ? "state-ok" : "state-bad");
      const details = Object.entries(account)
        .filter(([k, v]) => k !== "healthy" && (typeof v !== "object" || v === null))
        .map(([k, v]) => `${k}: ${v}`);
      set(accountRows[i], "details", details.join(", "));
    });
  }

  function controlButton(action, label) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.action = action;
    button.textContent = label;
    return button;
  }

  function renderBots(bots) {
    lastBots = bots;
    const ids = bots.map((b) => b.id);
    if (selected === null || !ids.includes(selected)) selected = ids.length ? ids[0] : null;
    const fields = ["id", "market", "state", "position", "last_price", "equity",
      "realized_pnl", "unrealized_pnl", "last_action", "control"];
    const rows = syncRows($("bots").tBodies[0], ids, (id) => {
      const row = document.createElement("tr");
      row.dataset.bot = id;
      cells(row, fields);
      row.cells[0].dataset.base = "bot-id";
      for (const i of [3, 4, 5, 6, 7]) row.cells[i].dataset.base = "num";
      const control = row.cells[9];
      control.append(
        controlButton("pause", "Pause"),
        controlButton("resume", "Resume"),
        controlButton("stop", "Stop"),
      );
      return row;
    });
    bots.forEach((bot, i) => {
      const row = rows[i];
      row.classList.toggle("selected", bot.id === selected);
      set(row, "id", bot.id);
      set(row, "market", `${bot.exchange} ${bot.symbol} · ${bot.strategy}`);
      set(row, "state", bot.state || "?", stateClass(bot.state, bot.healthy)).title =
        bot.last_error || bot.blocked || "";
      set(row, "position", num(bot.position));
      set(row, "last_price", num(bot.last_price)).title = bot.last_price || "";
      set(row, "equity", num(bot.equity, 2));
      set(row, "realized_pnl", num(bot.realized_pnl, 2), signClass(bot.realized_pnl));
      set(row, "unrealized_pnl", num(bot.unrealized_pnl, 2), signClass(bot.unrealized_pnl));
      set(row, "last_action", bot.last_action || "–");
      const paused = bot.state === "paused";
      row.querySelector('[data-action="pause"]').disabled = paused;
      row.querySelector('[data-action="resume"]').disabled = !paused;
    });

    const now = Date.now();
    for (const bot of bots) {
      if (!history.has(bot.id)) history.set(bot.id, []);
      const points = history.get(bot.id);
      const price = bot.last_price === null ? null : Number(bot.last_price);
      const equity = bot.equity === null ? null : Number(bot.equity);
      points.push({ t: now, price, equity });
      if (points.length > HISTORY_MAX) points.splice(0, points.length - HISTORY_MAX);
    }
    for (const id of Array.from(history.keys())) if (!ids.includes(id)) history.delete(id);
    drawChart();
  }

  function drawChart() {
    const bot = lastBots.find((b) => b.id === selected);
    $("chart-bot").textContent = bot ? `· ${bot.id} (${bot.exchange} ${bot.symbol})` : "";
    window.Plot.draw($("chart"), history.get(selected) || [], CHART_SPAN_MS);
  }

  // --- polling --------------------------------------------------------------------------------

  async function getJSON(path, okStatuses) {
    const response = await fetch(path, { cache: "no-store" });
    if (!okStatuses.includes(response.status)) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  let connected = true;

  async function poll() {
    try {
      const [health, bots] = await Promise.all([
        getJSON("health", [200, 503]), // 503 is "degraded", still a report
        getJSON("bots", [200]),
      ]);
      renderHealth(health);
      renderBots(bots.bots);
      if (!connected) say("reconnected to the daemon");
      connected = true;
    } catch (error) {
      connected = false;
      $("status").textContent = "unreachable";
      $("status").className = "badge degraded";
      say(`cannot reach the daemon: ${error.message}`, true);
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  // --- control --------------------------------------------------------------------------------

  function say(text, isError) {
    const message = $("message");
    message.textContent = text;
    message.className = isError ? "error" : "muted";
  }

  async function control(method, path, what) {
    const token = $("token").value.trim();
    if (!token) {
      say("type the control token first (the value of the daemon's token variable)", true);
      $("token").focus();
      return;
    }
    try {
      const response = await fetch(path, {
        method,
        headers: { Authorization: `Bearer ${token}` },
        cache: "no-store",
      });
      const body = await response.json().catch(() => ({}));
      if (response.ok) {
        say(`${what}: ${body.action || "done"}`);
      } else {
        const detail = body.detail ? ` (${body.detail})` : "";
        say(`${what} refused: HTTP ${response.status} ${body.error || ""}${detail}`, true);
      }
    } catch (error) {
      say(`${what} failed: ${error.message}`, true);
    }
  }

  function onBotsClick(event) {
    const row = event.target.closest("tr[data-bot]");
    if (!row) return;
    const id = row.dataset.bot;
    const action = event.target.dataset.action;
    const path = `bots/${encodeURIComponent(id)}`;
    if (action === "pause" || action === "resume") {
      control("POST", `${path}/${action}`, `${action} ${id}`);
    } else if (action === "stop") {
      if (window.confirm(`Stop bot ${id}? Its journal stays; spawning it again resumes it.`)) {
        control("DELETE", path, `stop ${id}`);
      }
    } else if (event.target.closest("td.bot-id")) {
      selected = id;
      for (const other of $("bots").tBodies[0].rows) {
        other.classList.toggle("selected", other.dataset.bot === id);
      }
      drawChart();
    }
  }

  $("bots").addEventListener("click", onBotsClick);
  $("halt").addEventListener("click", () => {
    if (window.confirm("Halt all trading? Every bot pauses and live orders are cancelled.")) {
      control("POST", "control/halt", "halt");
    }
  });
  $("resume-trading").addEventListener("click", () =>
    control("POST", "control/resume-trading", "resume trading"));
  window.addEventListener("resize", drawChart);
  poll();
})();
