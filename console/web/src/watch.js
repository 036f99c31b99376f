// The watch panel: a live feed of tuple changes (Watch, streamed) with a pause button.
// While paused, changes are kept and counted, and shown on resume.

import { stream } from "./api.js";
import { errorBox, field, h } from "./dom.js";
import { tupleText } from "./text.js";

const MAX_ROWS = 1000;

export function mount(main, { params }) {
  const types = h("input", { spellcheck: "false", autocomplete: "off", placeholder: "flow, role (empty: all)", value: params.get("types") || "", "data-testid": "watch-types" });
  const pause = h("button", { type: "button", "aria-pressed": "false", "data-testid": "watch-pause" }, "Pause");
  const state = h("p", { class: "hint", "aria-live": "polite", "data-testid": "watch-state" });
  const tbody = h("tbody");
  const out = h("div");
  let ctrl = null;
  let paused = false;
  let held = [];
  let total = 0;
  let through = ""; // changesThrough of the last message: where a restart resumes

  const show = (c) => {
    const op = (c.operation || "").replace(/^OPERATION_/, "");
    tbody.prepend(h("tr", { "data-testid": "watch-row", class: `op-${op.toLowerCase()}` }, h("td", {}, op), h("td", {}, h("code", {}, c.tuple ? tupleText(c.tuple) : "")), h("td", {}, h("code", { class: "zookie" }, c.revision || ""))));
    while (tbody.children.length > MAX_ROWS) tbody.lastChild.remove();
  };
  const describe = () => {
    state.textContent = paused
      ? `Paused: ${held.length} change${held.length === 1 ? "" : "s"} waiting.`
      : `Live: ${total} change${total === 1 ? "" : "s"} seen${through ? `, through ${through}` : ""}.`;
  };

  const start = async () => {
    if (ctrl) ctrl.abort();
    ctrl = new AbortController();
    const my = ctrl;
    out.textContent = "";
    const objectTypes = types.value
      .split(/[\s,]+/)
      .map((s) => s.trim())
      .filter(Boolean);
    state.textContent = "Connecting…";
    try {
      // The server's first message says where the feed starts; the panel is live from then.
      for await (const m of stream("/v1/watch", objectTypes.length ? { objectTypes } : {}, my.signal)) {
        through = m.changesThrough || through;
        for (const c of m.changes || []) {
          total++;
          if (paused) held.push(c);
          else show(c);
        }
        describe();
      }
      if (my === ctrl) state.textContent = "The server ended the feed.";
    } catch (e) {
      if (e.name === "AbortError") return;
      out.append(errorBox(e, "watch-error"));
      state.textContent = "Stopped.";
    }
  };
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
    if (!paused) {
      for (const c of held) show(c);
      held = [];
    }
    describe();
  });

  main.append(
    h("h1", {}, "Watch"),
    h(
      "form",
      { class: "panel-form", onsubmit: (e) => (e.preventDefault(), (tbody.textContent = ""), (total = 0), (held = []), (through = ""), start()) },
      h("div", { class: "grid2" }, field("Object types", types), h("div", { class: "row end" }, h("button", { type: "submit", class: "ghost" }, "Restart feed"), pause)),
    ),
    out,
    state,
    h("table", { class: "results" }, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Operation"), h("th", { scope: "col" }, "Tuple"), h("th", { scope: "col" }, "Revision"))), tbody),
  );
  start();
  return () => ctrl && ctrl.abort();
}
