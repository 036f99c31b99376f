// Completion from the schema in force: object types, members of a type, subjects.

import { members } from "./outline.js";

/** objectOptions suggests `type:` for each definition, or keeps the typed id. */
export function objectOptions(o, typed) {
  const t = (typed || "").trim();
  const colon = t.indexOf(":");
  if (colon > 0 && colon < t.length - 1) return [t];
  return o.definitions.map((d) => `${d.name}:`);
}

/** memberOptions lists the relations and permissions of the object's type. */
export function memberOptions(o, objectText, onlyRelations = false) {
  const type = (objectText || "").split(":")[0].trim();
  const d = o.definitions.find((x) => x.name === type);
  if (!d) return [];
  return onlyRelations ? d.relations.map((r) => r.name) : members(o, type);
}

/** subjectOptions suggests `type:` and, once an id is typed, `type:id#relation` forms. */
export function subjectOptions(o, typed) {
  const t = (typed || "").trim();
  const colon = t.indexOf(":");
  if (colon > 0 && colon < t.length - 1 && !t.includes("#")) {
    const type = t.slice(0, colon);
    return [t, ...members(o, type).map((m) => `${t}#${m}`)];
  }
  return o.definitions.map((d) => `${d.name}:`);
}

/** typeOptions lists the definitions. */
export function typeOptions(o) {
  return o.definitions.map((d) => d.name);
}
