// One job, followed live: the stored events are read first, then the WebSocket replays what came
// after the last one (`?after=SEQ`) and streams the rest, so a reload (or a dropped connection)
// picks up exactly where it was. Outputs appear as they are saved: images, audio, video.

import { ApiError, followEvents, outputSource, request } from "./api.js";
import { announce, bytes, duration, h, jobTag, replace, short, statusBadge, timeEl } from "./dom.js";

const TERMINAL = new Set(["succeeded", "failed", "dead", "cancelled"]);
const STAGES = [
  ["queued", "Queued"],
  ["started", "Started"],
  ["running", "Running nodes"],
  ["outputs", "Outputs saved"],
  ["finished", "Finished"],
];

/** A one-line description of an event for the log. */
function describeEvent(event) {
  const d = event.data || {};
  switch (event.kind) {
    case "queued": return `queued with priority ${d.priority ?? 0}`;
    case "started": return `attempt ${d.attempt ?? "?"} started${d.worker ? ` on ${d.worker}` : ""}`;
    case "submitting": return `submitting prompt ${short(d.prompt_id)}`;
    case "submitted": return `ComfyUI accepted prompt ${short(d.prompt_id)}`;
    case "adopted": return `took over prompt ${short(d.prompt_id)} (${d.state || ""})`;
    case "node": return `node ${d.node}${d.class_type ? ` (${d.class_type})` : ""} running`;
    case "progress": return `node ${d.node ?? "?"}: step ${d.value} of ${d.max}`;
    case "output": return `saved ${d.name}${d.size !== undefined ? ` (${bytes(d.size)})` : ""}`;
    case "retrying": return `attempt ${d.attempt} failed (${d.error?.kind || "error"}): ${d.error?.message || ""}; retrying`;
    case "released": return "put back in the queue (serve stopped)";
    case "retried": return `retried by hand (was ${d.was})`;
    case "succeeded": return "succeeded";
    case "failed": return `failed: ${d.error?.message || ""}`;
    case "dead": return `dead-lettered after ${d.attempt} attempt${d.attempt === 1 ? "" : "s"}: ${d.error?.message || ""}`;
    case "cancelled": return `cancelled (was ${d.was})`;
    default: return event.kind;
  }
}

function mediaKind(output) {
  const type = output.content_type || "";
  if (type.startsWith("image/")) return "image";
  if (type.startsWith("video/")) return "video";
  if (type.startsWith("audio/")) return "audio";
  return "file";
}

