// The lookups panel: LookupResources (type, permission, subject) and LookupSubjects
// (object, permission, subject type), streamed into a table as the results arrive, with
// a running count and a stop button.

import { stream } from "./api.js";
import { datalist, errorBox, field, h, setOptions } from "./dom.js";
import { memberOptions, subjectOptions, typeOptions } from "./complete.js";
import { consistencyControl } from "./check.js";
import { objectText, parseObject, parseSubject, subjectText } from "./text.js";

export function mount(main, { params }, app) {
  const kind = h(
    "select",
    { "aria-label": "Lookup", "data-testid": "lookup-kind" },
    h("option", { value: "resources" }, "Resources: which objects may the subject …?"),
    h("option", { value: "subjects" }, "Subjects: who may … on the object?"),
  );
  kind.value = params.get("kind") === "subjects" ? "subjects" : "resources";
  const typesDL = datalist("dl-lk-types", []);
  const permDL = datalist("dl-lk-perm", []);
  const subjDL = datalist("dl-lk-subject", []);
  const a = h("input", { spellcheck: "false", autocomplete: "off", required: true, list: "dl-lk-types", "data-testid": "lookup-a" });
  const perm = h("input", { spellcheck: "false", autocomplete: "off", required: true, list: "dl-lk-perm", "data-testid": "lookup-permission", value: params.get("permission") || "" });
  const b = h("input", { spellcheck: "false", autocomplete: "off", required: true, list: "dl-lk-subject", "data-testid": "lookup-b" });
  const aLabel = h("span", { class: "field-label" });
  const bLabel = h("span", { class: "field-label" });
  const cons = consistencyControl(params.get("consistency"));
  const count = h("p", { class: "count", "aria-live": "polite", "data-testid": "lookup-count" });
  const headRow = h("tr");
  const tbody = h("tbody");
  const out = h("div");
  const stop = h("button", { type: "button", class: "ghost", disabled: true }, "Stop");
  let ctrl = null;

  const refresh = () => {
    const o = app.outline;
    const res = kind.value === "resources";
    aLabel.textContent = res ? "Resource type" : "Object";
    bLabel.textContent = res ? "Subject" : "Subject type (TYPE or TYPE#RELATION)";
    a.placeholder = res ? "flow" : "flow:f1";
    b.placeholder = res ? "user:anne" : "user";
    setOptions(typesDL, res ? typeOptions(o) : o.definitions.map((d) => `${d.name}:`));
    setOptions(permDL, memberOptions(o, res ? `${a.value}:x` : a.value));
    setOptions(subjDL, res ? subjectOptions(o, b.value) : typeOptions(o));
  };
  if (kind.value === "resources") {
    a.value = params.get("type") || "";
    b.value = params.get("subject") || "";
  } else {
    a.value = params.get("object") || "";
    b.value = params.get("subjectType") || "";
  }
  kind.addEventListener("change", refresh);
  a.addEventListener("input", refresh);
  b.addEventListener("input", refresh);
  const unsub = app.onSchema(refresh);
  refresh();

  const run = async () => {
    if (ctrl) ctrl.abort();
    ctrl = new AbortController();
    const my = ctrl;
    tbody.textContent = "";
    out.textContent = "";
    headRow.textContent = "";
    const res = kind.value === "resources";
    let path;
    let body;
    try {
      if (res) {
        path = "/v1/lookup/resources";
        body = { resourceType: a.value.trim(), permission: perm.value.trim(), subject: parseSubject(b.value), consistency: cons.value() };
        app.setHash(`#/lookups?${new URLSearchParams({ kind: "resources", type: body.resourceType, permission: body.permission, subject: b.value.trim() })}`);
      } else {
        path = "/v1/lookup/subjects";
        const [st, sr] = b.value.trim().split("#");
        body = { object: parseObject(a.value), permission: perm.value.trim(), subjectType: st, consistency: cons.value() };
        if (sr) body.subjectRelation = sr;
        app.setHash(`#/lookups?${new URLSearchParams({ kind: "subjects", object: a.value.trim(), permission: body.permission, subjectType: b.value.trim() })}`);
      }
    } catch (e) {
      out.append(errorBox(e, "lookup-error"));
      return;
    }
    headRow.append(h("th", { scope: "col" }, "#"), h("th", { scope: "col" }, res ? "Object" : "Subject"), h("th", { scope: "col" }, res ? "Condition" : "Excluded / condition"));
    let n = 0;
    let at = "";
    stop.disabled = false;
    count.textContent = "0 results so far…";
    try {
      // Batched results (design §6): many a message, each message in one go.
      for await (const m of stream(path, { ...body, batchResults: true }, my.signal)) {
        at = m.lookedUpAt || at;
        const rows = [];
        for (const r of m.results || []) {
          n++;
          const cond = r.conditional ? `conditional${r.missingContext && r.missingContext.length ? ` (missing ${r.missingContext.join(", ")})` : ""}` : "";
          const third = res ? cond : [(r.excluded || []).map(subjectText).join(", "), cond].filter(Boolean).join("; ");
          rows.push(h("tr", { "data-testid": "lookup-row" }, h("td", { class: "num" }, String(n)), h("td", {}, h("code", {}, res ? objectText(r.object) : subjectText(r.subject))), h("td", {}, third)));
        }
        tbody.append(...rows);
        count.textContent = `${n} result${n === 1 ? "" : "s"} so far…`;
      }
      count.textContent = `${n} result${n === 1 ? "" : "s"}${at ? ` at ${at}` : ""}.`;
    } catch (e) {
      if (e.name === "AbortError") {
        count.textContent = `${n} result${n === 1 ? "" : "s"} (stopped).`;
      } else {
        count.textContent = `${n} result${n === 1 ? "" : "s"} before the error.`;
        out.append(errorBox(e, "lookup-error"));
      }
    } finally {
      if (my === ctrl) stop.disabled = true;
    }
  };
  stop.addEventListener("click", () => ctrl && ctrl.abort());

  main.append(
    h("h1", {}, "Lookups"),
    h(
      "form",
      { class: "panel-form", onsubmit: (e) => (e.preventDefault(), run()) },
      field("Lookup", kind),
      h("div", { class: "grid3" }, h("label", { class: "field" }, aLabel, a), field("Permission or relation", perm), h("label", { class: "field" }, bLabel, b)),
      cons.el,
      h("div", { class: "row" }, h("button", { type: "submit", "data-testid": "lookup-run" }, "Look up"), stop),
      typesDL,
      permDL,
      subjDL,
    ),
    out,
    count,
    h("table", { class: "results" }, h("thead", {}, headRow), tbody),
  );
  if (a.value && perm.value && b.value) run();
  return () => {
    if (ctrl) ctrl.abort();
    unsub();
  };
}
