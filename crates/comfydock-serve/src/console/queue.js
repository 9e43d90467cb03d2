// The queue: counts by state and workflow (from `/metrics`), the jobs matching the filters
// (newest first), cancel for waiting or running jobs, retry for dead-lettered or failed ones with
// their error shown. Refreshes every few seconds while the tab is visible.

import { request, workflows } from "./api.js";
import { announce, h, jobTag, pageHeading, replace, statusBadge, timeEl } from "./dom.js";

const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled", "dead"];

/** `comfydock_jobs{workflow="w",status="s"} n` lines → [{workflow, status, count}]. */
function parseCounts(text) {
  const out = [];
  const line = /^comfydock_jobs\{workflow="((?:[^"\\]|\\.)*)",status="([a-z_]+)"\} (\d+)/;
  for (const row of String(text).split("\n")) {
    const match = line.exec(row);
    if (match) out.push({ workflow: match[1].replace(/\\(.)/g, "$1"), status: match[2], count: Number(match[3]) });
  }
  return out;
}

export async function renderQueue(main, query) {
  const served = (await workflows()).map((w) => w.name);
  const filter = {
    status: STATUSES.includes(query.get("status")) ? query.get("status") : "",
    workflow: query.get("workflow") || "",
    limit: ["50", "100", "500"].includes(query.get("limit")) ? query.get("limit") : "100",
  };

  const select = (id, label, options, value) => {
    const el = h("select", { id, name: id.replace("filter-", "") },
      options.map(([v, text]) => h("option", { value: v, text, selected: v === value })));
    return [h("label", { for: id, text: label }), el];
  };
  const [statusLabel, statusSelect] = select("filter-status", "State", [["", "Any state"], ...STATUSES.map((s) => [s, s])], filter.status);
  const [workflowLabel, workflowSelect] = select("filter-workflow", "Workflow", [["", "Any workflow"], ...served.map((w) => [w, w])], filter.workflow);
  const [limitLabel, limitSelect] = select("filter-limit", "Show", [["50", "50 jobs"], ["100", "100 jobs"], ["500", "500 jobs"]], filter.limit);
  const filters = h("form", { class: "filters", role: "search", "aria-label": "Filter jobs" },
    h("div", { class: "field" }, statusLabel, statusSelect),
    h("div", { class: "field" }, workflowLabel, workflowSelect),
    h("div", { class: "field" }, limitLabel, limitSelect),
    h("button", { type: "submit", class: "secondary", text: "Apply" }));
  const apply = () => {
    const params = new URLSearchParams();
    if (statusSelect.value) params.set("status", statusSelect.value);
    if (workflowSelect.value) params.set("workflow", workflowSelect.value);
    if (limitSelect.value !== "100") params.set("limit", limitSelect.value);
    const next = `#/queue${params.toString() ? `?${params}` : ""}`;
    if (location.hash !== next) location.hash = next;
  };
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    apply();
  });
  for (const el of [statusSelect, workflowSelect, limitSelect]) el.addEventListener("change", apply);

  const counts = h("div", { class: "counts" });
  const caption = h("caption", {});
  const body = h("tbody", {});
  const table = h("table", { class: "jobs", id: "jobs" },
    caption,
    h("thead", {}, h("tr", {},
      ["Job", "Workflow", "State", "Priority", "Attempts", "Created", "Error", "Actions"].map((t) => h("th", { scope: "col", text: t })))),
    body);
  const message = h("p", { class: "muted", role: "status" });

  replace(main,
    pageHeading("Queue"),
    filters,
    h("section", { "aria-labelledby": "counts-title" }, h("h2", { id: "counts-title", text: "Jobs by state and workflow" }), counts),
    h("section", { "aria-labelledby": "list-title" }, h("h2", { id: "list-title", text: "Jobs" }), message, h("div", { class: "scroll" }, table)));

  async function act(job, action) {
    try {
      if (action === "cancel") await request(`/v1/jobs/${job.id}`, { method: "DELETE" });
      else await request(`/v1/jobs/${job.id}/retry`, { method: "POST" });
      announce(action === "cancel" ? `Job ${jobTag(job.id)} cancelled` : `Job ${jobTag(job.id)} queued again`);
    } catch (error) {
      announce(`${action === "cancel" ? "Cancelling" : "Retrying"} job ${jobTag(job.id)} failed: ${error.message}`);
    }
    await load();
  }

  function renderCounts(rows) {
    const names = [...new Set([...served, ...rows.map((r) => r.workflow)])].sort();
    const count = (workflow, status) => rows.find((r) => r.workflow === workflow && r.status === status)?.count || 0;
    const link = (n, status, workflow) => {
      if (!n) return "0";
      const params = new URLSearchParams();
      params.set("status", status);
      if (workflow) params.set("workflow", workflow);
      return h("a", { href: `#/queue?${params}`, text: String(n), "aria-label": `${n} ${status}${workflow ? ` ${workflow}` : ""} jobs` });
    };
    replace(counts, h("table", { class: "matrix" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Workflow" }), STATUSES.map((s) => h("th", { scope: "col" }, statusBadge(s))))),
      h("tbody", {},
        names.map((w) => h("tr", {}, h("th", { scope: "row", text: w }), STATUSES.map((s) => h("td", {}, link(count(w, s), s, w))))),
        names.length > 1
          ? h("tr", { class: "total" }, h("th", { scope: "row", text: "All" }), STATUSES.map((s) => h("td", {}, link(names.reduce((n, w) => n + count(w, s), 0), s, ""))))
          : null)));
  }

  function row(job) {
    // A job that ended well keeps the error of an earlier attempt in the API; it is no longer news.
    const error = ["failed", "dead", "queued"].includes(job.status) ? job.error : null;
    const actions = [];
    if (job.status === "queued" || job.status === "running") {
      actions.push(h("button", { type: "button", class: "danger small", dataset: { action: "cancel", job: job.id }, "aria-label": `Cancel job ${jobTag(job.id)}`, onclick: () => act(job, "cancel"), text: "Cancel" }));
    }
    if (job.status === "dead" || job.status === "failed") {
      actions.push(h("button", { type: "button", class: "small", dataset: { action: "retry", job: job.id }, "aria-label": `Retry job ${jobTag(job.id)}`, onclick: () => act(job, "retry"), text: "Retry" }));
    }
    return h("tr", { dataset: { job: job.id, status: job.status } },
      h("td", {}, h("a", { href: `#/jobs/${job.id}` }, h("code", { text: jobTag(job.id) }))),
      h("td", { text: job.workflow }),
      h("td", {}, statusBadge(job.status)),
      h("td", { text: String(job.priority) }),
      h("td", { text: `${job.attempts}/${job.max_attempts}` }),
      h("td", {}, timeEl(job.created_at)),
      h("td", { class: "error-cell" }, error ? [h("strong", { text: error.kind || "error" }), ": ", error.message || ""] : ""),
      h("td", { class: "row-actions" }, actions));
  }

  /** Rows that did not change keep their elements (and the focus); the rest are replaced in place. */
  const rows = new Map();
  function update(jobs) {
    const wanted = jobs.map((job) => {
      const key = JSON.stringify(job);
      let entry = rows.get(job.id);
      if (!entry || entry.key !== key) {
        entry = { key, tr: row(job) };
        rows.set(job.id, entry);
      }
      return entry.tr;
    });
    const ids = new Set(jobs.map((job) => job.id));
    for (const id of [...rows.keys()]) if (!ids.has(id)) rows.delete(id);
    wanted.forEach((tr, index) => {
      const present = body.children[index];
      if (present !== tr) body.insertBefore(tr, present || null);
    });
    while (body.children.length > wanted.length) body.lastElementChild.remove();
  }

  async function load() {
    const params = new URLSearchParams({ limit: filter.limit });
    if (filter.status) params.set("status", filter.status);
    if (filter.workflow) params.set("workflow", filter.workflow);
    const [{ data }, metrics] = await Promise.all([
      request(`/v1/jobs?${params}`),
      request("/metrics").then((r) => r.data).catch(() => ""),
    ]);
    renderCounts(parseCounts(metrics));
    // Keep the focus on the same job when its row is replaced.
    const focused = document.activeElement;
    const focusKey = body.contains(focused) && focused.dataset?.job ? [focused.dataset.action, focused.dataset.job] : null;
    update(data.jobs);
    const described = [filter.status || "all states", filter.workflow || "all workflows"].join(", ");
    replace(caption, `${data.jobs.length} job${data.jobs.length === 1 ? "" : "s"} (${described}), newest first`);
    message.textContent = data.jobs.length ? "" : "No jobs match.";
    if (focusKey && !body.contains(document.activeElement)) {
      const [action, job] = focusKey;
      const again = body.querySelector(`[data-action="${action}"][data-job="${job}"]`) || body.querySelector(`tr[data-job="${job}"] a`);
      again?.focus();
    }
  }

  await load();
  const timer = setInterval(() => {
    if (!document.hidden) load().catch(() => {});
  }, 2000);
  return () => clearInterval(timer);
}
