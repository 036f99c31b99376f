// The Relata console: a hash-routed single page. Each panel is a module whose mount
// function fills the main element and returns a cleanup function. The schema in force is
// read once at start (and after every schema write) for completion and the diagram.

import { call, getToken, onUnauthorized, setToken } from "./api.js";
import { h } from "./dom.js";
import { outline } from "./outline.js";
import * as schemaPanel from "./schema.js";
import * as checkPanel from "./check.js";
import * as lookupsPanel from "./lookups.js";
import * as relationshipsPanel from "./relationships.js";
import * as watchPanel from "./watch.js";
import * as modelsPanel from "./models.js";

const PANELS = [
  { name: "schema", title: "Schema", key: "1", mod: schemaPanel },
  { name: "check", title: "Check", key: "2", mod: checkPanel },
  { name: "lookups", title: "Lookups", key: "3", mod: lookupsPanel },
  { name: "relationships", title: "Relationships", key: "4", mod: relationshipsPanel },
  { name: "watch", title: "Watch", key: "5", mod: watchPanel },
  { name: "models", title: "Models", key: "6", mod: modelsPanel },
];

/** parseHash splits `#/name/sub?query` into {name, sub, params}. */
function parseHash(hash) {
  const raw = (hash || "").replace(/^#\/?/, "");
  const q = raw.indexOf("?");
  const path = q < 0 ? raw : raw.slice(0, q);
  const params = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
  const [name, ...rest] = path.split("/");
  return { name: name || "schema", sub: rest.join("/"), params };
}

class App {
  constructor(root) {
    this.root = root;
    this.schemaText = "";
    this.outline = { definitions: [], caveats: [] };
    this.schemaError = null;
    this.listeners = new Set();
    this.cleanup = null;
    this.prompting = false;
    this.build();
    onUnauthorized(() => this.promptToken(true));
    window.addEventListener("hashchange", () => this.route());
    document.addEventListener("keydown", (e) => this.shortcut(e));
  }

  build() {
    const saved = localStorage.getItem("relata.theme");
    if (saved) document.documentElement.dataset.theme = saved;
    this.nav = h(
      "nav",
      { "aria-label": "Panels" },
      PANELS.map((p) => h("a", { href: `#/${p.name}`, "data-panel": p.name, title: `${p.title} (Alt+${p.key})` }, p.title)),
    );
    this.status = h("span", { class: "status", "aria-live": "polite", "data-testid": "status" });
    this.main = h("main", { id: "main", tabindex: "-1" });
    this.dialog = this.tokenDialog();
    this.root.append(
      h("a", { class: "skip", href: "#main", onclick: (e) => (e.preventDefault(), this.main.focus()) }, "Skip to the panel"),
      h(
        "header",
        {},
        h("span", { class: "brand" }, "Relata"),
        this.nav,
        this.status,
        h("button", { type: "button", class: "ghost", onclick: () => this.promptToken(false), title: "Set the API token" }, "Token"),
        h("button", { type: "button", class: "ghost", onclick: () => this.toggleTheme(), title: "Switch between the dark and the light theme", "data-testid": "theme" }, "Theme"),
      ),
      this.main,
      this.dialog,
    );
  }

  tokenDialog() {
    const input = h("input", { type: "password", name: "token", autocomplete: "off", required: true, "aria-label": "API token", "data-testid": "token-input" });
    this.tokenMsg = h("p", { class: "hint" });
    const form = h(
      "form",
      {
        method: "dialog",
        onsubmit: (e) => {
          e.preventDefault();
          setToken(input.value.trim());
          input.value = "";
          this.dialog.close();
          this.prompting = false;
          this.loadSchema().then(() => this.route());
        },
      },
      h("h2", {}, "This server needs a token"),
      this.tokenMsg,
      h("label", { class: "field" }, h("span", { class: "field-label" }, "Token: the --preshared-key, a key of the --keys-file, or an OIDC token"), input),
      h("p", { class: "hint" }, "Kept in this tab only (sessionStorage) and sent as an Authorization: Bearer header."),
      h("div", { class: "row" }, h("button", { type: "submit", "data-testid": "token-submit" }, "Use token"), h("button", { type: "button", class: "ghost", onclick: () => (this.dialog.close(), (this.prompting = false)) }, "Cancel")),
    );
    return h("dialog", { "data-testid": "token-prompt", "aria-labelledby": "token-title" }, form);
  }

  promptToken(rejected) {
    if (this.prompting) return;
    this.prompting = true;
    this.tokenMsg.textContent = rejected
      ? getToken()
        ? "The server refused the token (401). Enter it again."
        : "The server answered 401: it requires a token."
      : "Set the token for this tab.";
    if (rejected) setToken("");
    this.dialog.showModal();
  }

  toggleTheme() {
    const cur = document.documentElement.dataset.theme || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
    const next = cur === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("relata.theme", next);
  }

  shortcut(e) {
    if (!e.altKey || e.ctrlKey || e.metaKey) return;
    const p = PANELS.find((x) => x.key === e.key);
    if (p) {
      e.preventDefault();
      location.hash = `#/${p.name}`;
    }
  }

  /** setStatus shows a short message in the header. */
  setStatus(text) {
    this.status.textContent = text;
  }

  /** loadSchema reads the schema in force and updates the outline. */
  async loadSchema() {
    try {
      const r = await call("/v1/schema/read", { consistency: { fullyConsistent: true } });
      this.schemaText = r.schema || "";
      this.schemaError = null;
    } catch (e) {
      this.schemaText = "";
      this.schemaError = e;
    }
    this.outline = outline(this.schemaText);
    for (const f of this.listeners) f();
  }

  /** onSchema calls f whenever the schema is reloaded; returns the unsubscribe. */
  onSchema(f) {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  /** setHash records a panel's state in the URL without re-mounting the panel. */
  setHash(hash) {
    if (location.hash !== hash) history.replaceState(null, "", hash);
  }

  route() {
    const { name, sub, params } = parseHash(location.hash);
    const panel = PANELS.find((p) => p.name === name) || PANELS[0];
    if (this.cleanup) this.cleanup();
    this.cleanup = null;
    for (const a of this.nav.querySelectorAll("a")) {
      if (a.dataset.panel === panel.name) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    document.title = `${panel.title} · Relata console`;
    this.main.textContent = "";
    this.main.dataset.panel = panel.name;
    const c = panel.mod.mount(this.main, { sub, params }, this);
    this.cleanup = typeof c === "function" ? c : null;
  }
}

const app = new App(document.getElementById("app"));
app.loadSchema().then(() => app.route());
