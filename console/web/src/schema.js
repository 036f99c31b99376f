// The schema panel. View (#/schema): the schema in force, highlighted, beside a diagram of
// its definitions and relations. Edit (#/schema/edit): a CodeMirror editor that asks the
// API to validate as you type (DiffSchema, when the server has it), shows the errors at
// line:col in the editor and below it, the diff and the tuples a change would orphan, and
// writes with one click (WriteSchema, which validates again and refuses orphans).

import { EditorState } from "@codemirror/state";
import { EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter, drawSelection } from "@codemirror/view";
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { bracketMatching, indentOnInput, syntaxHighlighting } from "@codemirror/language";
import { autocompletion, completionKeymap, closeBrackets } from "@codemirror/autocomplete";
import { lintGutter, setDiagnostics, lintKeymap } from "@codemirror/lint";
import { classHighlighter } from "@lezer/highlight";
import { APIError, call } from "./api.js";
import { errorBox, h } from "./dom.js";
import { drawDiagram } from "./diagram.js";
import { highlightInto, schemaLanguage } from "./lang.js";
import { outline } from "./outline.js";
import { tupleText } from "./text.js";

export function mount(main, { sub }, app) {
  if (sub === "edit") return mountEditor(main, app);
  const text = h("pre", { class: "schema-text", "data-testid": "schema-text", tabindex: 0, "aria-label": "Schema in force" });
  const diagram = h("div", { class: "diagram-box", "data-testid": "schema-diagram" });
  const head = h("p", { class: "hint", "data-testid": "schema-info" });
  const render = () => {
    text.textContent = "";
    head.textContent = "";
    if (app.schemaError) {
      head.append(errorBox(app.schemaError, "schema-error"));
    }
    highlightInto(text, app.schemaText);
    const o = app.outline;
    head.append(`${o.definitions.length} definitions, ${o.definitions.reduce((n, d) => n + d.relations.length, 0)} relations, ${o.definitions.reduce((n, d) => n + d.permissions.length, 0)} permissions.`);
    drawDiagram(diagram, o);
  };
  main.append(
    h("div", { class: "row spread" }, h("h1", {}, "Schema"), h("div", { class: "row" }, h("button", { type: "button", class: "ghost", onclick: () => app.loadSchema() }, "Reload"), h("a", { class: "button", href: "#/schema/edit", "data-testid": "schema-edit" }, "Edit"))),
    head,
    h(
      "div",
      { class: "split schema-split" },
      h("section", { "aria-label": "Schema text" }, text),
      h("section", { "aria-label": "Diagram" }, h("p", { class: "legend" }, h("span", { class: "legend-rel" }, "── relation → allowed subject type"), "  ", h("span", { class: "legend-arrow" }, "┄┄ permission arrow r->p")), diagram),
    ),
  );
  render();
  return app.onSchema(render);
}

