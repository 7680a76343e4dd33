// Small enhancements shared by every page; each page works without them.

/** The CSRF token of this page's session, for the scripts' POST requests. */
export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

/** POST a JSON body to the portal; resolves to {ok, status, body}. */
export async function postJson(url, payload) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
    body: JSON.stringify(payload),
  });
  const body = await response.json();
  return { ok: response.ok, status: response.status, body };
}

/** An element with text content and attributes: never innerHTML with data. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An error body of the API ({error: {code, message, hint, rule…}}) as a problem box. */
export function problem(error) {
  const box = el("div", { class: "problem", role: "alert" }, el("p", {}, el("strong", {}, error.message)));
  for (const [key, label] of [["rule", "Refused by rule "], ["clause", "Refused by the grant's clause "], ["budget", "Budget: "]]) {
    if (error[key]) box.append(el("p", {}, label, el("code", { class: "rule" }, error[key])));
  }
  if (error.hint) box.append(el("p", { class: "hint" }, error.hint));
  return box;
}

// Catalog facets apply as soon as one is ticked.
for (const box of document.querySelectorAll(".facets input[type=checkbox]")) {
  box.addEventListener("change", () => box.form.submit());
}
