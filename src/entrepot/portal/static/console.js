// The query console: the expected error before running, then the answer as a table and
// a bar chart with its 95% error bars, the receipt to download, the budget updated.
import { el, postJson, problem } from "./portal.js";

const SVG = "http://www.w3.org/2000/svg";
const form = document.getElementById("console");
const sql = document.getElementById("sql");
const epsilon = document.getElementById("epsilon");
const slider = document.getElementById("epsilon-range");
const dataset = document.getElementById("dataset");
const estimateBox = document.getElementById("estimate");
const answerSection = document.getElementById("answer");
const answerBody = document.getElementById("answer-body");

const fmt = (value, digits = 4) =>
  value === null || value === undefined ? "–" : Number(value).toLocaleString("en", { maximumSignificantDigits: digits });

function showColumns() {
  const chosen = dataset.selectedOptions[0];
  const box = document.getElementById("columns");
  box.replaceChildren();
  for (const [key, label] of [["group", "Group by"], ["where", "Filter on"], ["aggregate", "Sum or average"], ["aggregates", "Aggregates"]]) {
    box.append(el("dt", {}, label), el("dd", {}, chosen.dataset[key] || "none"));
  }
  for (const input of [epsilon, slider]) input.max = chosen.dataset.maxEpsilon;
}

let pending = null;
let asked = 0;
async function estimate() {
  const ticket = ++asked;
  const { ok, body } = await postJson("/portal/estimate", { sql: sql.value, epsilon: Number(epsilon.value) });
  if (ticket !== asked) return; // a later estimate is on its way
  estimateBox.replaceChildren();
  if (!ok) {
    estimateBox.append(problem(body.error));
    return;
  }
  const lines = el("ul", { class: "plain" });
  for (const aggregate of body.aggregates) {
    const width = fmt(aggregate.halfwidth, 3);
    lines.append(
      el("li", { class: "expected", "data-aggregate": aggregate.name, "data-halfwidth": aggregate.halfwidth },
        el("code", {}, aggregate.name), aggregate.halfwidth === null
          ? ": its interval follows from its group's size, known only once it runs"
          : aggregate.function === "avg"
            ? ` ± ${width} ÷ the group's size (an average's error shrinks with its group)`
            : ` ± ${width}`),
    );
  }
  estimateBox.append(
    el("p", {}, el("strong", {}, "Expected error (95%) per group"), ` at ε ${fmt(body.epsilon)}, over ${body.groups} group${body.groups === 1 ? "" : "s"}:`),
    lines,
  );
  if (body.notes.length) estimateBox.append(el("p", { class: "help" }, body.notes.join("; ")));
}

function later() {
  clearTimeout(pending);
  pending = setTimeout(estimate, 250);
}

