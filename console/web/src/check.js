// The check panel: object, permission, subject and optional context, completed from the
// schema; the answer (allowed, denied or conditional with the missing parameters) and the
// explain tree, collapsible. Deep link: #/check?object=…&permission=…&subject=…
// [&context=JSON][&consistency=full|min|fresh:ZOOKIE|exact:ZOOKIE] fills the form and runs it.

import { call, consistency } from "./api.js";
import { datalist, errorBox, field, h, setOptions } from "./dom.js";
import { memberOptions, objectOptions, subjectOptions } from "./complete.js";
import { parseObject, parseSubject } from "./text.js";

/** consistencyControl returns {el, value(), set(text)}: a selector and a zookie field. */
export function consistencyControl(initial) {
  const select = h(
    "select",
    { "aria-label": "Consistency", "data-testid": "consistency" },
    h("option", { value: "full" }, "fully consistent"),
    h("option", { value: "min" }, "latest (minimize latency)"),
    h("option", { value: "fresh" }, "at least as fresh as zookie"),
    h("option", { value: "exact" }, "at exact snapshot (zookie)"),
  );
  const zookie = h("input", { type: "text", placeholder: "zookie", "aria-label": "Zookie", spellcheck: "false", class: "zookie" });
  const sync = () => (zookie.hidden = !(select.value === "fresh" || select.value === "exact"));
  select.addEventListener("change", sync);
  const set = (text) => {
    const t = text || "full";
    const colon = t.indexOf(":");
    select.value = colon < 0 ? t : t.slice(0, colon);
    if (!select.value) select.value = "full";
    zookie.value = colon < 0 ? "" : t.slice(colon + 1);
    sync();
  };
  set(initial);
  return {
    el: field("Consistency", h("span", { class: "row" }, select, zookie)),
    value: () => {
      if ((select.value === "fresh" || select.value === "exact") && !zookie.value.trim()) throw new Error("consistency: this mode needs a zookie");
      return consistency(select.value, zookie.value.trim());
    },
    text: () => (select.value === "fresh" || select.value === "exact" ? `${select.value}:${zookie.value.trim()}` : select.value),
  };
}

/** explainTree renders an Explanation as nested, collapsible <details>. */
export function explainTree(node, depth = 0) {
  const verdict = node.conditional ? "conditional" : node.result ? "true" : "false";
  const label = h(
    "span",
    { class: "explain-line" },
    h("span", { class: `badge ${verdict}` }, verdict),
    " ",
    h("code", {}, node.step || "(step)"),
    node.note ? h("span", { class: "note" }, ` — ${node.note}`) : null,
    node.missingContext && node.missingContext.length ? h("span", { class: "note" }, ` (missing ${node.missingContext.join(", ")})`) : null,
  );
  const kids = node.children || [];
  if (!kids.length) return h("div", { class: "explain-leaf", role: "treeitem" }, label);
  return h("details", { open: depth < 6, role: "treeitem" }, h("summary", {}, label), h("div", { class: "explain-children", role: "group" }, kids.map((k) => explainTree(k, depth + 1))));
}

