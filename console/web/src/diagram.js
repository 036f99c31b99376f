// diagram draws a schema outline as an SVG graph: one box per definition listing its
// relations and permissions; a solid edge from a definition to each subject type its
// relations allow (labelled `relation: Type#rel`), and a dashed edge for each arrow
// `r->p` of a permission (labelled `permission: r->p`). dagre lays the graph out.

import { Graph, layout } from "@dagrejs/dagre";

const SVG = "http://www.w3.org/2000/svg";
const CHAR = 7.3; // width of a character at the diagram's 12px monospace
const LINE = 16;

function el(name, attrs, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** drawDiagram replaces the contents of container with the diagram of outline o. */
export function drawDiagram(container, o) {
  container.textContent = "";
  if (!o.definitions.length) {
    container.textContent = "No definitions to draw.";
    return;
  }
  const g = new Graph({ multigraph: true });
  g.setGraph({ rankdir: "TB", nodesep: 40, ranksep: 70, edgesep: 20, marginx: 10, marginy: 10 });
  g.setDefaultEdgeLabel(() => ({}));
  const known = new Set(o.definitions.map((d) => d.name));
  for (const d of o.definitions) {
    const lines = [...d.relations.map((r) => `${r.name}`), ...d.permissions.map((p) => `${p.name}`)];
    const width = Math.max(d.name.length + 11, ...lines.map((l) => l.length + 4)) * CHAR + 16;
    g.setNode(d.name, { def: d, width, height: LINE * (lines.length + 1) + 14 });
  }
  // One edge per (from, to, kind), its label listing every relation or arrow it stands for.
  const edges = new Map();
  const addEdge = (from, to, kind, label) => {
    if (!known.has(to)) return;
    const key = `${from}\u0000${to}\u0000${kind}`;
    if (!edges.has(key)) edges.set(key, { from, to, kind, labels: [] });
    const e = edges.get(key);
    if (!e.labels.includes(label)) e.labels.push(label);
  };
  for (const d of o.definitions) {
    for (const r of d.relations) {
      for (const t of r.types) {
        let s = t.type + (t.relation ? `#${t.relation}` : "") + (t.wildcard ? ":*" : "");
        if (t.conditions && t.conditions.length) s += ` with ${t.conditions.join(" and ")}`;
        addEdge(d.name, t.type, "relation", `${r.name}: ${s}`);
      }
    }
    for (const p of d.permissions) {
      for (const a of p.arrows) {
        const rel = d.relations.find((r) => r.name === a.relation);
        for (const t of rel ? rel.types : []) {
          addEdge(d.name, t.type, "arrow", `${p.name}: ${a.relation}${a.kind === "->" ? "->" + a.permission : `${a.kind}(${a.permission})`}`);
        }
      }
    }
  }
  let n = 0;
  for (const e of edges.values()) {
    const shown = e.labels.length > 4 ? [...e.labels.slice(0, 3), `+${e.labels.length - 3} more`] : e.labels;
    g.setEdge(
      e.from,
      e.to,
      { edge: e, shown, width: Math.max(...shown.map((l) => l.length)) * CHAR * 0.92, height: shown.length * 13, labelpos: "c" },
      `e${n++}`,
    );
  }
  layout(g);
  const { width, height } = g.graph();
  const svg = el("svg", {
    viewBox: `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`,
    "data-width": Math.ceil(width),
    role: "img",
    "aria-label": `Diagram of ${o.definitions.length} definitions and their relations`,
    class: "diagram",
  });
  const defs = el("defs");
  for (const kind of ["relation", "arrow"]) {
    const m = el("marker", { id: `head-${kind}`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 8, markerHeight: 8, orient: "auto-start-reverse" });
    m.appendChild(el("path", { d: "M0,0 L10,5 L0,10 z", class: `head head-${kind}` }));
    defs.appendChild(m);
  }
  svg.appendChild(defs);
  for (const id of g.edges()) {
    const e = g.edge(id);
    const pts = e.points;
    const d = pts.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
    const grp = el("g", { class: `edge edge-${e.edge.kind}`, "data-from": e.edge.from, "data-to": e.edge.to });
    grp.appendChild(el("title", {}, e.edge.labels.join("\n")));
    grp.appendChild(el("path", { d, "marker-end": `url(#head-${e.edge.kind})` }));
    const text = el("text", { x: e.x, y: e.y - e.height / 2 + 10, "text-anchor": "middle", class: "edge-label" });
    e.shown.forEach((l, i) => {
      text.appendChild(el("tspan", { x: e.x, dy: i ? 13 : 0 }, l));
    });
    grp.appendChild(text);
    svg.appendChild(grp);
  }
  for (const name of g.nodes()) {
    const nd = g.node(name);
    const d = nd.def;
    const x = nd.x - nd.width / 2;
    const y = nd.y - nd.height / 2;
    const grp = el("g", { class: "node", "data-definition": name, tabindex: 0 });
    grp.appendChild(el("title", {}, `definition ${name}`));
    grp.appendChild(el("rect", { x, y, width: nd.width, height: nd.height, rx: 6 }));
    grp.appendChild(el("text", { x: x + 8, y: y + 16, class: "node-title" }, `definition ${name}`));
    grp.appendChild(el("line", { x1: x, x2: x + nd.width, y1: y + 22, y2: y + 22 }));
    let ly = y + 22 + LINE - 2;
    for (const r of d.relations) {
      grp.appendChild(el("text", { x: x + 8, y: ly, class: "node-relation" }, `r ${r.name}`));
      ly += LINE;
    }
    for (const p of d.permissions) {
      grp.appendChild(el("text", { x: x + 8, y: ly, class: "node-permission" }, `p ${p.name}`));
      ly += LINE;
    }
    svg.appendChild(grp);
  }
  // Fit to the container's width by default (unless that makes the text too small to
  // read); the buttons zoom to natural size and back.
  let zoom = 0; // 0: fit; a large schema starts at a readable scale and scrolls instead
  const apply = () => {
    svg.style.width = zoom ? `${Math.ceil(width * zoom)}px` : "100%";
    svg.style.maxWidth = zoom ? "none" : `${Math.ceil(width)}px`;
  };
  const btn = (label, title, f) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "ghost small";
    b.textContent = label;
    b.title = title;
    b.addEventListener("click", () => (f(), apply()));
    return b;
  };
  const bar = document.createElement("div");
  bar.className = "row diagram-bar";
  bar.append(
    btn("Fit", "Fit the diagram to the width", () => (zoom = 0)),
    btn("−", "Zoom out", () => (zoom = Math.max(0.25, (zoom || fitScale()) / 1.25))),
    btn("+", "Zoom in", () => (zoom = Math.min(3, (zoom || fitScale()) * 1.25))),
    btn("100%", "Natural size", () => (zoom = 1)),
  );
  const fitScale = () => Math.min(1, (container.clientWidth || width) / width);
  if (fitScale() < 0.6) zoom = 0.85;
  apply();
  container.append(bar, svg);
  if (zoom) {
    // Start at the definition with the most members, usually the one the schema is about.
    let best = null;
    for (const name of g.nodes()) {
      const nd = g.node(name);
      const size = nd.def.relations.length + nd.def.permissions.length;
      if (!best || size > best.size) best = { nd, size };
    }
    container.scrollLeft = Math.max(0, best.nd.x * zoom - container.clientWidth / 2);
    container.scrollTop = Math.max(0, (best.nd.y - best.nd.height / 2) * zoom - 40);
  }
}
