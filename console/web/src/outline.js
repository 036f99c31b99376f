// outline reads the shape of a schema (definitions, their relations with allowed subject
// types, their permissions with the arrows they follow, and caveats) for the diagram and
// for completion. It is forgiving on purpose: validation is the server's job (the editor
// asks the API), the outline only has to draw what it can read.

const TOKEN_RE = /\s+|\/\*[\s\S]*?(?:\*\/|$)|\/\/[^\n]*|->|[A-Za-z_][A-Za-z0-9_]*(?:\/[A-Za-z_][A-Za-z0-9_]*)?|\d+|"(?:[^"\\]|\\.)*"|./g;

function tokens(text) {
  const out = [];
  for (const m of text.matchAll(TOKEN_RE)) {
    const v = m[0];
    if (/^\s/.test(v) || v.startsWith("//") || v.startsWith("/*")) continue;
    out.push(v);
  }
  return out;
}

const isName = (t) => /^[A-Za-z_]/.test(t || "");

/** outline returns {definitions: [{name, relations, permissions}], caveats: [{name, params}]}. */
export function outline(text) {
  const toks = tokens(text || "");
  const defs = [];
  const caveats = [];
  let i = 0;
  const skipBlock = () => {
    // skip to the matching '}' of the '{' at toks[i]
    let depth = 0;
    for (; i < toks.length; i++) {
      if (toks[i] === "{") depth++;
      else if (toks[i] === "}" && --depth === 0) {
        i++;
        return;
      }
    }
  };
  while (i < toks.length) {
    const t = toks[i];
    if (t === "definition" && isName(toks[i + 1])) {
      const def = { name: toks[i + 1], relations: [], permissions: [] };
      defs.push(def);
      i += 2;
      if (toks[i] !== "{") continue;
      i++;
      while (i < toks.length && toks[i] !== "}") {
        if (toks[i] === "relation" && isName(toks[i + 1])) {
          const rel = { name: toks[i + 1], types: [] };
          def.relations.push(rel);
          i += 2;
          if (toks[i] === ":") i++;
          let cur = null;
          while (i < toks.length && !["relation", "permission", "}"].includes(toks[i])) {
            const x = toks[i];
            if (x === "|") cur = null;
            else if (x === "with") {
              i++;
              const conds = [];
              while (i < toks.length && isName(toks[i]) && !["relation", "permission"].includes(toks[i])) {
                if (toks[i] !== "and") conds.push(toks[i]);
                i++;
                if (toks[i] !== "and" && toks[i - 1] !== "and") break;
              }
              if (cur) cur.conditions = conds;
              continue;
            } else if (isName(x) && !cur) {
              cur = { type: x, relation: "", wildcard: false, conditions: [] };
              rel.types.push(cur);
            } else if (x === "#" && cur && isName(toks[i + 1])) {
              cur.relation = toks[++i];
            } else if (x === ":" && cur && toks[i + 1] === "*") {
              cur.wildcard = true;
              i++;
            }
            i++;
          }
          continue;
        }
        if (toks[i] === "permission" && isName(toks[i + 1])) {
          const perm = { name: toks[i + 1], arrows: [], refs: [] };
          def.permissions.push(perm);
          i += 2;
          if (toks[i] === "=") i++;
          while (i < toks.length && !["relation", "permission", "}"].includes(toks[i])) {
            const x = toks[i];
            if (isName(x) && toks[i + 1] === "->" && isName(toks[i + 2])) {
              perm.arrows.push({ relation: x, permission: toks[i + 2], kind: "->" });
              i += 3;
              continue;
            }
            if (isName(x) && toks[i + 1] === "." && (toks[i + 2] === "any" || toks[i + 2] === "all") && toks[i + 3] === "(" && isName(toks[i + 4])) {
              perm.arrows.push({ relation: x, permission: toks[i + 4], kind: `.${toks[i + 2]}` });
              i += 5;
              continue;
            }
            if (isName(x) && x !== "nil" && x !== "self") perm.refs.push(x);
            i++;
          }
          continue;
        }
        if (toks[i] === "{") {
          skipBlock();
          continue;
        }
        i++;
      }
      i++;
      continue;
    }
    if (t === "caveat" && isName(toks[i + 1])) {
      const cav = { name: toks[i + 1], params: [] };
      caveats.push(cav);
      i += 2;
      if (toks[i] === "(") {
        i++;
        let depth = 0;
        let expectName = true;
        for (; i < toks.length; i++) {
          const x = toks[i];
          if (x === "<") depth++;
          else if (x === ">") depth--;
          else if (x === ")" && depth === 0) {
            i++;
            break;
          } else if (x === "," && depth === 0) expectName = true;
          else if (expectName && isName(x)) {
            cav.params.push({ name: x, type: toks[i + 1] || "" });
            expectName = false;
          }
        }
      }
      if (toks[i] === "{") skipBlock();
      continue;
    }
    i++;
  }
  return { definitions: defs, caveats };
}

/** members returns the relation and permission names of type name in o. */
export function members(o, name) {
  const d = o.definitions.find((x) => x.name === name);
  if (!d) return [];
  return [...d.relations.map((r) => r.name), ...d.permissions.map((p) => p.name)];
}
