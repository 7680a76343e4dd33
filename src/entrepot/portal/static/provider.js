// Provider pages: publish with the validation report before anything is kept, and the
// policy editor's error shown at its line.
import { csrfToken, el, problem } from "./portal.js";

const form = document.getElementById("publish");
const result = document.getElementById("publish-result");

async function send(onError) {
  const data = new FormData(form);
  data.set("on_error", onError);
  const response = await fetch(form.action, {
    method: "POST", body: data, credentials: "same-origin", headers: { "X-CSRF-Token": csrfToken() },
  });
  return { ok: response.ok, body: await response.json() };
}

function report(error) {
  const box = el("div", { class: "report" }, problem(error));
  const details = error.report;
  if (!details) return box;
  box.append(el("p", {}, `${details.rows_invalid} of ${details.rows_total} rows break the standard; ${details.rows_valid} are valid.`));
  const counts = el("tbody");
  for (const v of details.violations) {
    counts.append(el("tr", {}, el("td", {}, v.rule), el("td", {}, el("code", {}, v.column ?? "")), el("td", { class: "num" }, v.count)));
  }
  box.append(el("table", {}, el("caption", {}, "Rules broken"),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Rule"), el("th", { scope: "col" }, "Column"), el("th", { scope: "col", class: "num" }, "Rows"))), counts));
  const rows = el("tbody");
  for (const row of details.rows) {
    const bad = new Set(row.reasons.map((reason) => reason.split(":")[1]));
    const values = el("td", {});
    for (const [column, value] of Object.entries(row.values)) {
      values.append(el("span", bad.has(column) ? { class: "bad-value" } : {}, `${column}=${value ?? ""}`), " ");
    }
    rows.append(el("tr", { class: "rejected" }, el("td", { class: "num" }, row.line), el("td", {}, row.reasons.join(", ")), values));
  }
  box.append(el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Rejected rows" },
    el("table", {}, el("caption", {}, `Rejected rows (first ${details.rows.length})`),
      el("thead", {}, el("tr", {}, el("th", { scope: "col", class: "num" }, "Line"), el("th", { scope: "col" }, "Why"), el("th", { scope: "col" }, "Values"))), rows)));
  return box;
}

function published(body) {
  const rejected = body.rows_rejected ? `, ${body.rows_rejected.toLocaleString("en")} quarantined` : "";
  return el("p", { class: "notice", role: "status" }, `Version ${body.version} of `,
    el("a", { href: `/datasets/${body.dataset}` }, body.dataset), ` published: ${body.rows.toLocaleString("en")} rows${rejected}.`);
}

async function publish(onError) {
  result.replaceChildren(el("p", { role: "status" }, "Checking the file…"));
  const { ok, body } = await send(onError);
  if (ok) {
    result.replaceChildren(published(body));
    return;
  }
  result.replaceChildren(report(body.error));
  if (body.error.report && body.error.report.rows_valid > 0) {
    const keep = el("button", { type: "button" }, "Publish the valid rows, quarantine the rest");
    const stop = el("button", { type: "button", class: "secondary" }, "Publish nothing");
    keep.addEventListener("click", () => publish("quarantine"));
    stop.addEventListener("click", () => result.replaceChildren(el("p", { role: "status" }, "Nothing was published.")));
    result.append(el("div", { class: "actions" }, keep, stop));
    keep.focus();
  }
}

if (form) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    publish(form.elements.on_error.value);
  });
}

// The policy editor: put the caret on the line the parser refused.
const editor = document.getElementById("document");
if (editor && editor.dataset.errorLine) {
  const lines = editor.value.split("\n");
  const line = Number(editor.dataset.errorLine) - 1;
  const start = lines.slice(0, line).reduce((sum, text) => sum + text.length + 1, 0);
  editor.focus();
  editor.setSelectionRange(start, start + (lines[line] || "").length);
  const height = editor.scrollHeight / Math.max(lines.length, 1);
  editor.scrollTop = Math.max(0, (line - 3) * height);
}