// positions extracts the schema errors of an API error: ErrorInfo metadata (line,
// column, file) when the server sends it, else every `schema:LINE:COL: reason` in the
// message.
export function positions(err) {
  const out = [];
  const md = (err && err.metadata) || {};
  const re = /(?:^|[\s;(])(?:[\w./-]+:)?(\d+):(\d+): (.*?)(?=; (?:[\w./-]+:)?\d+:\d+: | \(and \d+ more errors?\)|$)/g;
  for (const m of (err && err.message ? err.message : "").matchAll(re)) {
    out.push({ line: +m[1], column: +m[2], message: m[3] });
  }
  const ml = parseInt(md.line, 10);
  if (ml > 0 && !out.some((p) => p.line === ml)) {
    out.unshift({ line: ml, column: parseInt(md.column, 10) || 1, message: md.problem || err.message });
  }
  return out;
}

function diagnosticsFor(doc, errs) {
  return errs.map((p) => {
    const line = doc.line(Math.min(Math.max(p.line, 1), doc.lines));
    const from = Math.min(line.from + Math.max(p.column - 1, 0), line.to);
    let to = from;
    const word = /^[A-Za-z0-9_/]+/.exec(doc.sliceString(from, line.to));
    to = word ? from + word[0].length : Math.min(from + 1, line.to);
    return { from, to, severity: "error", message: `${p.line}:${p.column}: ${p.message}` };
  });
}

// completions from the outline of the text being edited, plus the language's keywords.
function completeSchema(context) {
  const word = context.matchBefore(/[A-Za-z_][A-Za-z0-9_]*/);
  if (!word && !context.explicit) return null;
  const o = outline(context.state.doc.toString());
  const opts = [
    ...["definition", "relation", "permission", "caveat", "with", "expiration", "nil", "self"].map((k) => ({ label: k, type: "keyword" })),
    ...o.definitions.map((d) => ({ label: d.name, type: "type" })),
    ...o.caveats.map((c) => ({ label: c.name, type: "function" })),
  ];
  const seen = new Set();
  for (const d of o.definitions) {
    for (const r of d.relations) if (!seen.has(r.name)) seen.add(r.name), opts.push({ label: r.name, type: "property", detail: `relation of ${d.name}` });
    for (const p of d.permissions) if (!seen.has(p.name)) seen.add(p.name), opts.push({ label: p.name, type: "method", detail: `permission of ${d.name}` });
  }
  return { from: word ? word.from : context.pos, options: opts, validFor: /^[A-Za-z0-9_]*$/ };
}

function mountEditor(main, app) {
  const status = h("div", { class: "validation", "aria-live": "polite", "data-testid": "schema-validation" });
  const errorsList = h("ul", { class: "errors", "data-testid": "schema-errors" });
  const diffBox = h("div", { class: "diff", "data-testid": "schema-diff" });
  const out = h("div", { "aria-live": "polite" });
  const host = h("div", { class: "editor", "data-testid": "schema-editor" });
  let timer = 0;
  let seq = 0;
  let view;

  const showErrors = (errs) => {
    errorsList.textContent = "";
    for (const p of errs) {
      errorsList.append(
        h(
          "li",
          { "data-testid": "schema-error-item", "data-line": p.line },
          h(
            "button",
            {
              type: "button",
              class: "link",
              onclick: () => {
                const line = view.state.doc.line(Math.min(p.line, view.state.doc.lines));
                view.dispatch({ selection: { anchor: Math.min(line.from + p.column - 1, line.to) }, scrollIntoView: true });
                view.focus();
              },
            },
            `${p.line}:${p.column}`,
          ),
          `: ${p.message}`,
        ),
      );
    }
    view.dispatch(setDiagnostics(view.state, diagnosticsFor(view.state.doc, errs)));
  };

  const handleError = (e) => {
    const errs = positions(e);
    showErrors(errs);
    if (!errs.length) out.append(errorBox(e, "schema-write-error"));
    return errs;
  };

  const validate = async () => {
    const my = ++seq;
    const text = view.state.doc.toString();
    diffBox.textContent = "";
    localDiff(diffBox, app.outline, outline(text));
    if (app.diffUnsupported) {
      status.textContent = "This server has no DiffSchema: the schema is validated when you write it.";
      return;
    }
    status.textContent = "Validating…";
    try {
      const r = await call("/v1/schema/diff", { schema: text });
      if (my !== seq) return;
      status.textContent = "Valid.";
      showErrors([]);
      diffBox.textContent = "";
      serverDiff(diffBox, r);
    } catch (e) {
      if (my !== seq) return;
      if (e instanceof APIError && (e.status === 404 || e.status === 501) && !positions(e).length) {
        app.diffUnsupported = true;
        status.textContent = "This server has no DiffSchema: the schema is validated when you write it.";
        return;
      }
      const errs = positions(e);
      status.textContent = errs.length ? `${errs.length} error${errs.length === 1 ? "" : "s"}.` : "";
      out.textContent = "";
      handleError(e);
    }
  };

  const write = async () => {
    out.textContent = "";
    status.textContent = "Writing…";
    try {
      const r = await call("/v1/schema/write", { schema: view.state.doc.toString() });
      showErrors([]);
      status.textContent = "";
      out.append(h("div", { class: "alert ok", role: "status", "data-testid": "schema-written" }, "Schema written. Zookie ", h("code", {}, r.writtenAt)));
      await app.loadSchema();
      diffBox.textContent = "";
    } catch (e) {
      const errs = handleError(e);
      status.textContent = errs.length ? `Not written: ${errs.length} error${errs.length === 1 ? "" : "s"}.` : "Not written.";
    }
  };

  view = new EditorView({
    parent: host,
    state: EditorState.create({
      doc: app.schemaText,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightActiveLine(),
        drawSelection(),
        history(),
        indentOnInput(),
        bracketMatching(),
        closeBrackets(),
        schemaLanguage,
        syntaxHighlighting(classHighlighter),
        autocompletion({ override: [completeSchema] }),
        lintGutter(),
        keymap.of([{ key: "Mod-s", run: () => (write(), true) }, ...defaultKeymap, ...historyKeymap, ...completionKeymap, ...lintKeymap]),
        EditorView.contentAttributes.of({ "aria-label": "Schema editor" }),
        EditorView.updateListener.of((u) => {
          if (!u.docChanged) return;
          clearTimeout(timer);
          timer = setTimeout(validate, 400);
        }),
      ],
    }),
  });
  host.cmView = view; // for tests and the curious: the CodeMirror EditorView

  main.append(
    h("div", { class: "row spread" }, h("h1", {}, "Edit schema"), h("a", { class: "button ghost", href: "#/schema" }, "Back to the schema")),
    h("p", { class: "hint" }, "Ctrl+Space completes; Ctrl+S writes; Esc then Tab leaves the editor. Errors show at their line and below."),
    h("div", { class: "split editor-split" }, host, h("aside", {}, status, errorsList, h("h2", {}, "Changes"), diffBox)),
    h(
      "div",
      { class: "row" },
      h("button", { type: "button", onclick: write, "data-testid": "schema-write" }, "Write schema"),
      h("button", { type: "button", class: "ghost", onclick: validate, "data-testid": "schema-validate" }, "Validate"),
      h("button", { type: "button", class: "ghost", onclick: () => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: app.schemaText } }) }, "Revert"),
    ),
    out,
  );
  validate();
  return () => {
    clearTimeout(timer);
    seq++;
    view.destroy();
  };
}