function chart(answer, position) {
  const rows = answer.rows.filter((row) => row.values[position]);
  const label = (row) => (row.other ? "other" : row.key.map(String).join(" · ") || "all");
  const lows = rows.map((row) => row.values[position][1] ?? 0);
  const highs = rows.map((row) => row.values[position][2] ?? 0);
  const min = Math.min(0, ...lows);
  const max = Math.max(0, ...highs, 1e-9);
  const left = 150, right = 24, bar = 22, gap = 8, top = 10, width = 680;
  const height = top * 2 + rows.length * (bar + gap) + 20;
  const x = (value) => left + ((value - min) / (max - min)) * (width - left - right);
  const svg = document.createElementNS(SVG, "svg");
  const name = answer.aggregates[position];
  const attrs = (node, values) => { for (const [k, v] of Object.entries(values)) node.setAttribute(k, v); return node; };
  attrs(svg, { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart", "aria-labelledby": "chart-title" });
  const title = attrs(document.createElementNS(SVG, "title"), { id: "chart-title" });
  title.textContent = `${name} per group, with 95% error bars`;
  svg.append(title);
  svg.append(attrs(document.createElementNS(SVG, "line"), { x1: x(0), x2: x(0), y1: top, y2: height - 20, class: "axis" }));
  rows.forEach((row, i) => {
    const [value, low, high] = row.values[position];
    const y = top + i * (bar + gap);
    const g = attrs(document.createElementNS(SVG, "g"), { class: row.near_zero ? "group near-zero" : "group" });
    const text = attrs(document.createElementNS(SVG, "text"), { x: left - 8, y: y + bar * 0.7, "text-anchor": "end" });
    text.textContent = label(row).slice(0, 22);
    g.append(text);
    if (value !== null) {
      g.append(attrs(document.createElementNS(SVG, "rect"), {
        x: Math.min(x(0), x(value)), y, width: Math.max(1, Math.abs(x(value) - x(0))), height: bar, class: "bar",
      }));
    }
    if (low !== null && high !== null) {
      const mid = y + bar / 2;
      const whisker = attrs(document.createElementNS(SVG, "g"), { class: "error-bar" });
      whisker.append(attrs(document.createElementNS(SVG, "line"), { x1: x(low), x2: x(high), y1: mid, y2: mid }));
      for (const end of [low, high]) {
        whisker.append(attrs(document.createElementNS(SVG, "line"), { x1: x(end), x2: x(end), y1: mid - 6, y2: mid + 6 }));
      }
      g.append(whisker);
    }
    const tip = document.createElementNS(SVG, "title");
    tip.textContent = `${label(row)}: ${fmt(value)} (95%: ${fmt(low)} to ${fmt(high)})`;
    g.append(tip);
    svg.append(g);
  });
  for (const tick of [min, max]) {
    const text = attrs(document.createElementNS(SVG, "text"), { x: x(tick), y: height - 4, "text-anchor": "middle", class: "tick" });
    text.textContent = fmt(tick, 3);
    svg.append(text);
  }
  return svg;
}

// The aggregates some row gives with what bounding removed put back.
function putBack(answer) {
  return new Set(answer.rows.flatMap((row) => (row.asked || []).flatMap((figures, i) => (figures ? [i] : []))));
}

function table(answer) {
  const put = putBack(answer);
  const head = el("tr", {}, ...answer.keys.map((k) => el("th", { scope: "col" }, k)));
  answer.aggregates.forEach((name, i) => {
    head.append(el("th", { scope: "col", class: "num" }, name), el("th", { scope: "col", class: "num" }, "95% interval"));
    if (put.has(i)) head.append(el("th", { scope: "col", class: "num" }, `${name}, removed put back`), el("th", { scope: "col", class: "num" }, "95% interval"));
  });
  const body = el("tbody");
  for (const row of answer.rows) {
    const tr = el("tr", {}, ...(row.other ? [el("td", { colspan: answer.keys.length }, "other (merged small groups)")] : row.key.map((k) => el("td", {}, k))));
    row.values.forEach(([value, low, high], i) => {
      tr.append(el("td", { class: "num" }, fmt(value)), el("td", { class: "num" }, `${fmt(low)} – ${fmt(high)}`));
      if (!put.has(i)) return;
      const [back, backLow, backHigh] = (row.asked || [])[i] || [null, null, null];
      tr.append(el("td", { class: "num" }, fmt(back)), el("td", { class: "num" }, back === null ? "" : `${fmt(backLow)} – ${fmt(backHigh)}`));
    });
    if (row.near_zero) tr.classList.add("near-zero");
    body.append(tr);
  }
  return el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Answer table" },
    el("table", { class: "answer" }, el("thead", {}, head), body));
}

function receiptLink(result) {
  const blob = new Blob([JSON.stringify(result.receipt, null, 2)], { type: "application/json" });
  const index = result.receipt.log.index;
  return el("a", { href: URL.createObjectURL(blob), download: `receipt-${index}.json`, class: "button secondary", id: "receipt" }, "Download the signed receipt");
}

function updateBudget(result) {
  // Every dataset the answer read (both sides of a private join), with the ε left on it.
  const uses = result.datasets && result.datasets.length
    ? result.datasets
    : [{ dataset: result.dataset, epsilon_left: result.epsilon_left }];
  for (const use of uses) {
    const item = document.querySelector(`li.budget[data-dataset="${CSS.escape(use.dataset)}"]`);
    if (!item || use.epsilon_left === null || use.epsilon_left === undefined) continue;
    const meter = item.querySelector("meter");
    meter.value = Number(meter.max) - use.epsilon_left;
    item.querySelector(".spent").replaceChildren(
      `ε ${fmt(meter.value)} spent of ${fmt(meter.max)}, `, el("strong", { class: "left" }, `${fmt(use.epsilon_left)} left`),
    );
  }
}

function showAnswer(result) {
  const answer = result.answer;
  answerBody.replaceChildren(
    el("p", {}, `${result.repeated ? "The same answer as before (no ε spent)" : `ε ${fmt(result.epsilon_spent)} spent`} · version ${result.version} of `, el("code", {}, result.dataset), ` · intervals cover the ${answer.interval_of || "data"} at ${Math.round(answer.confidence * 100)}%`),
  );
  let position = 0;
  const figure = el("figure", { class: "chart-box" });
  const caption = el("figcaption");
  if (answer.aggregates.length > 1) {
    const pick = el("select", { id: "chart-of" }, ...answer.aggregates.map((name, i) => el("option", { value: String(i) }, name)));
    pick.addEventListener("change", () => { position = Number(pick.value); figure.replaceChild(chart(answer, position), figure.querySelector("svg")); });
    caption.append(el("label", { for: "chart-of" }, "Chart of "), pick);
  } else {
    caption.append(`${answer.aggregates[0]} per group, with 95% error bars`);
  }
  figure.append(caption, chart(answer, position));
  answerBody.append(figure, table(answer));
  if (answer.suppressed.length) answerBody.append(el("p", { class: "help" }, `${answer.suppressed.length} group(s) under the threshold were hidden.`));
  const removed = Object.entries(answer.removed || {});
  if (removed.length) {
    const shares = removed.map(([name, [share, low, high]]) => `${name} ${fmt(share * 100)}% (${fmt(low * 100)}–${fmt(high * 100)}%)`).join(", ");
    const told = answer.removed_of === "version"
      ? `Bounding each unit's contribution removes an estimated ${shares} of the version's rows (released when it was published; this answer's rows may have lost another share).`
      : `Bounding each unit's contribution removed an estimated ${shares}.`;
    answerBody.append(el("p", { class: "help", id: "removed" }, told
      + (putBack(answer).size ? " “Removed put back” adds each group's part of it (shared in proportion to the groups' values, or the version's share of each, as the notes say), with an interval about the question asked; a high end of – is unknown, as some unit may have more rows than the removed total counts." : "")));
  }
  if (answer.notes.length) answerBody.append(el("p", { class: "help" }, answer.notes.join("; ")));
  answerBody.append(el("p", {}, receiptLink(result), " ", el("a", { href: `/transparency?index=${result.receipt.log.index}` }, "Check it in the log")));
  updateBudget(result);
}

// Without a grant the page has no console to drive.
if (form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const run = document.getElementById("run");
    run.disabled = true;
    answerSection.hidden = false;
    answerBody.replaceChildren(el("p", { role: "status" }, "Running…"));
    try {
      const { ok, body } = await postJson("/portal/query", { sql: sql.value, epsilon: Number(epsilon.value) });
      if (ok) showAnswer(body);
      else answerBody.replaceChildren(problem(body.error));
    } finally {
      run.disabled = false;
      document.getElementById("answer-h").focus();
    }
  });

  dataset.addEventListener("change", () => {
    const chosen = dataset.selectedOptions[0];
    sql.value = chosen.dataset.sample;
    epsilon.value = slider.value = chosen.dataset.defaultEpsilon;
    showColumns();
    estimate();
  });
  sql.addEventListener("input", later);
  epsilon.addEventListener("input", () => { slider.value = epsilon.value; later(); });
  slider.addEventListener("input", () => { epsilon.value = slider.value; later(); });
  showColumns();
  estimate();
}
