// The text forms of design §1: objects `type:id`, subjects `type:id[#relation]`, tuples
// `object#relation@subject` with optional `[caveat:{json}]` and `[expiration:RFC3339]`
// suffixes, and their JSON shapes in the REST API.

const NAME = "[a-z][a-z0-9_]{0,62}(?:/[a-z][a-z0-9_]{0,62})?";
const ID = "[a-zA-Z0-9_|\\-=+/.@]{1,1024}|\\*";
const OBJECT_RE = new RegExp(`^(${NAME}):(${ID})$`);
const SUBJECT_RE = new RegExp(`^(${NAME}):(${ID})(?:#(${NAME}|\\.\\.\\.))?$`);

/** parseObject parses `type:id` into an ObjectRef, or throws saying what is wrong. */
export function parseObject(s, field = "object") {
  const t = (s || "").trim();
  const m = OBJECT_RE.exec(t);
  if (!m) throw new Error(`${field}: "${t}" is not TYPE:ID (e.g. flow:f1)`);
  return { type: m[1], id: m[2] };
}

/** parseSubject parses `type:id` or `type:id#relation` into a SubjectRef. */
export function parseSubject(s, field = "subject") {
  const t = (s || "").trim();
  const m = SUBJECT_RE.exec(t);
  if (!m) throw new Error(`${field}: "${t}" is not TYPE:ID or TYPE:ID#RELATION (e.g. user:anne, role:ops#member)`);
  const rel = m[3] && m[3] !== "..." ? m[3] : "";
  return rel ? { object: { type: m[1], id: m[2] }, relation: rel } : { object: { type: m[1], id: m[2] } };
}

/** parseTuple parses one tuple line into the API's Tuple. */
export function parseTuple(line) {
  let t = line.trim();
  const suffixes = [];
  while (t.endsWith("]")) {
    const open = findSuffixStart(t);
    if (open < 0) break;
    suffixes.unshift(t.slice(open + 1, -1));
    t = t.slice(0, open);
  }
  const at = t.indexOf("@");
  const hash = t.lastIndexOf("#", at < 0 ? t.length : at);
  if (at < 0 || hash < 0) throw new Error(`"${line.trim()}" is not OBJECT#RELATION@SUBJECT (e.g. flow:f1#granted@user:anne)`);
  const tuple = {
    object: parseObject(t.slice(0, hash), "tuple object"),
    relation: t.slice(hash + 1, at),
    subject: parseSubject(t.slice(at + 1), "tuple subject"),
  };
  if (!new RegExp(`^${NAME}$`).test(tuple.relation)) throw new Error(`tuple relation: "${tuple.relation}" is not a relation name`);
  for (const s of suffixes) {
    const colon = s.indexOf(":");
    const name = colon < 0 ? s : s.slice(0, colon);
    const rest = colon < 0 ? "" : s.slice(colon + 1);
    if (name === "expiration") {
      tuple.expiresAt = rest;
    } else {
      tuple.caveat = { name };
      if (rest) {
        try {
          tuple.caveat.context = JSON.parse(rest);
        } catch (e) {
          throw new Error(`caveat ${name}: context is not JSON: ${e.message}`);
        }
      }
    }
  }
  return tuple;
}

// findSuffixStart returns the index of the '[' that opens the bracketed suffix ending t.
function findSuffixStart(t) {
  let depth = 0;
  for (let i = t.length - 1; i >= 0; i--) {
    if (t[i] === "]") depth++;
    else if (t[i] === "[" && --depth === 0) return i;
  }
  return -1;
}

/** parseTuples parses a block, one tuple a line; blank lines and // comments are skipped. */
export function parseTuples(block) {
  const tuples = [];
  const errors = [];
  block.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\/\/.*$/, "").trim();
    if (!line) return;
    try {
      tuples.push(parseTuple(line));
    } catch (e) {
      errors.push(`line ${i + 1}: ${e.message}`);
    }
  });
  return { tuples, errors };
}

/** objectText prints an ObjectRef. */
export function objectText(o) {
  return o ? `${o.type}:${o.id}` : "";
}

/** subjectText prints a SubjectRef. */
export function subjectText(s) {
  if (!s) return "";
  return s.relation ? `${objectText(s.object)}#${s.relation}` : objectText(s.object);
}

/** tupleText prints a Tuple in the text form. */
export function tupleText(t) {
  let s = `${objectText(t.object)}#${t.relation}@${subjectText(t.subject)}`;
  if (t.caveat && t.caveat.name) {
    s += t.caveat.context && Object.keys(t.caveat.context).length ? `[${t.caveat.name}:${JSON.stringify(t.caveat.context)}]` : `[${t.caveat.name}]`;
  }
  if (t.expiresAt) s += `[expiration:${t.expiresAt}]`;
  return s;
}

/**
 * parseFilter parses the relationships filter `type[:id][#relation][@subject]` into the
 * API's TupleFilter; the subject part is `type`, `type:id` or `type:id#relation`.
 */
export function parseFilter(s) {
  const t = (s || "").trim();
  const f = {};
  if (!t) return f;
  const at = t.indexOf("@");
  const left = at < 0 ? t : t.slice(0, at);
  const subj = at < 0 ? "" : t.slice(at + 1);
  const hash = left.indexOf("#");
  const obj = hash < 0 ? left : left.slice(0, hash);
  if (hash >= 0) f.relation = left.slice(hash + 1);
  const colon = obj.indexOf(":");
  if (colon < 0) {
    if (obj) f.objectType = obj;
  } else {
    f.objectType = obj.slice(0, colon);
    f.objectId = obj.slice(colon + 1);
  }
  if (subj) f.subject = subjectFilter(subj);
  return f;
}

/** subjectFilter parses `type`, `type:id` or `type:id#relation` into a SubjectFilter. */
export function subjectFilter(s) {
  const t = s.trim();
  const hash = t.indexOf("#");
  const obj = hash < 0 ? t : t.slice(0, hash);
  const sf = {};
  if (hash >= 0) sf.relation = t.slice(hash + 1);
  const colon = obj.indexOf(":");
  if (colon < 0) sf.type = obj;
  else {
    sf.type = obj.slice(0, colon);
    sf.id = obj.slice(colon + 1);
  }
  return sf;
}
