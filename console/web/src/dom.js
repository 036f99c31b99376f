// Small DOM helpers shared by the panels.

/**
 * h creates an element: props sets attributes (on* as listeners, class, value,
 * checked; false/null skip), children are nodes or strings (arrays are flattened).
 */
export function h(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "value") e.value = v;
    else if (k === "checked") e.checked = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  append(e, children);
  return e;
}

function append(e, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(e, c);
    else e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** field wraps a labelled control: <label>text control</label>. */
export function field(text, control, hint) {
  return h("label", { class: "field" }, h("span", { class: "field-label" }, text), control, hint ? h("small", { class: "hint" }, hint) : null);
}

/** errorBox returns an alert element for error e (an APIError or Error). */
export function errorBox(e, testid = "error") {
  const msg = e && typeof e.describe === "function" ? e.describe() : String((e && e.message) || e);
  return h("div", { class: "alert error", role: "alert", "data-testid": testid }, msg);
}

/** datalist returns a <datalist id=id> of options. */
export function datalist(id, options) {
  return h("datalist", { id }, options.map((o) => h("option", { value: o })));
}

/** setOptions replaces the options of datalist dl. */
export function setOptions(dl, options) {
  dl.textContent = "";
  for (const o of options) dl.appendChild(h("option", { value: o }));
}
