// Small DOM helpers: element building (text only, never HTML strings), announcements, formatting.

/**
 * Creates an element. `attrs`: `class`, `text`, `on<event>` handlers, `dataset`, booleans
 * (set when true, left out when false), anything else as an attribute. Children may be nodes,
 * strings, or arrays of them; null/undefined/false are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "value" && "value" in el) el.value = value;
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** Says `message` to screen readers (the page's polite live region). */
export function announce(message) {
  const live = document.getElementById("live");
  if (!live) return;
  live.textContent = "";
  // A separate task, so the same message twice is read twice.
  setTimeout(() => { live.textContent = message; }, 30);
}

/** `k_sampler_steps` → `K sampler steps`. */
export function humanize(name) {
  const words = String(name).replace(/_/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** An RFC 3339 time as the browser's local time, or "—". */
export function time(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** A `<time>` element for an RFC 3339 time. */
export function timeEl(iso) {
  return iso ? h("time", { datetime: iso, text: time(iso) }) : "—";
}

/** The duration between two RFC 3339 times, e.g. "1.4 s", "2 min 3 s". */
export function duration(from, to) {
  if (!from || !to) return "";
  const ms = new Date(to) - new Date(from);
  if (!(ms >= 0)) return "";
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** A byte count as B / KiB / MiB / GiB. */
export function bytes(n) {
  if (n === undefined || n === null) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** The first characters of a hash or id. */
export function short(text, length = 8) {
  return String(text ?? "").slice(0, length);
}

/**
 * The distinguishing end of a job id: job ids are UUIDv7, whose first characters are the time
 * (jobs created within the same minute share them) and whose last characters are random.
 */
export function jobTag(id) {
  return String(id ?? "").slice(-8);
}

/** A status badge. */
export function statusBadge(status) {
  return h("span", { class: `badge status-${status}`, text: status });
}

/** A page heading that receives focus when the view opens. */
export function pageHeading(text) {
  return h("h1", { tabindex: "-1", text });
}
