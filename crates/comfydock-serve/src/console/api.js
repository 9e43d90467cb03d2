// The console's access to serve: the API key of this tab, JSON requests, event WebSockets,
// output files, and the served workflows as `/openapi.json` describes them.

const KEY = "comfydock.console.key";

/** The key typed in at sign-in (this tab only: sessionStorage). */
export const auth = {
  get key() {
    try {
      return sessionStorage.getItem(KEY) || "";
    } catch {
      return "";
    }
  },
  set key(value) {
    try {
      if (value) sessionStorage.setItem(KEY, value);
      else sessionStorage.removeItem(KEY);
    } catch {
      // Storage disabled: the key lasts until the page reloads.
    }
    memoryKey = value || "";
  },
};
let memoryKey = "";

function currentKey() {
  return auth.key || memoryKey;
}

/** A request that did not succeed: `status` and the JSON body serve sent (`error`, `message`, `errors`). */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || body?.error || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

/** Calls `onUnauthorized` whenever serve answers 401 (the app then asks for a key). */
let unauthorized = () => {};
export function onUnauthorized(handler) {
  unauthorized = handler;
}

function headers(extra) {
  const out = new Headers(extra || {});
  const key = currentKey();
  if (key) out.set("Authorization", `Bearer ${key}`);
  return out;
}

/**
 * A JSON request. `body` (an object, or a JSON text) is sent as JSON. Resolves to
 * `{status, data}` for 2xx answers; rejects with an ApiError otherwise.
 */
export async function request(path, { method = "GET", body, headers: extra, key } = {}) {
  const sent = headers(extra);
  if (key !== undefined) {
    if (key) sent.set("Authorization", `Bearer ${key}`);
    else sent.delete("Authorization");
  }
  let payload;
  if (body !== undefined) {
    payload = typeof body === "string" ? body : JSON.stringify(body);
    sent.set("Content-Type", "application/json");
  }
  let response;
  try {
    response = await fetch(path, { method, headers: sent, body: payload, cache: "no-store" });
  } catch (error) {
    throw new ApiError(0, { error: "network", message: `serve did not answer (${error.message})` });
  }
  const type = response.headers.get("content-type") || "";
  let data = null;
  if (type.includes("json")) data = await response.json().catch(() => null);
  else data = await response.text().catch(() => "");
  if (response.status === 401 && key === undefined) unauthorized();
  if (!response.ok) throw new ApiError(response.status, typeof data === "object" ? data : { message: data });
  return { status: response.status, data };
}

/**
 * Follows a job's events: replays those after `after`, then new ones as they come. Returns a
 * function that closes the socket. `onEvent(event)` per event; `onClose(normal)` when it closes.
 */
export function followEvents(jobId, after, onEvent, onClose) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/v1/jobs/${encodeURIComponent(jobId)}/events?after=${after}`;
  const key = currentKey();
  const protocols = key ? ["comfydock", `comfydock.bearer.${key}`] : ["comfydock"];
  let socket;
  let closedByUs = false;
  try {
    socket = new WebSocket(url, protocols);
  } catch (error) {
    // A key with characters a subprotocol cannot carry.
    setTimeout(() => onClose(false, error.message), 0);
    return () => {};
  }
  socket.addEventListener("message", (message) => {
    try {
      onEvent(JSON.parse(message.data));
    } catch {
      // Not an event: ignored.
    }
  });
  socket.addEventListener("close", (event) => {
    if (!closedByUs) onClose(event.wasClean);
  });
  return () => {
    closedByUs = true;
    socket.close();
  };
}

const blobs = new Map();

/**
 * A URL the page can show an output from. Outputs served by serve need the key, which an
 * `<img src>` cannot send: they are fetched with it and shown from a blob URL. Absolute URLs
 * (an object store's signed links) are used as they are.
 */
export async function outputSource(url) {
  if (!url.startsWith("/")) return url;
  if (blobs.has(url)) return blobs.get(url);
  const response = await fetch(url, { headers: headers(), cache: "no-store" });
  if (!response.ok) throw new ApiError(response.status, { message: `output not available (HTTP ${response.status})` });
  const source = URL.createObjectURL(await response.blob());
  blobs.set(url, source);
  return source;
}

let openapi = null;

/** `/openapi.json`, read once. */
export async function openapiDocument() {
  if (!openapi) openapi = (await request("/openapi.json", { key: "" })).data;
  return openapi;
}

/**
 * The served workflows: `[{name, summary, params: [{name, schema}], options: {priority, ...}}]`,
 * in the order of the OpenAPI document (sorted by name).
 */
export async function workflows() {
  const doc = await openapiDocument();
  const out = [];
  for (const [path, operations] of Object.entries(doc.paths || {})) {
    const match = /^\/v1\/workflows\/([^/]+)\/jobs$/.exec(path);
    if (!match || !operations.post) continue;
    const body = operations.post.requestBody?.content?.["application/json"]?.schema || {};
    const ref = body.properties?.params?.$ref || "";
    const schema = doc.components?.schemas?.[ref.split("/").pop()] || { properties: {} };
    const params = Object.entries(schema.properties || {}).map(([name, param]) => ({ name, schema: param }));
    const options = { ...(body.properties || {}) };
    delete options.params;
    out.push({ name: decodeURIComponent(match[1]), summary: operations.post.summary || "", params, options });
  }
  return out;
}

/** Serializes a request body. Integers typed by the person stay exact (seeds above 2^53). */
export function jsonWithExactIntegers(value) {
  const marks = [];
  const text = JSON.stringify(value, (_, v) => {
    if (v && typeof v === "object" && v.__integer !== undefined) {
      marks.push(v.__integer);
      return `\u0000int${marks.length - 1}\u0000`;
    }
    return v;
  });
  return text.replace(/"\\u0000int(\d+)\\u0000"/g, (_, i) => marks[Number(i)]);
}
