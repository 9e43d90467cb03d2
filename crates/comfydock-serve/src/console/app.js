// The console: sign-in, navigation (hash routes, so a reload stays on the same view), and the
// workflow list. Each view renders into <main> and returns a cleanup function.
//
// Routes: #/ (workflows) · #/workflows/NAME (its form) · #/jobs/ID · #/queue?status=&workflow= ·
// #/environment · #/sign-in

import { ApiError, auth, onUnauthorized, request, workflows } from "./api.js";
import { announce, h, pageHeading, replace } from "./dom.js";
import { renderForm } from "./form.js";
import { renderJob } from "./job.js";
import { renderQueue } from "./queue.js";
import { renderEnvironment } from "./environment.js";

const main = document.getElementById("main");
const signOut = document.getElementById("sign-out");
let cleanup = () => {};
/** Whether serve wants a key: unknown until the first answer. */
let keysRequired = null;

function parseRoute() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(query) };
}

function setNav(current) {
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

/** Shows a view; moves focus to its heading (unless `keepFocus`), like a page load would. */
async function route({ keepFocus = false } = {}) {
  cleanup();
  cleanup = () => {};
  const { parts, query } = parseRoute();
  if (keysRequired === null) await probe();
  const signedIn = !keysRequired || auth.key;
  signOut.hidden = !(keysRequired && auth.key);
  if (!signedIn || parts[0] === "sign-in") {
    setNav("");
    renderSignIn();
  } else {
    try {
      if (parts[0] === "workflows" && parts[1]) {
        setNav("workflows");
        cleanup = (await renderForm(main, parts[1], query)) || cleanup;
      } else if (parts[0] === "jobs" && parts[1]) {
        setNav("queue");
        cleanup = (await renderJob(main, parts[1])) || cleanup;
      } else if (parts[0] === "queue") {
        setNav("queue");
        cleanup = (await renderQueue(main, query)) || cleanup;
      } else if (parts[0] === "environment") {
        setNav("environment");
        cleanup = (await renderEnvironment(main)) || cleanup;
      } else {
        setNav("workflows");
        await renderWorkflows();
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      replace(main, pageHeading("Something went wrong"), h("p", { class: "error", role: "alert", text: error.message }));
    }
  }
  const heading = main.querySelector("h1");
  if (heading) document.title = `${heading.textContent} · comfydock console`;
  if (!keepFocus) (heading || main).focus({ preventScroll: false });
}

/** Whether serve needs a key, and whether the stored one is good. */
async function probe() {
  try {
    await request("/v1/jobs?limit=1", { key: "" });
    keysRequired = false;
  } catch (error) {
    keysRequired = error instanceof ApiError && error.status === 401;
  }
  if (keysRequired && auth.key && !(await keyWorks(auth.key))) auth.key = "";
}

async function keyWorks(key) {
  try {
    await request("/v1/jobs?limit=1", { key });
    return true;
  } catch {
    return false;
  }
}

function renderSignIn(message) {
  const input = h("input", {
    id: "api-key",
    name: "key",
    type: "password",
    autocomplete: "current-password",
    spellcheck: "false",
    required: true,
    "aria-describedby": "api-key-help api-key-error",
  });
  const error = h("p", { id: "api-key-error", class: "field-error", hidden: !message, text: message || "" });
  if (message) input.setAttribute("aria-invalid", "true");
  const form = h(
    "form",
    { class: "card narrow", novalidate: true, "aria-labelledby": "sign-in-title" },
    h("div", { class: "field" },
      h("label", { for: "api-key", text: "API key" }),
      input,
      h("p", { id: "api-key-help", class: "help", text: "The key `comfydock serve keys create NAME` printed. It stays in this tab only." }),
      error),
    h("button", { type: "submit", text: "Sign in" }),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    const fail = (text) => {
      error.textContent = text;
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    };
    if (!key) return fail("Enter an API key.");
    if (!(await keyWorks(key))) return fail("serve refused this key (unknown or revoked).");
    auth.key = key;
    announce("Signed in");
    if (parseRoute().parts[0] === "sign-in") location.hash = "#/";
    else route();
  });
  replace(
    main,
    h("h1", { id: "sign-in-title", tabindex: "-1", text: "Sign in" }),
    h("p", { text: "This serve instance requires an API key for its API and this console." }),
    form,
  );
}

async function renderWorkflows() {
  const list = await workflows();
  const items = list.map((workflow) =>
    h("li", { class: "card" },
      h("h2", {}, h("a", { href: `#/workflows/${encodeURIComponent(workflow.name)}`, text: workflow.name })),
      h("p", { class: "muted", text: `${workflow.params.length} parameter${workflow.params.length === 1 ? "" : "s"}: ${workflow.params.map((p) => p.name).join(", ") || "none"}` }),
      h("p", {},
        h("a", { class: "button", href: `#/workflows/${encodeURIComponent(workflow.name)}`, text: "Open form" }),
        " ",
        h("a", { class: "button secondary", href: `#/queue?workflow=${encodeURIComponent(workflow.name)}`, text: "Jobs" }))));
  replace(
    main,
    pageHeading("Workflows"),
    list.length
      ? h("ul", { class: "cards", "aria-label": "Served workflows" }, items)
      : h("p", { text: "serve has no workflows (start it with `--workflow NAME`)." }),
  );
}

async function showBackends() {
  const el = document.getElementById("backends");
  try {
    const response = await fetch("/readyz", { headers: auth.key ? { Authorization: `Bearer ${auth.key}` } : {} });
    const body = await response.json();
    const up = body.backends.filter((b) => b.up).length;
    el.textContent = `ComfyUI: ${up}/${body.backends.length} up`;
    el.className = `backends ${up ? "ok" : "down"}`;
  } catch {
    el.textContent = "serve unreachable";
    el.className = "backends down";
  }
}

onUnauthorized(() => {
  if (keysRequired === false) return;
  keysRequired = true;
  auth.key = "";
  signOut.hidden = true;
  cleanup();
  cleanup = () => {};
  setNav("");
  renderSignIn("Sign in to continue: serve refused the request without a valid key.");
  main.querySelector("h1")?.focus();
});

signOut.addEventListener("click", () => {
  auth.key = "";
  announce("Signed out");
  route();
});

// The skip link moves the focus without touching the route in the URL.
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

window.addEventListener("hashchange", () => route());
route();
showBackends();
setInterval(() => {
  if (!document.hidden) showBackends();
}, 10_000);
