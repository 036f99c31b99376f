// The models panel: the bundled permission models (schema/models, described in
// docs/models.md), which the server sends with the console as models.json. Pick
// one, read its description, and load its schema (and, if wanted, the example
// relationships of its validation file) into the server.

import { call } from "./api.js";
import { errorBox, h } from "./dom.js";
import { highlightInto } from "./lang.js";
import { parseTuples } from "./text.js";

let cache = null;

async function loadModels() {
  if (!cache) {
    const r = await fetch("models.json");
    if (!r.ok) throw new Error(`models.json: HTTP ${r.status}`);
    cache = await r.json();
  }
  return cache;
}

/** markdown renders the small Markdown of docs/models.md: headings, paragraphs, lists, code, tables. */
function markdown(text) {
  const out = h("div", { class: "doc" });
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; ) {
    const l = lines[i];
    if (l.startsWith("```")) {
      const body = [];
      for (i++; i < lines.length && !lines[i].startsWith("```"); i++) body.push(lines[i]);
      i++;
      out.append(h("pre", {}, body.join("\n")));
      continue;
    }
    if (/^#{1,6} /.test(l)) {
      const level = Math.min(6, l.indexOf(" ") + 1);
      out.append(h(`h${level}`, {}, inline(l.replace(/^#+ /, ""))));
      i++;
      continue;
    }
    if (l.startsWith("|")) {
      const rows = [];
      for (; i < lines.length && lines[i].startsWith("|"); i++) rows.push(lines[i]);
      const cells = (r) => r.replace(/^\||\|$/g, "").split("|").map((c) => c.trim());
      const body = rows.filter((r) => !/^\|[\s|:-]+\|$/.test(r));
      out.append(
        h(
          "table",
          { class: "doc-table" },
          h("thead", {}, h("tr", {}, cells(body[0] || "").map((c) => h("th", {}, inline(c))))),
          h("tbody", {}, body.slice(1).map((r) => h("tr", {}, cells(r).map((c) => h("td", {}, inline(c)))))),
        ),
      );
      continue;
    }
    if (/^\s*[-*] /.test(l)) {
      const items = [];
      for (; i < lines.length && /^\s*([-*] |\s{2,}\S)/.test(lines[i]); i++) {
        if (/^\s*[-*] /.test(lines[i])) items.push(lines[i].replace(/^\s*[-*] /, ""));
        else items[items.length - 1] += " " + lines[i].trim();
      }
      out.append(h("ul", {}, items.map((it) => h("li", {}, inline(it)))));
      continue;
    }
    if (!l.trim() || l.trim() === "---") {
      i++;
      continue;
    }
    const para = [];
    for (; i < lines.length && lines[i].trim() && !/^(#|```|\||\s*[-*] )/.test(lines[i]); i++) para.push(lines[i]);
    out.append(h("p", {}, inline(para.join(" "))));
  }
  return out;
}

function inline(s) {
  const parts = [];
  const re = /`([^`]+)`|\*\*([^*]+)\*\*|\[([^\]]+)\]\([^)]*\)/g;
  let last = 0;
  for (const m of s.matchAll(re)) {
    parts.push(s.slice(last, m.index));
    if (m[1] !== undefined) parts.push(h("code", {}, m[1]));
    else if (m[2] !== undefined) parts.push(h("strong", {}, m[2]));
    else parts.push(m[3]);
    last = m.index + m[0].length;
  }
  parts.push(s.slice(last));
  return parts;
}

export function mount(main, { params }, app) {
  const list = h("ul", { class: "model-list", role: "listbox", "aria-label": "Bundled models" });
  const detail = h("section", { class: "model-detail", "aria-live": "polite" });
  main.append(h("h1", {}, "Models"), h("p", { class: "hint" }, "The permission models bundled with Relata. Loading one writes its schema into this server (refused while stored tuples would be orphaned)."), h("div", { class: "split" }, list, detail));
  let alive = true;
  loadModels()
    .then((models) => {
      if (!alive) return;
      const select = (m, focus) => {
        for (const li of list.children) li.setAttribute("aria-selected", String(li.dataset.model === m.name));
        app.setHash(`#/models?name=${encodeURIComponent(m.name)}`);
        showModel(detail, m, app);
        if (focus) list.querySelector(`[data-model="${m.name}"]`).focus();
      };
      models.forEach((m, i) => {
        const li = h(
          "li",
          {
            role: "option",
            tabindex: 0,
            "data-model": m.name,
            "data-testid": "model",
            onclick: () => select(m),
            onkeydown: (e) => {
              if (e.key === "Enter" || e.key === " ") {
                e.preventDefault();
                select(m);
              } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
                e.preventDefault();
                const j = (i + (e.key === "ArrowDown" ? 1 : models.length - 1)) % models.length;
                select(models[j], true);
              }
            },
          },
          h("strong", {}, m.name),
          m.default ? h("span", { class: "badge" }, "default") : null,
          h("br"),
          h("small", {}, m.summary),
        );
        list.append(li);
      });
      const want = models.find((m) => m.name === params.get("name")) || models[0];
      if (want) select(want);
    })
    .catch((e) => detail.append(errorBox(e)));
  return () => {
    alive = false;
  };
}

function showModel(detail, m, app) {
  detail.textContent = "";
  const out = h("div", { "aria-live": "polite" });
  const load = async (withTuples) => {
    out.textContent = "";
    try {
      const r = await call("/v1/schema/write", { schema: m.schema });
      let msg = `Schema of ${m.name} written at ${r.writtenAt}.`;
      if (withTuples) {
        const { tuples, errors } = parseTuples(m.relationships || "");
        if (errors.length) throw new Error(errors.join("; "));
        for (let i = 0; i < tuples.length; i += 1000) {
          const w = await call("/v1/tuples/write", { updates: tuples.slice(i, i + 1000).map((tuple) => ({ operation: "TOUCH", tuple })) });
          msg = `Schema and ${tuples.length} example tuples of ${m.name} written; last zookie ${w.writtenAt}.`;
        }
      }
      out.append(h("div", { class: "alert ok", role: "status", "data-testid": "model-loaded" }, msg));
      app.loadSchema();
    } catch (e) {
      out.append(errorBox(e, "model-error"));
    }
  };
  const pre = h("pre", { class: "schema-text small" });
  highlightInto(pre, m.schema);
  detail.append(
    h("h2", {}, m.name),
    h("p", {}, m.summary),
    h(
      "div",
      { class: "row" },
      h("button", { type: "button", onclick: () => load(false), "data-testid": "model-load" }, "Load schema"),
      h("button", { type: "button", class: "ghost", onclick: () => load(true), "data-testid": "model-load-tuples" }, "Load schema and example relationships"),
    ),
    out,
    m.doc ? markdown(m.doc) : "",
    h("details", {}, h("summary", {}, "Schema"), pre),
  );
}
