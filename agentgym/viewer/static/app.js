// agentgym view: the page's whole script. Plain DOM, no libraries, nothing fetched but
// this server's own /api routes. Text from trajectories only ever goes in textContent.
"use strict";

const state = {
  overview: null,
  view: null,          // "curves" | "rollouts" | "tasks"
  iteration: null,     // data of the iteration shown
  group: null,         // the group (or eval task) open in detail
  groupIndex: null,
  pinned: null,        // the step element whose highlight is pinned by a click
  advScale: 1,
  shownMetrics: null,  // Set of metric names drawn
  sortKey: null,
  sortDesc: false,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path) {
  const response = await fetch(path, { cache: "no-store" });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function fmt(value, digits = 3) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return String(value);
  return value.toFixed(digits);
}

function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many || one + "s"}`;
}

function signed(value) {
  if (value === null || value === undefined) return "–";
  if (Math.abs(value) < 0.0005) return "0.000";
  return (value > 0 ? "+" : "") + value.toFixed(3);
}

function message(text, isError = false) {
  const node = $("message");
  node.textContent = text || "";
  node.classList.toggle("error", isError);
}

// ------------------------------------------------------------------ colours

// Advantage -> background: white at 0, green for positive, red for negative, full
// strength at the largest |A| of the iteration (state.advScale).
const POSITIVE = [46, 160, 67];
const NEGATIVE = [207, 34, 46];

function advColour(adv) {
  if (adv === null || adv === undefined) return null;
  const t = Math.min(1, Math.abs(adv) / (state.advScale || 1)) * 0.8;
  const target = adv >= 0 ? POSITIVE : NEGATIVE;
  const mix = target.map((c) => Math.round(255 + (c - 255) * t));
  return `rgb(${mix[0]}, ${mix[1]}, ${mix[2]})`;
}

// ------------------------------------------------------------------ filters

function filters() {
  return {
    success: $("f-success").value,
    type: $("f-type").value,
    split: $("f-split").value,
  };
}

function typeName(value) {
  return value === null || value === undefined || value === "" ? "(none)" : String(value);
}

function trajMatches(traj, f) {
  if (f.success === "success") return traj.success;
  if (f.success === "failure") return !traj.success;
  return true;
}

function groupMatches(group, f) {
  if (f.type && typeName(group.task_type) !== f.type) return false;
  if (f.split && group.split !== f.split) return false;
  return group.trajectories.some((t) => trajMatches(t, f));
}

function setOptions(select, values) {
  const keep = select.value;
  select.replaceChildren(el("option", { value: "", text: "all" }));
  for (const value of values) select.append(el("option", { value, text: value }));
  select.value = values.includes(keep) ? keep : "";
}

function fillFilterOptions(items) {
  const types = [...new Set(items.map((g) => typeName(g.task_type)))].sort();
  const splits = [...new Set(items.map((g) => g.split).filter((s) => s))].sort();
  setOptions($("f-type"), types);
  setOptions($("f-split"), splits);
}

// ------------------------------------------------------------------ tabs and routing

function setView(view) {
  state.view = view;
  for (const name of ["curves", "rollouts", "tasks"]) {
    $(`view-${name}`).hidden = name !== view;
    const tab = document.querySelector(`#tabs [data-view="${name}"]`);
    if (tab) tab.classList.toggle("active", name === view);
  }
  const highlighting = view !== "curves";
  $("hl-wrap").hidden = !highlighting;
  $("k-wrap").hidden = !highlighting || $("hl-mode").value !== "history";
}

function buildTabs(views) {
  const nav = $("tabs");
  nav.replaceChildren();
  for (const [name, label] of views) {
    nav.append(
      el("button", {
        type: "button",
        class: "tab",
        dataset: { view: name },
        text: label,
        onclick: () => {
          location.hash = name === "rollouts" && state.iteration
            ? `#rollouts/${state.iteration.iteration}`
            : `#${name}`;
        },
      }),
    );
  }
}