export function mount(main, { params }, app) {
  const objDL = datalist("dl-check-object", []);
  const permDL = datalist("dl-check-permission", []);
  const subjDL = datalist("dl-check-subject", []);
  const object = h("input", { name: "object", list: "dl-check-object", placeholder: "flow:f1", spellcheck: "false", autocomplete: "off", required: true, "data-testid": "check-object", value: params.get("object") || "" });
  const permission = h("input", { name: "permission", list: "dl-check-permission", placeholder: "execute", spellcheck: "false", autocomplete: "off", required: true, "data-testid": "check-permission", value: params.get("permission") || "" });
  const subject = h("input", { name: "subject", list: "dl-check-subject", placeholder: "user:anne", spellcheck: "false", autocomplete: "off", required: true, "data-testid": "check-subject", value: params.get("subject") || "" });
  const context = h("textarea", { name: "context", rows: 2, placeholder: '{"ip": "10.0.0.1"}', spellcheck: "false", "data-testid": "check-context" });
  context.value = params.get("context") || "";
  const cons = consistencyControl(params.get("consistency"));
  const result = h("section", { class: "result", "aria-live": "polite", "data-testid": "check-answer" });
  const refresh = () => {
    const o = app.outline;
    setOptions(objDL, objectOptions(o, object.value));
    setOptions(permDL, memberOptions(o, object.value));
    setOptions(subjDL, subjectOptions(o, subject.value));
  };
  object.addEventListener("input", refresh);
  subject.addEventListener("input", refresh);
  const unsub = app.onSchema(refresh);
  refresh();

  let seq = 0;
  const run = async () => {
    const my = ++seq;
    result.textContent = "";
    let body;
    try {
      body = {
        object: parseObject(object.value),
        permission: permission.value.trim(),
        subject: parseSubject(subject.value),
        consistency: cons.value(),
        explain: true,
      };
      if (!body.permission) throw new Error("permission: required (a relation or permission of the object's type)");
      if (context.value.trim()) {
        try {
          body.context = JSON.parse(context.value);
        } catch (e) {
          throw new Error(`context: not JSON: ${e.message}`);
        }
        if (!body.context || typeof body.context !== "object" || Array.isArray(body.context)) throw new Error("context: must be a JSON object");
      }
    } catch (e) {
      result.append(errorBox(e, "check-error"));
      return;
    }
    const q = new URLSearchParams({ object: object.value.trim(), permission: body.permission, subject: subject.value.trim() });
    if (context.value.trim()) q.set("context", context.value.trim());
    if (cons.text() !== "full") q.set("consistency", cons.text());
    app.setHash(`#/check?${q}`);
    result.append(h("p", { class: "hint" }, "Checking…"));
    try {
      const r = await call("/v1/check", body);
      if (my !== seq) return;
      const word = r.conditional ? "conditional" : r.allowed ? "allowed" : "denied";
      result.textContent = "";
      result.append(
        ...[
        h(
          "div",
          { class: `answer ${word}` },
          h("span", { class: "answer-word", "data-testid": "check-result" }, word),
          h("span", { class: "answer-question" }, ` ${subject.value.trim()} → ${body.permission} on ${object.value.trim()}`),
        ),
        r.missingContext && r.missingContext.length
          ? h("p", { "data-testid": "missing-context" }, "Missing context: ", r.missingContext.map((m) => h("code", {}, m)).reduce((a, b) => [a, ", ", b]))
          : null,
        h("p", { class: "hint" }, "checked at ", h("code", { "data-testid": "checked-at" }, r.checkedAt || "")),
        h("h3", {}, "Explain"),
        h("div", { class: "explain", role: "tree", "data-testid": "explain" }, r.explanation ? explainTree(r.explanation) : h("p", { class: "hint" }, "The server sent no explanation.")),
        ].filter(Boolean),
      );
    } catch (e) {
      if (my !== seq) return;
      result.textContent = "";
      result.append(errorBox(e, "check-error"));
    }
  };
  const form = h(
    "form",
    { class: "panel-form", onsubmit: (e) => (e.preventDefault(), run()) },
    h("div", { class: "grid3" }, field("Object", object), field("Permission or relation", permission), field("Subject", subject)),
    h("div", { class: "grid2" }, field("Context (JSON, optional)", context, "caveat parameters"), cons.el),
    h(
      "div",
      { class: "row" },
      h("button", { type: "submit", "data-testid": "check-run" }, "Check"),
      h(
        "button",
        {
          type: "button",
          class: "ghost",
          onclick: async () => {
            try {
              await navigator.clipboard.writeText(location.href);
              app.setStatus("Link copied");
            } catch {
              app.setStatus("Copy the address bar to share this check");
            }
          },
        },
        "Copy link",
      ),
    ),
    objDL,
    permDL,
    subjDL,
  );
  main.append(h("h1", {}, "Check"), form, result);
  if (object.value && permission.value && subject.value) run();
  else object.focus();
  return () => {
    seq++;
    unsub();
  };
}
