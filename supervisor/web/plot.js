// A small two-axis line chart on a canvas: price (left axis) and equity (right axis) over time.
// Written here rather than taken from a charting library: two lines need ~100 lines of code,
// and the dashboard must work offline with nothing fetched from a CDN.
"use strict";

(function () {
  const PAD = { left: 78, right: 78, top: 12, bottom: 26 };

  function range(values) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of values) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!isFinite(lo)) return null;
    if (hi - lo < Math.abs(hi) * 1e-6 || hi === lo) {
      // A flat line: give it some room so it sits in the middle.
      const pad = Math.abs(hi) * 1e-4 || 1;
      return [lo - pad, hi + pad];
    }
    const pad = (hi - lo) * 0.08;
    return [lo - pad, hi + pad];
  }

  function label(value) {
    const abs = Math.abs(value);
    const digits = abs >= 1000 ? 2 : abs >= 1 ? 4 : 6;
    return value.toLocaleString(undefined, { maximumFractionDigits: digits });
  }

  function line(ctx, points, key, x, y, colour) {
    ctx.strokeStyle = colour;
    ctx.lineWidth = 1.6;
    ctx.beginPath();
    let started = false;
    for (const p of points) {
      const v = p[key];
      if (v === null || !isFinite(v)) {
        started = false;
        continue;
      }
      if (started) ctx.lineTo(x(p.t), y(v));
      else ctx.moveTo(x(p.t), y(v));
      started = true;
    }
    ctx.stroke();
  }

  function spanLabel(ms) {
    return ms >= 120000 ? `-${Math.round(ms / 60000)} min` : `-${Math.round(ms / 1000)} s`;
  }

  // points: [{t: ms, price: number|null, equity: number|null}], oldest first. The time axis
  // spans the history seen so far (at least 30 s), up to maxSpanMs.
  function draw(canvas, points, maxSpanMs) {
    const style = getComputedStyle(document.documentElement);
    const colours = {
      grid: style.getPropertyValue("--line").trim(),
      text: style.getPropertyValue("--muted").trim(),
      price: style.getPropertyValue("--price").trim(),
      equity: style.getPropertyValue("--equity").trim(),
    };
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
    if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "12px system-ui, sans-serif";
    ctx.fillStyle = colours.text;

    const now = points.length ? points[points.length - 1].t : 0;
    const seen = points.length ? now - points[0].t : 0;
    const spanMs = Math.min(maxSpanMs, Math.max(30000, seen));
    const start = now - spanMs;
    const visible = points.filter((p) => p.t >= start);
    const prices = range(visible.map((p) => p.price).filter((v) => v !== null));
    const equities = range(visible.map((p) => p.equity).filter((v) => v !== null));
    if (visible.length < 2 || prices === null) {
      ctx.textAlign = "center";
      ctx.fillText("waiting for ticks…", width / 2, height / 2);
      return;
    }
    const plotW = width - PAD.left - PAD.right;
    const plotH = height - PAD.top - PAD.bottom;
    const x = (t) => PAD.left + ((t - start) / spanMs) * plotW;
    const yOf = (r) => (v) => PAD.top + (1 - (v - r[0]) / (r[1] - r[0])) * plotH;
    const yPrice = yOf(prices);

    ctx.strokeStyle = colours.grid;
    ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const gy = PAD.top + (plotH * i) / 4;
      ctx.beginPath();
      ctx.moveTo(PAD.left, gy);
      ctx.lineTo(width - PAD.right, gy);
      ctx.stroke();
      ctx.fillStyle = colours.price;
      ctx.textAlign = "right";
      ctx.fillText(label(prices[1] - ((prices[1] - prices[0]) * i) / 4), PAD.left - 6, gy + 4);
      if (equities !== null) {
        ctx.fillStyle = colours.equity;
        ctx.textAlign = "left";
        const value = equities[1] - ((equities[1] - equities[0]) * i) / 4;
        ctx.fillText(label(value), width - PAD.right + 6, gy + 4);
      }
    }
    ctx.fillStyle = colours.text;
    ctx.textAlign = "left";
    ctx.fillText(spanLabel(spanMs), PAD.left, height - 8);
    ctx.textAlign = "right";
    ctx.fillText("now", width - PAD.right, height - 8);

    line(ctx, visible, "price", x, yPrice, colours.price);
    if (equities !== null) line(ctx, visible, "equity", x, yOf(equities), colours.equity);
  }

  window.Plot = { draw };
})();