async function route() {
  const parts = decodeURIComponent(location.hash.replace(/^#/, "")).split("/");
  const ov = state.overview;
  try {
    if (ov.kind === "eval") {
      setView("tasks");
      renderTaskTable();
      if (parts[0] === "tasks" && parts.length > 1) await openTask(parts.slice(1).join("/"));
      else closeDetail();
      return;
    }
    if (parts[0] === "curves" || (!ov.iterations.length && parts[0] !== "rollouts")) {
      setView("curves");
      renderCurves();
      return;
    }
    setView("rollouts");
    if (!ov.iterations.length) {
      $("group-list").replaceChildren(
        el("p", { class: "empty", text: "This run saved no rollout samples (trainer.save_rollouts)." }),
      );
      return;
    }
    let iteration = Number(parts[1]);
    if (!ov.iterations.includes(iteration)) iteration = ov.iterations[ov.iterations.length - 1];
    if (!state.iteration || state.iteration.iteration !== iteration) await loadIteration(iteration);
    const index = parts.length > 2 ? Number(parts[2]) : null;
    if (index !== null && state.iteration.groups[index]) openGroup(index);
    else closeDetail();
  } catch (error) {
    message(String(error.message || error), true);
  }
}

// ------------------------------------------------------------------ curves

const PREFERRED_METRICS = [
  "train/success", "val/success", "train/reward", "train/steps", "credit/adv_std",
  "credit/adv_abs_mean", "actor/grad_norm", "actor/entropy", "actor/pg_loss",
  "train/invalid_action_rate",
];
const SKIP_METRICS = new Set(["iteration", "step", "time", "timestamp", "wall_time"]);

function metricNames(records) {
  const names = new Set();
  for (const record of records) {
    for (const [key, value] of Object.entries(record)) {
      if (!SKIP_METRICS.has(key) && typeof value === "number") names.add(key);
    }
  }
  return [...names].sort();
}

function renderCurves() {
  const records = state.overview.metrics || [];
  renderRunSummary();
  const names = metricNames(records);
  if (!names.length) {
    $("charts").replaceChildren(el("p", { class: "empty", text: "No metrics.jsonl records yet." }));
    $("metric-keys").replaceChildren();
    return;
  }
  if (!state.shownMetrics) {
    const preferred = PREFERRED_METRICS.filter((n) => names.includes(n));
    state.shownMetrics = new Set(preferred.length ? preferred : names.slice(0, 4));
  }
  const byPrefix = {};
  for (const name of names) (byPrefix[name.split("/")[0]] ||= []).push(name);
  const picker = $("metric-keys");
  picker.replaceChildren();
  for (const [prefix, members] of Object.entries(byPrefix)) {
    const box = el("fieldset", {}, el("legend", { text: prefix }));
    for (const name of members) {
      const input = el("input", {
        type: "checkbox",
        value: name,
        checked: state.shownMetrics.has(name),
        onchange: (event) => {
          if (event.target.checked) state.shownMetrics.add(name);
          else state.shownMetrics.delete(name);
          drawCharts(records);
        },
      });
      box.append(el("label", { class: "metric-key" }, input, name));
    }
    picker.append(box);
  }
  drawCharts(records);
}

function renderRunSummary() {
  const ov = state.overview;
  const box = $("run-summary");
  box.replaceChildren();
  const facts = [
    ["environment", ov.env_id],
    ["estimator", ov.estimator],
    ["logged iterations", (ov.metrics || []).length],
    ["sampled iterations", ov.iterations.length],
  ];
  const summary = ov.summary || {};
  for (const when of ["test_before", "test_after"]) {
    const part = summary[when];
    if (part && typeof part === "object") {
      const key = Object.keys(part).find((k) => k.endsWith("/success"));
      if (key) facts.push([`${when.replace("_", " ")} success`, fmt(part[key])]);
    }
  }
  for (const [label, value] of facts) {
    if (value === null || value === undefined) continue;
    box.append(el("div", { class: "tile" }, el("span", { class: "label", text: label }), el("b", { text: String(value) })));
  }
}

function drawCharts(records) {
  const charts = $("charts");
  charts.replaceChildren();
  for (const name of state.shownMetrics) {
    const points = records
      .map((r, i) => [typeof r.iteration === "number" ? r.iteration : i + 1, r[name]])
      .filter(([, y]) => typeof y === "number");
    if (points.length) charts.append(chart(name, points));
  }
}

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function chart(name, points) {
  const W = 340, H = 190, L = 48, R = 10, T = 12, B = 28;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y) => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart-svg", role: "img" });
  root.append(svg("title", {}, name));
  root.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
  root.append(svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
  for (const y of [y0, (y0 + y1) / 2, y1]) {
    root.append(svg("text", { x: L - 4, y: sy(y) + 4, class: "tick", "text-anchor": "end" }, fmt(y, 3)));
    root.append(svg("line", { x1: L, y1: sy(y), x2: W - R, y2: sy(y), class: "grid" }));
  }
  for (const x of [x0, x1]) {
    root.append(svg("text", { x: sx(x), y: H - B + 16, class: "tick", "text-anchor": "middle" }, fmt(x, 0)));
  }
  root.append(svg("text", { x: (L + W - R) / 2, y: H - 2, class: "tick", "text-anchor": "middle" }, "iteration"));
  const path = points.map(([x, y], i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
  root.append(svg("path", { d: path, class: "line" }));
  for (const [x, y] of points) {
    const dot = svg("circle", { cx: sx(x), cy: sy(y), r: 2.5, class: "dot" });
    dot.append(svg("title", {}, `iteration ${x}: ${fmt(y, 4)}`));
    root.append(dot);
  }
  return el("figure", { class: "chart", dataset: { metric: name } }, el("figcaption", { text: name }), root);
}

// ------------------------------------------------------------------ rollouts

async function loadIteration(iteration) {
  message("loading iteration " + iteration + " ...");
  const data = await api(`/api/iteration/${iteration}`);
  state.iteration = data;
  state.group = null;
  let scale = 0;
  for (const group of data.groups) {
    for (const traj of group.trajectories) {
      for (const step of traj.steps) {
        if (step.advantage !== null) scale = Math.max(scale, Math.abs(step.advantage));
      }
    }
  }
  state.advScale = scale || 1;
  const select = $("iter-select");
  select.value = String(iteration);
  const mode = data.estimator === "hgpo" ? "history" : "anchor";
  if (!state.modeChosen) {
    $("hl-mode").value = mode;
    setView(state.view);
  }
  $("iter-info").textContent =
    `${data.groups.length} groups · estimator ${data.estimator || "?"} · colour scale |A| ≤ ${fmt(state.advScale)}`;
  fillFilterOptions(data.groups);
  renderGroupList();
  message("");
}

function trajStats(group) {
  const n = group.trajectories.length;
  const wins = group.trajectories.filter((t) => t.success).length;
  const mean = group.trajectories.reduce((a, t) => a + t.total_reward, 0) / Math.max(n, 1);
  return { n, wins, mean };
}

function renderGroupList() {
  const list = $("group-list");
  list.replaceChildren();
  list.dataset.iteration = String(state.iteration.iteration);
  const f = filters();
  let shown = 0;
  state.iteration.groups.forEach((group, index) => {
    if (!groupMatches(group, f)) return;
    shown += 1;
    const { n, wins, mean } = trajStats(group);
    const strip = el("div", { class: "adv-strip" });
    for (const traj of group.trajectories) {
      if (!trajMatches(traj, f)) continue;
      const row = el("div", { class: "adv-row" });
      for (const step of traj.steps) {
        const cell = el("span", { class: "adv-cell", title: `A=${signed(step.advantage)}` });
        const colour = advColour(step.advantage);
        if (colour) cell.style.backgroundColor = colour;
        row.append(cell);
      }
      strip.append(row);
    }
    list.append(
      el(
        "button",
        {
          type: "button",
          class: "group-card" + (state.groupIndex === index && state.group ? " selected" : ""),
          dataset: { group: String(index), groupId: group.group_id },
          onclick: () => { location.hash = `#rollouts/${state.iteration.iteration}/${index}`; },
        },
        el("div", { class: "card-title", text: group.task_id }),
        el(
          "div",
          { class: "chips" },
          el("span", { class: "chip", text: typeName(group.task_type) }),
          el("span", { class: "chip", text: group.split || "?" }),
          el("span", { class: "chip " + (wins ? "ok" : "bad"), text: `${wins}/${n} succeeded` }),
        ),
        el("div", { class: "card-line", text: `mean return ${fmt(mean)}` }),
        strip,
      ),
    );
  });
  if (!shown) list.append(el("p", { class: "empty", text: "No group matches the filters." }));
}

function openGroup(index) {
  state.groupIndex = index;
  state.group = state.iteration.groups[index];
  for (const card of document.querySelectorAll(".group-card")) {
    card.classList.toggle("selected", card.dataset.group === String(index));
  }
  renderDetail($("group-detail"), state.group, true);
}

function closeDetail() {
  state.group = null;
  state.pinned = null;
  $("group-detail").hidden = true;
  $("task-detail").hidden = true;
  for (const card of document.querySelectorAll(".group-card.selected")) card.classList.remove("selected");
}

function renderDetail(box, group, withAdvantages) {
  state.pinned = null;
  box.hidden = false;
  box.replaceChildren();
  const f = filters();
  const { n, wins } = trajStats(group);
  box.append(
    el(
      "div",
      { class: "detail-head" },
      el("h2", { text: `${group.task_id}` }),
      el("span", { class: "chip", text: typeName(group.task_type) }),
      el("span", { class: "chip", text: group.split || "?" }),
      el("span", { class: "chip", text: `seed ${fmt(group.seed)}` }),
      el("span", { class: "chip " + (wins ? "ok" : "bad"), text: `${wins}/${n} succeeded` }),
      el("button", {
        type: "button",
        class: "close",
        text: "close",
        onclick: () => {
          location.hash = state.overview.kind === "eval" ? "#tasks" : `#rollouts/${state.iteration.iteration}`;
        },
      }),
    ),
  );
  if (group.instruction) box.append(el("p", { class: "instruction", text: group.instruction }));
  box.append(legend(withAdvantages));
  box.append(el("p", { id: "hl-info", class: "hl-info", text: "Hover a step to see its group across trajectories; click to pin." }));
  const columns = el("div", { class: "columns" });
  group.trajectories.forEach((traj, t) => {
    if (!trajMatches(traj, f)) return;
    columns.append(trajectoryColumn(traj, t));
  });
  if (!columns.children.length) columns.append(el("p", { class: "empty", text: "No trajectory matches the filters." }));
  box.append(columns);
  box.scrollIntoView({ block: "start" });
}

function legend(withAdvantages) {
  if (!withAdvantages) {
    return el("div", { class: "legend" }, el("span", { text: "Evaluation episodes carry no advantages; steps are not coloured." }));
  }
  const bar = el("span", { class: "legend-bar" });
  for (let i = -4; i <= 4; i += 1) {
    const value = (i / 4) * state.advScale;
    bar.append(el("span", { class: "legend-cell", style: `background-color: ${advColour(value)}`, title: signed(value) }));
  }
  return el(
    "div",
    { class: "legend" },
    el("span", { text: `advantage  −${fmt(state.advScale)}` }),
    bar,
    el("span", { text: `+${fmt(state.advScale)}` }),
    el("span", { class: "legend-sep" }),
    el("span", { class: "swatch hl-anchor-swatch" }), el("span", { text: "same anchor state" }),
    el("span", { class: "swatch hl-level-swatch" }), el("span", { text: "history level (deeper = darker)" }),
  );
}

function trajectoryColumn(traj, t) {
  const column = el("div", { class: "traj", dataset: { traj: String(t), success: String(traj.success) } });
  const title = traj.episode !== null && traj.episode !== undefined ? `episode ${traj.episode}` : `trajectory ${t + 1}`;
  column.append(
    el(
      "div",
      { class: "traj-head " + (traj.success ? "ok" : "bad") },
      el("b", { text: `${traj.success ? "✓" : "✗"} ${title}` }),
      el("span", { text: ` score ${fmt(traj.score, 2)} · return ${fmt(traj.total_reward, 2)} · ${traj.steps.length} steps · ${traj.status}` }),
    ),
  );
  if (traj.error) column.append(el("pre", { class: "error-text", text: traj.error }));
  for (const step of traj.steps) column.append(stepCard(step, t));
  return column;
}

function stepCard(step, t) {
  const card = el("div", {
    class: "step" + (step.advantage === null ? " no-adv" : ""),
    tabindex: "0",
    dataset: {
      traj: String(t),
      step: String(step.index),
      state: step.state_key,
      adv: step.advantage === null ? "" : String(step.advantage),
    },
    onmouseenter: (event) => { if (!state.pinned) highlight(event.currentTarget); },
    onmouseleave: () => { if (!state.pinned) clearHighlight(); },
    onclick: (event) => togglePin(event.currentTarget),
    onkeydown: (event) => { if (event.key === "Enter") togglePin(event.currentTarget); },
  });
  const colour = advColour(step.advantage);
  if (colour) card.style.backgroundColor = colour;
  const action = step.action === null
    ? el("span", { class: "unparsed", text: "no action parsed" })
    : el("code", { class: "action", text: step.action });
  card.append(
    el(
      "div",
      { class: "step-head" },
      el("b", { text: `step ${step.index + 1}` }),
      el("span", { class: "num", text: `r ${fmt(step.reward, 2)}` }),
      state.overview.kind === "eval" ? null : el("span", { class: "num adv", text: `A ${signed(step.advantage)}` }),
      el("span", { class: "level-badge" }),
    ),
    el("div", { class: "state", title: "state_key (the state the agent acted in)", text: step.state_key || "(no state key)" }),
    el("div", { class: "label", text: "observation" }),
    el("pre", { class: "obs", text: step.observation }),
    el("div", { class: "label", text: "response" }),
    el("pre", { class: "resp", text: step.response }),
    el("div", { class: "action-line" }, el("span", { class: "label", text: "action " }), action,
      step.action_valid ? null : el("span", { class: "invalid", text: " invalid" })),
  );
  return card;
}

// ------------------------------------------------------------------ highlighting

function stepsOfDetail() {
  const box = state.overview.kind === "eval" ? $("task-detail") : $("group-detail");
  return [...box.querySelectorAll(".step")];
}

function clearHighlight() {
  for (const card of stepsOfDetail()) {
    card.classList.remove("hl-source", "hl-anchor", "hl-level", "hl-pinned");
    card.removeAttribute("data-level");
    card.style.removeProperty("--level-alpha");
    const badge = card.querySelector(".level-badge");
    if (badge) badge.textContent = "";
  }
  const info = $("hl-info");
  if (info) info.textContent = "Hover a step to see its group across trajectories; click to pin.";
}

function togglePin(card) {
  if (state.pinned === card) {
    state.pinned = null;
    clearHighlight();
    return;
  }
  state.pinned = card;
  highlight(card);
}

// The trailing state keys of each trajectory of the open group, by (traj, step).
function stateHistory(t, index) {
  const traj = state.group.trajectories[t];
  return traj.steps.slice(0, index + 1).map((s) => s.state_key);
}

function matchDepth(a, b, limit) {
  let depth = 0;
  while (depth < limit && depth < a.length && depth < b.length
         && a[a.length - 1 - depth] === b[b.length - 1 - depth]) depth += 1;
  return depth;
}

function highlight(card) {
  clearHighlight();
  const mode = $("hl-mode").value;
  const key = card.dataset.state;
  card.classList.add("hl-source");
  if (state.pinned === card) card.classList.add("hl-pinned");
  const info = $("hl-info");
  if (mode === "none") return;
  if (!key) {
    info.textContent = "This step has no state_key: it belongs to no anchor-state group.";
    return;
  }
  const cards = stepsOfDetail();
  if (mode === "anchor") {
    const members = cards.filter((c) => c.dataset.state === key);
    const trajs = new Set(members.map((c) => c.dataset.traj));
    const advs = members.filter((c) => c.dataset.adv !== "").map((c) => Number(c.dataset.adv));
    for (const c of members) c.classList.add("hl-anchor");
    const mean = advs.length ? advs.reduce((a, b) => a + b, 0) / advs.length : null;
    info.textContent =
      `anchor state ${key}: ${plural(members.length, "step")} in ` +
      `${plural(trajs.size, "trajectory", "trajectories")}` +
      (mean === null ? "" : `, mean A ${signed(mean)}`);
    return;
  }
  const K = Math.max(0, Number($("hl-k").value) || 0);
  const limit = K + 1;
  const mine = stateHistory(Number(card.dataset.traj), Number(card.dataset.step));
  const counts = new Array(limit + 1).fill(0);
  for (const c of cards) {
    const theirs = stateHistory(Number(c.dataset.traj), Number(c.dataset.step));
    const depth = matchDepth(mine, theirs, limit);
    if (depth < 1) continue;
    for (let l = 1; l <= depth; l += 1) counts[l] += 1;
    c.classList.add("hl-level");
    c.dataset.level = String(depth);
    c.style.setProperty("--level-alpha", String(0.35 + 0.65 * (depth / limit)));
    c.querySelector(".level-badge").textContent = `L${depth}`;
  }
  const parts = [];
  for (let l = 1; l <= limit; l += 1) if (counts[l]) parts.push(`level ${l}: ${plural(counts[l], "step")}`);
  info.textContent = `history of ${key} (K=${K}): ` + parts.join(" · ");
}

// ------------------------------------------------------------------ evaluation

function renderEvalSummary() {
  const ov = state.overview;
  const box = $("eval-summary");
  box.replaceChildren();
  const m = ov.metrics || {};
  const tiles = [
    ["environment", ov.env_id],
    ["split", ov.split],
    ["policy", ov.policy],
    ["tasks", ov.tasks.length],
    ["episodes / task", ov.episodes_per_task],
  ];
  if (m.success !== undefined) {
    tiles.push(["success", `${fmt(m.success)} [${fmt(m.success_ci_low)}, ${fmt(m.success_ci_high)}]`]);
  }
  if (m.score !== undefined) tiles.push(["score", fmt(m.score)]);
  for (const k of ov.pass_ks) if (m[`pass@${k}`] !== undefined) tiles.push([`pass@${k}`, fmt(m[`pass@${k}`])]);
  for (const key of ["steps", "invalid_action_rate", "error_rate"]) if (m[key] !== undefined) tiles.push([key, fmt(m[key])]);
  if (ov.complete === false) tiles.push(["status", "incomplete"]);
  for (const [label, value] of tiles) {
    if (value === null || value === undefined) continue;
    box.append(el("div", { class: "tile", dataset: { metric: label } }, el("span", { class: "label", text: label }), el("b", { text: String(value) })));
  }
}

function taskMatches(task, f) {
  if (f.type && typeName(task.task_type) !== f.type) return false;
  if (f.split && task.split !== f.split) return false;
  if (f.success === "success") return task.successes > 0;
  if (f.success === "failure") return task.successes < task.episodes;
  return true;
}

function renderTaskTable() {
  const ov = state.overview;
  renderEvalSummary();
  const table = $("task-table");
  table.replaceChildren();
  const columns = [
    ["task_id", "task"], ["task_type", "type"], ["split", "split"], ["episodes", "episodes"],
    ["successes", "successes"], ["success_rate", "success"], ["score", "score"], ["steps", "steps"],
    ...ov.pass_ks.map((k) => [`pass@${k}`, `pass@${k}`]),
  ];
  const value = (task, key) => (key.startsWith("pass@") ? task.pass_at_k[key.slice(5)] : task[key]);
  const head = el("tr");
  for (const [key, label] of columns) {
    const arrow = state.sortKey === key ? (state.sortDesc ? " ▼" : " ▲") : "";
    head.append(el("th", {
      text: label + arrow,
      dataset: { key },
      onclick: () => {
        state.sortDesc = state.sortKey === key ? !state.sortDesc : false;
        state.sortKey = key;
        renderTaskTable();
      },
    }));
  }
  table.append(el("thead", {}, head));
  const body = el("tbody");
  const f = filters();
  let tasks = ov.tasks.filter((task) => taskMatches(task, f));
  if (state.sortKey) {
    const key = state.sortKey;
    tasks = [...tasks].sort((a, b) => {
      const x = value(a, key), y = value(b, key);
      const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return state.sortDesc ? -order : order;
    });
  }
  for (const task of tasks) {
    const row = el("tr", {
      class: "task-row" + (task.successes ? " ok" : " bad"),
      dataset: { task: task.task_id },
      onclick: () => { location.hash = `#tasks/${encodeURIComponent(task.task_id)}`; },
    });
    for (const [key] of columns) {
      const v = value(task, key);
      row.append(el("td", { text: key === "task_type" ? typeName(v) : fmt(v) }));
    }
    body.append(row);
  }
  if (!tasks.length) body.append(el("tr", {}, el("td", { colspan: String(columns.length), class: "empty", text: "No task matches the filters." })));
  table.append(body);
}

async function openTask(taskId) {
  const data = await api(`/api/task?id=${encodeURIComponent(taskId)}`);
  state.group = data;
  for (const row of document.querySelectorAll(".task-row")) {
    row.classList.toggle("selected", row.dataset.task === taskId);
  }
  renderDetail($("task-detail"), data, false);
}

// ------------------------------------------------------------------ start

function onFilterChange() {
  if (state.overview.kind === "eval") {
    renderTaskTable();
    if (state.group) renderDetail($("task-detail"), state.group, false);
    return;
  }
  if (state.iteration) {
    renderGroupList();
    if (state.group) {
      // a group the filters hide stays open underneath, and shows again when they allow
      if (groupMatches(state.group, filters())) openGroup(state.groupIndex);
      else $("group-detail").hidden = true;
    }
  }
}

async function start() {
  try {
    state.overview = await api("/api/overview");
  } catch (error) {
    message(`Could not load the directory: ${error.message}`, true);
    return;
  }
  const ov = state.overview;
  document.title = `agentgym view · ${ov.title}`;
  $("title").textContent = ov.title;
  $("subtitle").textContent = ov.kind === "eval"
    ? `evaluation · ${ov.env_id || ""} · ${ov.path}`
    : `training run · ${ov.env_id || ""} · ${ov.path}`;
  if (ov.kind === "eval") {
    buildTabs([["tasks", "Tasks"]]);
    fillFilterOptions(ov.tasks);
  } else {
    buildTabs([["rollouts", "Rollouts"], ["curves", "Curves"]]);
    $("hl-k").value = String(ov.history_length ?? 2);
    const select = $("iter-select");
    for (const it of ov.iterations) select.append(el("option", { value: String(it), text: String(it) }));
    select.addEventListener("change", () => { location.hash = `#rollouts/${select.value}`; });
    const step = (delta) => {
      const i = ov.iterations.indexOf(state.iteration ? state.iteration.iteration : ov.iterations[0]);
      const next = ov.iterations[Math.min(ov.iterations.length - 1, Math.max(0, i + delta))];
      if (next !== undefined) location.hash = `#rollouts/${next}`;
    };
    $("iter-prev").addEventListener("click", () => step(-1));
    $("iter-next").addEventListener("click", () => step(1));
  }
  for (const id of ["f-success", "f-type", "f-split"]) $(id).addEventListener("change", onFilterChange);
  $("hl-mode").addEventListener("change", () => {
    state.modeChosen = true;
    setView(state.view);
    if (state.pinned) highlight(state.pinned);
    else clearHighlight();
  });
  $("hl-k").addEventListener("change", () => { if (state.pinned) highlight(state.pinned); });
  window.addEventListener("hashchange", route);
  await route();
  document.body.dataset.ready = "true";
}

start();
