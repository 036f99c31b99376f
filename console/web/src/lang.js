// The schema language for CodeMirror 6: a stream tokenizer (StreamLanguage) that tags
// keywords, definition and member names, subject types, operators and comments, and the
// same highlighting for the read-only schema view (highlightCode).

import { StreamLanguage } from "@codemirror/language";
import { classHighlighter, highlightCode } from "@lezer/highlight";

const KEYWORDS = new Set(["definition", "relation", "permission", "caveat", "use", "with", "and", "import", "partial"]);
const ATOMS = new Set(["nil", "self", "expiration", "any", "all"]);

export const schemaLanguage = StreamLanguage.define({
  name: "relata-schema",
  startState: () => ({ comment: null, expect: null, inRelation: false }),
  token(stream, state) {
    if (state.comment) {
      if (stream.skipTo("*/")) {
        stream.match("*/");
        const kind = state.comment;
        state.comment = null;
        return kind;
      }
      stream.skipToEnd();
      return state.comment;
    }
    if (stream.eatSpace()) return null;
    if (stream.match("/**")) {
      state.comment = "docComment";
      return "docComment";
    }
    if (stream.match("/*")) {
      state.comment = "blockComment";
      return "blockComment";
    }
    if (stream.match("//")) {
      stream.skipToEnd();
      return "lineComment";
    }
    if (stream.match(/^"(?:[^"\\]|\\.)*"?/) || stream.match(/^'(?:[^'\\]|\\.)*'?/)) return "string";
    if (stream.match(/^\d+(\.\d+)?/)) return "number";
    if (stream.match("->")) return "operator";
    const word = stream.match(/^[A-Za-z_][A-Za-z0-9_]*(\/[A-Za-z_][A-Za-z0-9_]*)?/);
    if (word) {
      const w = word[0];
      const expect = state.expect;
      state.expect = null;
      if (KEYWORDS.has(w)) {
        if (w === "definition" || w === "caveat") state.expect = "defName";
        else if (w === "relation" || w === "permission") {
          state.expect = "member";
          state.inRelation = w === "relation";
        } else if (w === "with") state.expect = "caveatRef";
        return "keyword";
      }
      if (expect === "defName") return "typeName.definition";
      if (expect === "member") return "propertyName.definition";
      if (expect === "caveatRef") return ATOMS.has(w) ? "atom" : "typeName";
      if (expect === "type") return "typeName";
      if (expect === "ref") return "propertyName";
      if (ATOMS.has(w)) return "atom";
      return state.inRelation ? "typeName" : "propertyName";
    }
    const ch = stream.next();
    if (ch === ":" || ch === "|") {
      if (state.inRelation) state.expect = "type";
      return "punctuation";
    }
    if (ch === "=") {
      state.inRelation = false;
      return "operator";
    }
    if (ch === "#") {
      state.expect = "ref";
      return "operator";
    }
    if (ch === "}" || ch === "{") {
      state.inRelation = false;
      return "brace";
    }
    if ("+&-*".includes(ch)) return "operator";
    return "punctuation";
  },
  languageData: { commentTokens: { line: "//", block: { open: "/*", close: "*/" } } },
});

/** highlighted fills el with text highlighted as the schema language (tok-* classes). */
export function highlightInto(el, text) {
  el.textContent = "";
  const tree = schemaLanguage.parser.parse(text);
  highlightCode(
    text,
    tree,
    classHighlighter,
    (code, classes) => {
      if (!classes) {
        el.appendChild(document.createTextNode(code));
        return;
      }
      const span = document.createElement("span");
      span.className = classes;
      span.textContent = code;
      el.appendChild(span);
    },
    () => el.appendChild(document.createTextNode("\n")),
  );
}
