// The REST client of the console: every call is a POST /v1/... with a JSON body
// (lowerCamelCase fields), streams are newline-delimited JSON. The token lives in
// sessionStorage only and goes out as a Bearer header; a 401 calls the handler set with
// onUnauthorized (the app shows the token prompt again).

const TOKEN_KEY = "relata.token";

/** getToken returns the token of this browser tab, or "". */
export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

/** setToken keeps t for this tab only (sessionStorage); "" forgets it. */
export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

let unauthorized = () => {};

/** onUnauthorized sets what happens when the server answers 401. */
export function onUnauthorized(f) {
  unauthorized = f;
}

/** APIError is an error answer: HTTP status, gRPC code, reason and metadata of its ErrorInfo. */
export class APIError extends Error {
  constructor(status, body) {
    const b = body && typeof body === "object" ? body : { message: String(body || "") };
    super(b.message || `HTTP ${status}`);
    this.status = status;
    this.code = b.code;
    this.details = Array.isArray(b.details) ? b.details : [];
    const info = this.details.find((d) => d && typeof d["@type"] === "string" && d["@type"].endsWith("google.rpc.ErrorInfo")) || {};
    this.reason = info.reason || "";
    this.metadata = info.metadata || {};
  }
  /** describe returns "message (REASON)". */
  describe() {
    return this.reason ? `${this.message} (${this.reason})` : this.message;
  }
}

async function post(path, body, signal) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  const t = getToken();
  if (t) headers.Authorization = "Bearer " + t;
  let resp;
  try {
    resp = await fetch(path, { method: "POST", headers, body: JSON.stringify(body || {}), signal });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new APIError(0, { message: `cannot reach the server: ${e.message}` });
  }
  if (resp.status === 401) {
    const err = new APIError(401, await readJSON(resp));
    unauthorized(err);
    throw err;
  }
  return resp;
}

async function readJSON(resp) {
  const text = await resp.text();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.trim() };
  }
}

/** call POSTs body to path and returns the decoded answer; an error answer throws APIError. */
export async function call(path, body, signal) {
  const resp = await post(path, body, signal);
  const json = await readJSON(resp);
  if (!resp.ok) throw new APIError(resp.status, json);
  return json;
}

/**
 * stream POSTs body to path and yields each message of the NDJSON answer as it
 * arrives; an {"error":…} line or an error answer throws APIError.
 */
export async function* stream(path, body, signal) {
  const resp = await post(path, body, signal);
  if (!resp.ok) throw new APIError(resp.status, await readJSON(resp));
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const parse = (line) => {
    const msg = JSON.parse(line);
    if (msg && msg.error) throw new APIError(resp.status, msg.error);
    return msg;
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (line) yield parse(line);
      }
    }
    if (buf.trim()) yield parse(buf.trim());
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** consistency turns the console's selector value into the API's Consistency message. */
export function consistency(mode, zookie) {
  switch (mode) {
    case "min":
      return { minimizeLatency: true };
    case "fresh":
      return { atLeastAsFresh: zookie };
    case "exact":
      return { atExactSnapshot: zookie };
    default:
      return { fullyConsistent: true };
  }
}
