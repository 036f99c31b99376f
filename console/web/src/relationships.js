// The relationships panel: browse with a filter (type, id, relation, subject), pages of
// the API's cursor, add and delete tuples in the text form, import a pasted block.
// Deep link: #/relationships?filter=TYPE[:ID][#RELATION][@SUBJECT]

import { call, stream } from "./api.js";
import { datalist, errorBox, field, h, setOptions } from "./dom.js";
import { typeOptions } from "./complete.js";
import { parseFilter, parseTuples, tupleText } from "./text.js";

const PAGE = 50;
const CHUNK = 1000; // updates per write: the server's limit

export function mount(main, { params }, app) {
  const filterParts = splitFilter(params.get("filter") || "");
  const fType = h("input", { name: "type", list: "dl-rel-type", placeholder: "flow", spellcheck: "false", autocomplete: "off", value: filterParts.type, "data-testid": "filter-type" });
  const fId = h("input", { name: "id", placeholder: "f1", spellcheck: "false", autocomplete: "off", value: filterParts.id, "data-testid": "filter-id" });
  const fRel = h("input", { name: "relation", placeholder: "granted", spellcheck: "false", autocomplete: "off", value: filterParts.relation, "data-testid": "filter-relation" });
  const fSubj = h("input", { name: "subject", placeholder: "user:anne, role:ops#member or user", spellcheck: "false", autocomplete: "off", value: filterParts.subject, "data-testid": "filter-subject" });
  const typeDL = datalist("dl-rel-type", typeOptions(app.outline));
  const unsub = app.onSchema(() => setOptions(typeDL, typeOptions(app.outline)));
  const tbody = h("tbody");
  const info = h("p", { class: "hint", "aria-live": "polite", "data-testid": "rel-info" });
  const prev = h("button", { type: "button", class: "ghost", disabled: true, "data-testid": "page-prev" }, "← Previous");
  const next = h("button", { type: "button", class: "ghost", disabled: true, "data-testid": "page-next" }, "Next →");
  const out = h("div", { "aria-live": "polite" });
  const readErr = h("div", { "aria-live": "polite" });
  let cursors = [""]; // cursor of each page shown so far
  let page = 0;
  let nextCursor = "";
  let ctrl = null;

  const filterText = () => {
    let s = fType.value.trim();
    if (fId.value.trim()) s += `:${fId.value.trim()}`;
    if (fRel.value.trim()) s += `#${fRel.value.trim()}`;
    if (fSubj.value.trim()) s += `@${fSubj.value.trim()}`;
    return s;
  };

  const load = async () => {
    if (ctrl) ctrl.abort();
    ctrl = new AbortController();
    const my = ctrl;
    tbody.textContent = "";
    info.textContent = "Reading…";
    readErr.textContent = "";
    const ft = filterText();
    app.setHash(ft ? `#/relationships?filter=${encodeURIComponent(ft)}` : "#/relationships");
    let n = 0;
    let last = "";
    try {
      // Batched results (design §6): a page is a message or two; its last cursor
      // resumes after the page, and a one-tuple read from there says whether there
      // is a next page.
      const body = { filter: parseFilter(ft), consistency: { fullyConsistent: true }, limit: PAGE, cursor: cursors[page], batchResults: true };
      for await (const m of stream("/v1/tuples/read", body, my.signal)) {
        for (const r of m.results || []) {
          n++;
          tbody.append(row(r.tuple));
        }
        last = m.cursor || last;
      }
      if (n === PAGE && last) {
        for await (const m of stream("/v1/tuples/read", { ...body, limit: 1, cursor: last }, my.signal)) n += (m.results || []).length;
      }
    } catch (e) {
      if (e.name === "AbortError") return;
      info.textContent = "";
      readErr.append(errorBox(e, "rel-error"));
      return;
    }
    if (my !== ctrl) return;
    const more = n > PAGE;
    nextCursor = more ? last : "";
    const shown = Math.min(n, PAGE);
    info.textContent = shown ? `Page ${page + 1}: ${shown} tuple${shown === 1 ? "" : "s"}${more ? ", more on the next page" : ""}.` : "No tuples match.";
    prev.disabled = page === 0;
    next.disabled = !more;
  };

  const row = (t) => {
    const text = tupleText(t);
    return h(
      "tr",
      { "data-testid": "tuple-row" },
      h("td", {}, h("code", {}, text)),
      h(
        "td",
        { class: "actions" },
        h(
          "button",
          {
            type: "button",
            class: "ghost small",
            "aria-label": `Delete ${text}`,
            onclick: async () => {
              await write([{ operation: "DELETE", tuple: t }], `Deleted ${text}`);
              load();
            },
          },
          "Delete",
        ),
      ),
    );
  };

  const write = async (updates, done) => {
    out.textContent = "";
    try {
      let zookie = "";
      for (let i = 0; i < updates.length; i += CHUNK) {
        const r = await call("/v1/tuples/write", { updates: updates.slice(i, i + CHUNK) });
        zookie = r.writtenAt;
        if (updates.length > CHUNK) out.textContent = `${Math.min(i + CHUNK, updates.length)} of ${updates.length} written…`;
      }
      out.textContent = "";
      out.append(h("div", { class: "alert ok", role: "status", "data-testid": "write-ok" }, `${done}. Zookie `, h("code", {}, zookie)));
      return true;
    } catch (e) {
      out.textContent = "";
      out.append(errorBox(e, "rel-error"));
      return false;
    }
  };

  const editor = h("textarea", {
    rows: 4,
    spellcheck: "false",
    placeholder: "flow:f1#granted@user:anne\nrole:ops#member@user:olga",
    "aria-label": "Tuples, one a line",
    "data-testid": "tuple-input",
  });
  const apply = (operation) => async () => {
    const { tuples, errors } = parseTuples(editor.value);
    if (errors.length) {
      out.textContent = "";
      out.append(errorBox(new Error(errors.join("; ")), "rel-error"));
      return;
    }
    if (!tuples.length) {
      out.textContent = "";
      out.append(errorBox(new Error("no tuples: write one a line, e.g. flow:f1#granted@user:anne"), "rel-error"));
      return;
    }
    const verb = { CREATE: "Created", TOUCH: "Wrote", DELETE: "Deleted" }[operation];
    const ok = await write(
      tuples.map((tuple) => ({ operation, tuple })),
      `${verb} ${tuples.length} tuple${tuples.length === 1 ? "" : "s"}`,
    );
    if (ok) {
      editor.value = "";
      load();
    }
  };

  prev.addEventListener("click", () => {
    if (page > 0) {
      page--;
      load();
    }
  });
  next.addEventListener("click", () => {
    if (nextCursor) {
      cursors = cursors.slice(0, page + 1);
      cursors.push(nextCursor);
      page++;
      load();
    }
  });

  main.append(
    h("h1", {}, "Relationships"),
    h(
      "form",
      {
        class: "panel-form",
        onsubmit: (e) => {
          e.preventDefault();
          cursors = [""];
          page = 0;
          load();
        },
      },
      h("div", { class: "grid4" }, field("Resource type", fType), field("Resource id", fId), field("Relation", fRel), field("Subject", fSubj)),
      h("div", { class: "row" }, h("button", { type: "submit", "data-testid": "filter-run" }, "Filter"), typeDL),
    ),
    h(
      "section",
      { class: "panel-form" },
      h("h2", {}, "Add, delete or import"),
      h("p", { class: "hint" }, "One tuple a line (", h("code", {}, "object#relation@subject"), "); ", h("code", {}, "//"), " comments and blank lines are skipped. Paste a whole block to import it (written in chunks of 1000)."),
      editor,
      h(
        "div",
        { class: "row" },
        h("button", { type: "button", onclick: apply("TOUCH"), "data-testid": "tuple-write" }, "Write (touch)"),
        h("button", { type: "button", class: "ghost", onclick: apply("CREATE"), "data-testid": "tuple-create" }, "Create"),
        h("button", { type: "button", class: "ghost danger", onclick: apply("DELETE"), "data-testid": "tuple-delete" }, "Delete"),
      ),
    ),
    out,
    readErr,
    info,
    h("table", { class: "tuples" }, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Tuple"), h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")))), tbody),
    h("div", { class: "row" }, prev, next),
  );
  load();
  return () => {
    if (ctrl) ctrl.abort();
    unsub();
  };
}

// splitFilter splits `type[:id][#relation][@subject]` into the form's fields.
function splitFilter(s) {
  const at = s.indexOf("@");
  const left = at < 0 ? s : s.slice(0, at);
  const subject = at < 0 ? "" : s.slice(at + 1);
  const hash = left.indexOf("#");
  const obj = hash < 0 ? left : left.slice(0, hash);
  const relation = hash < 0 ? "" : left.slice(hash + 1);
  const colon = obj.indexOf(":");
  return { type: colon < 0 ? obj : obj.slice(0, colon), id: colon < 0 ? "" : obj.slice(colon + 1), relation, subject };
}