export async function renderJob(main, id) {
  let job;
  try {
    job = (await request(`/v1/jobs/${encodeURIComponent(id)}`)).data;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      replace(main, h("h1", { tabindex: "-1", text: "Unknown job" }), h("p", { text: `serve has no job ${id}.` }), h("p", {}, h("a", { href: "#/queue", text: "Queue" })));
      return null;
    }
    throw error;
  }

  let closed = false;
  let stop = () => {};
  let reconnect = null;
  let last = 0;
  const seen = new Set();
  const shownOutputs = new Set();
  const reached = new Set();
  let nodesRun = 0;

  // Layout.
  const statusEl = h("span", { id: "job-status" });
  const details = h("dl", { class: "details" });
  const actions = h("div", { class: "actions", role: "group", "aria-label": "Job actions" });
  const stages = h("ol", { class: "stages", "aria-label": "Stages" });
  const progress = h("progress", { id: "job-progress", max: 1, value: 0, "aria-labelledby": "progress-label" });
  const progressLabel = h("p", { id: "progress-label", class: "muted", text: "Waiting for a worker" });
  const errorBox = h("section", { class: "error-box", hidden: true, "aria-labelledby": "error-title" });
  const gallery = h("ul", { class: "gallery", id: "outputs", "aria-label": "Outputs" });
  const noOutputs = h("p", { class: "muted", text: "No outputs yet." });
  const log = h("ol", { class: "log", id: "event-log" });
  const params = h("pre", { class: "params", id: "job-params" });
  const connection = h("p", { class: "muted connection", "aria-live": "polite" });

  replace(main,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/queue", text: "Queue" }), " / ", `job ${jobTag(job.id)}`),
    h("h1", { tabindex: "-1" }, `Job ${jobTag(job.id)} `, statusEl),
    details,
    actions,
    h("section", { "aria-labelledby": "progress-title" },
      h("h2", { id: "progress-title", text: "Progress" }),
      stages, progress, progressLabel, connection),
    errorBox,
    h("section", { "aria-labelledby": "outputs-title" },
      h("h2", { id: "outputs-title", text: "Outputs" }), noOutputs, gallery),
    h("details", { class: "params-box" }, h("summary", { text: "Parameters" }), params),
    h("section", { "aria-labelledby": "log-title" },
      h("h2", { id: "log-title", text: "Events" }), log));

  function renderStages() {
    const terminal = TERMINAL.has(job.status);
    let current = -1;
    STAGES.forEach(([key], index) => { if (reached.has(key)) current = index; });
    replace(stages, STAGES.map(([key, label], index) => {
      let state;
      if (reached.has(key)) state = index === current && !terminal ? "current" : "done";
      else state = terminal || index < current ? "skipped" : "pending";
      if (key === "finished" && terminal && job.status !== "succeeded") state = "failed";
      const text = key === "running" && nodesRun ? `${label} (${nodesRun})`
        : key === "outputs" && shownOutputs.size ? `${label} (${shownOutputs.size})`
          : key === "finished" && terminal ? `Finished: ${job.status}`
            : label;
      const status = { done: "done", current: "in progress", skipped: "did not happen", pending: "not yet", failed: "" }[state];
      return h("li", { class: `stage ${state}`, "aria-current": state === "current" ? "step" : false },
        text, status ? h("span", { class: "visually-hidden", text: ` (${status})` }) : null);
    }));
  }

  function renderJobInfo() {
    replace(statusEl, statusBadge(job.status));
    const row = (term, ...value) => [h("dt", { text: term }), h("dd", {}, ...value)];
    replace(details,
      row("Workflow", h("a", { href: `#/workflows/${encodeURIComponent(job.workflow)}`, text: job.workflow })),
      row("Job id", h("code", { text: job.id })),
      row("Priority", String(job.priority)),
      row("Attempts", `${job.attempts} of ${job.max_attempts}`),
      row("Created", timeEl(job.created_at)),
      row("Started", timeEl(job.started_at)),
      row("Finished", timeEl(job.finished_at), job.started_at && job.finished_at ? ` (${duration(job.started_at, job.finished_at)})` : ""),
      job.idempotency_key ? row("Idempotency key", h("code", { text: job.idempotency_key })) : null);
    params.textContent = JSON.stringify(job.params, null, 2);
    const buttons = [];
    if (job.status === "queued" || job.status === "running") {
      buttons.push(h("button", { type: "button", class: "danger", id: "cancel-job", onclick: cancel, text: "Cancel job" }));
    }
    if (job.status === "dead" || job.status === "failed") {
      buttons.push(h("button", { type: "button", id: "retry-job", onclick: retry, text: "Retry job" }));
    }
    buttons.push(h("a", { class: "button secondary", href: `#/workflows/${encodeURIComponent(job.workflow)}?from=${job.id}`, text: "Run again with these values" }));
    const focused = document.activeElement?.id;
    replace(actions, buttons);
    if (focused && !document.getElementById(focused) && (focused === "cancel-job" || focused === "retry-job")) statusEl.closest("h1").focus();
    if (job.error && (job.status === "dead" || job.status === "failed" || job.status === "queued")) {
      const error = job.error;
      replace(errorBox,
        h("h2", { id: "error-title", text: job.status === "queued" ? "Last error (retrying)" : job.status === "dead" ? "Dead-lettered: last error" : "Error" }),
        h("p", { class: "error" }, h("strong", { text: error.kind || "error" }), ": ", error.message || ""),
        error.detail ? h("details", {}, h("summary", { text: "Details" }), h("pre", { text: JSON.stringify(error.detail, null, 2) })) : null);
      errorBox.hidden = false;
    } else {
      errorBox.hidden = true;
    }
    if (TERMINAL.has(job.status)) reached.add("finished");
    for (const output of job.outputs || []) showOutput(output);
    renderStages();
  }

  function showOutput(output) {
    if (!output?.name || shownOutputs.has(output.name)) return;
    shownOutputs.add(output.name);
    reached.add("outputs");
    noOutputs.hidden = true;
    const kind = mediaKind(output);
    const caption = h("figcaption", {},
      h("a", { href: output.url, download: output.name, onclick: (event) => download(event, output) , text: output.name }),
      ` · ${output.kind || kind} · ${bytes(output.size)}${output.node ? ` · node ${output.node}` : ""}`);
    const holder = h("div", { class: "media" }, h("p", { class: "muted", text: "Loading…" }));
    gallery.append(h("li", {}, h("figure", { dataset: { kind } }, holder, caption)));
    outputSource(output.url).then((src) => {
      const alt = `${output.name}, output of node ${output.node ?? "?"}`;
      const el = kind === "image"
        ? h("img", { src, alt, loading: "lazy" })
        : kind === "video"
          ? h("video", { src, controls: true, "aria-label": alt })
          : kind === "audio"
            ? h("audio", { src, controls: true, "aria-label": alt })
            : h("p", { text: "No preview for this file type." });
      replace(holder, el);
    }).catch((error) => replace(holder, h("p", { class: "error", text: error.message })));
  }

  async function download(event, output) {
    if (!output.url.startsWith("/")) return;
    event.preventDefault();
    const src = await outputSource(output.url);
    const link = h("a", { href: src, download: output.name });
    document.body.append(link);
    link.click();
    link.remove();
  }

  function apply(event) {
    if (seen.has(event.seq)) return;
    seen.add(event.seq);
    last = Math.max(last, event.seq);
    const d = event.data || {};
    log.append(h("li", { dataset: { kind: event.kind } },
      h("span", { class: "seq", text: `#${event.seq}` }), " ", timeEl(event.at), " ",
      h("span", { class: `kind kind-${event.kind}`, text: event.kind }), " ", describeEvent(event)));
    switch (event.kind) {
      case "queued": case "retried": case "released": case "retrying":
        reached.add("queued");
        if (event.kind !== "queued") {
          reached.delete("started"); reached.delete("running"); reached.delete("finished");
          progress.value = 0;
          progressLabel.textContent = "Waiting for a worker";
        }
        break;
      case "started": case "submitting": case "submitted": case "adopted":
        reached.add("queued"); reached.add("started");
        progressLabel.textContent = event.kind === "started" ? "Started; sending the prompt to ComfyUI" : "ComfyUI has the prompt";
        break;
      case "node":
        reached.add("running");
        nodesRun += 1;
        progressLabel.textContent = `Running node ${d.node}${d.class_type ? ` (${d.class_type})` : ""}`;
        break;
      case "progress":
        reached.add("running");
        progress.max = Number(d.max) || 1;
        progress.value = Number(d.value) || 0;
        progressLabel.textContent = `Node ${d.node ?? "?"}: step ${d.value} of ${d.max}`;
        break;
      case "output":
        showOutput(d);
        break;
      default:
        break;
    }
    if (TERMINAL.has(event.kind)) {
      reached.add("finished");
      if (event.kind === "succeeded") {
        progress.value = progress.max;
        progressLabel.textContent = "Done";
      } else {
        progressLabel.textContent = describeEvent(event);
      }
    }
    if (d.status && d.status !== job.status) {
      job.status = d.status;
      replace(statusEl, statusBadge(job.status));
    }
    renderStages();
  }

  async function refresh() {
    try {
      job = (await request(`/v1/jobs/${encodeURIComponent(job.id)}`)).data;
      renderJobInfo();
    } catch {
      // Shown again at the next event.
    }
  }

  function connect() {
    if (closed) return;
    connection.textContent = "Live";
    stop = followEvents(job.id, last, (event) => {
      const wasNew = !seen.has(event.seq);
      apply(event);
      if (wasNew && (TERMINAL.has(event.kind) || ["retrying", "retried", "started"].includes(event.kind))) {
        refresh().then(() => {
          if (TERMINAL.has(event.kind)) announce(`Job ${event.kind}`);
        });
      }
    }, async () => {
      if (closed) return;
      await refresh();
      if (TERMINAL.has(job.status)) {
        connection.textContent = "";
        return;
      }
      connection.textContent = "Connection lost; reconnecting…";
      reconnect = setTimeout(connect, 1000);
    });
  }

  async function cancel() {
    try {
      job = (await request(`/v1/jobs/${encodeURIComponent(job.id)}`, { method: "DELETE" })).data;
      announce("Job cancelled");
      renderJobInfo();
    } catch (error) {
      announce(`Cancelling failed: ${error.message}`);
    }
  }

  async function retry() {
    try {
      job = (await request(`/v1/jobs/${encodeURIComponent(job.id)}/retry`, { method: "POST" })).data;
      announce("Job queued again");
      renderJobInfo();
      stop();
      clearTimeout(reconnect);
      connect();
    } catch (error) {
      announce(`Retrying failed: ${error.message}`);
    }
  }

  // The log so far, then live from after its last event.
  try {
    const { data } = await request(`/v1/jobs/${encodeURIComponent(job.id)}/events`);
    for (const event of data.events || []) apply(event);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null;
  }
  renderJobInfo();
  if (!TERMINAL.has(job.status)) connect();

  return () => {
    closed = true;
    clearTimeout(reconnect);
    stop();
  };
}