// localDiff lists what the edit adds and removes, read from the two outlines in the
// browser (the server's DiffSchema, when present, replaces it with orphan counts).
function localDiff(box, before, after) {
  const names = (o) => {
    const s = new Set();
    for (const d of o.definitions) {
      s.add(`definition ${d.name}`);
      for (const r of d.relations) s.add(`relation ${d.name}#${r.name}: ${r.types.map((t) => t.type + (t.relation ? "#" + t.relation : "") + (t.wildcard ? ":*" : "")).join(" | ")}`);
      for (const p of d.permissions) s.add(`permission ${d.name}#${p.name}`);
    }
    for (const c of o.caveats) s.add(`caveat ${c.name}`);
    return s;
  };
  const a = names(before);
  const b = names(after);
  const added = [...b].filter((x) => !a.has(x));
  const removed = [...a].filter((x) => !b.has(x));
  if (!added.length && !removed.length) {
    box.append(h("p", { class: "hint" }, "No change to definitions, relations, permissions or caveats."));
    return;
  }
  box.append(
    h("ul", {}, added.map((x) => h("li", { class: "added" }, "+ ", x)), removed.map((x) => h("li", { class: "removed" }, "− ", x))),
    h("p", { class: "hint" }, "Read in the browser; the server refuses a write that would orphan stored tuples and names one."),
  );
}

// serverDiff renders a DiffSchema answer (removed, changed and added definitions,
// relations, permissions and caveats), with the stored tuples each change would orphan
// and, when the server would refuse the write, its reason.
function serverDiff(box, r) {
  const items = [];
  for (const [cls, mark, list] of [["removed", "−", r.removed], ["changed", "~", r.changed], ["added", "+", r.added]]) {
    for (const c of list || []) items.push({ cls, mark, c });
  }
  if (!items.length) {
    box.append(h("p", { class: "hint" }, r.unchanged ? "No change: this is the schema in force." : "No change."));
    return;
  }
  const orphans = (c) => {
    const n = Number(c.orphanedTuples || 0);
    if (!n) return "";
    return h("strong", { class: "orphans" }, ` (orphans ${n} tuple${n === 1 ? "" : "s"}${c.orphanExample ? ", e.g. " + tupleText(c.orphanExample) : ""})`);
  };
  box.append(
    h(
      "ul",
      {},
      items.map(({ cls, mark, c }) =>
        h("li", { class: cls, "data-testid": "schema-diff-item" }, `${mark} ${c.kind} ${c.definition ? c.definition + "#" : ""}${c.name}`, c.description ? ` — ${c.description}` : "", orphans(c)),
      ),
    ),
  );
  if (r.refused) box.append(h("div", { class: "alert error", role: "alert", "data-testid": "schema-diff-refused" }, r.refusal));
}
