// The form of one workflow, generated from its parameters in `/openapi.json`: numbers with their
// bounds and steps, enums as selects, text, booleans, uploads with a preview. serve validates;
// its 422 answer is shown at each field and in a summary that links to them.

import { ApiError, jsonWithExactIntegers, request, workflows } from "./api.js";
import { announce, h, humanize, jobTag, pageHeading, replace } from "./dom.js";

/** `tooltip — \`input\` of node 3 (KSampler)` → {tooltip, input, node, classType}. */
function describe(schema) {
  const text = schema.description || "";
  const match = /`([^`]+)` of node (\S+) \(([^)]*)\)$/.exec(text);
  const tooltip = text.includes(" — ") ? text.slice(0, text.lastIndexOf(" — ")) : match ? "" : text;
  return {
    tooltip,
    input: schema["x-comfyui-input"] ?? match?.[1] ?? "",
    node: String(schema["x-comfyui-node"] ?? match?.[2] ?? ""),
    classType: match?.[3] ?? "",
  };
}

function kindOf(schema) {
  if (Array.isArray(schema.enum)) return "enum";
  if (schema.type === "object" && schema.properties?.data) return "upload";
  return schema.type || "string";
}

function randomKey() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return `console-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The help line under a field: tooltip, bounds, step, default. */
function helpText(kind, schema, meta) {
  const parts = [];
  if (meta.tooltip) parts.push(meta.tooltip);
  // Bounds past 2^53 (seeds) are not exact in JavaScript: shown rounded, as such.
  const bound = (n) => (Math.abs(n) > Number.MAX_SAFE_INTEGER ? `about ${n.toExponential(3)}` : n);
  if (schema.minimum !== undefined) parts.push(`min ${bound(schema.minimum)}`);
  if (schema.maximum !== undefined) parts.push(`max ${bound(schema.maximum)}`);
  const step = schema["x-step"] ?? schema.multipleOf;
  if (step !== undefined) parts.push(`step ${step}`);
  if (kind === "upload") parts.push(`a${schema["x-media"] === "image" || schema["x-media"] === "audio" ? "n" : ""} ${schema["x-media"] || "media"} file; without one the workflow's own file is used`);
  else if (schema.default !== undefined && kind !== "boolean") parts.push(`default ${JSON.stringify(schema.default)}`);
  parts.push(`input \`${meta.input}\` of node ${meta.node}${meta.classType ? ` (${meta.classType})` : ""}`);
  return parts.join(" · ");
}

/** One parameter's control; returns {row, read(), reset(), setValue(v)}. */
function control(param) {
  const { name, schema } = param;
  const kind = kindOf(schema);
  const meta = describe(schema);
  const id = `param-${name}`;
  const described = `${id}-help ${id}-error`;
  let input;
  let read;
  let reset;
  let setValue;
  let extra = null;
  if (kind === "enum") {
    input = h("select", { id, name, "aria-describedby": described },
      schema.enum.map((option, index) => h("option", { value: String(index), text: String(option) })));
    setValue = (v) => {
      const index = schema.enum.findIndex((o) => JSON.stringify(o) === JSON.stringify(v));
      input.value = String(Math.max(index, 0));
    };
    reset = () => setValue(schema.default);
    read = () => ({ value: schema.enum[Number(input.value)] });
  } else if (kind === "boolean") {
    input = h("input", { id, name, type: "checkbox", "aria-describedby": described });
    setValue = (v) => { input.checked = Boolean(v); };
    reset = () => setValue(schema.default);
    read = () => ({ value: input.checked });
  } else if (kind === "integer" || kind === "number") {
    const step = schema["x-step"] ?? schema.multipleOf;
    input = h("input", {
      id, name, type: "number", inputmode: kind === "integer" ? "numeric" : "decimal",
      min: schema.minimum, max: schema.maximum,
      step: step ?? (kind === "integer" ? 1 : "any"),
      "aria-describedby": described,
    });
    setValue = (v) => { input.value = v === undefined || v === null ? "" : String(v); };
    reset = () => setValue(schema.default);
    read = () => {
      const text = input.value.trim();
      if (text === "") return input.validity.badInput ? { value: "" } : { omit: true };
      if (kind === "integer" && /^-?\d+$/.test(text)) return { value: { __integer: text.replace(/^(-?)0+(?=\d)/, "$1") } };
      const number = Number(text);
      return { value: Number.isFinite(number) ? number : text };
    };
  } else if (kind === "upload") {
    const media = schema["x-media"] || "image";
    const accept = { image: "image/*", audio: "audio/*", video: "video/*" }[media];
    input = h("input", { id, name, type: "file", accept, "aria-describedby": `${described} ${id}-preview` });
    const preview = h("div", { id: `${id}-preview`, class: "preview", "aria-live": "polite" });
    let chosen = null;
    let objectUrl = null;
    input.addEventListener("change", async () => {
      if (objectUrl) URL.revokeObjectURL(objectUrl);
      objectUrl = null;
      chosen = null;
      const file = input.files?.[0];
      if (!file) {
        replace(preview);
        return;
      }
      objectUrl = URL.createObjectURL(file);
      const label = `Preview of ${file.name}`;
      const shown = media === "audio"
        ? h("audio", { controls: true, src: objectUrl, "aria-label": label })
        : media === "video"
          ? h("video", { controls: true, muted: true, src: objectUrl, "aria-label": label })
          : h("img", { src: objectUrl, alt: label });
      replace(preview, shown, h("p", { class: "muted", text: `${file.name} · ${file.size} bytes` }));
      chosen = { filename: file.name, data: await base64(file) };
    });
    reset = () => {
      input.value = "";
      input.dispatchEvent(new Event("change"));
    };
    setValue = () => {};
    read = () => (input.files?.[0] ? { value: chosen, pending: !chosen } : { omit: true });
    extra = preview;
  } else if (schema["x-multiline"]) {
    input = h("textarea", { id, name, rows: 4, "aria-describedby": described });
    setValue = (v) => { input.value = v ?? ""; };
    reset = () => setValue(schema.default);
    read = () => ({ value: input.value });
  } else {
    input = h("input", { id, name, type: "text", "aria-describedby": described });
    setValue = (v) => { input.value = v ?? ""; };
    reset = () => setValue(schema.default);
    read = () => ({ value: input.value });
  }
  reset();
  const label = h("label", { for: id }, humanize(name), " ", h("code", { class: "param-name", text: name }));
  const row = h("div", { class: `field field-${kind}`, dataset: { param: name } },
    kind === "boolean" ? h("div", { class: "check" }, input, label) : [label, input],
    extra,
    h("p", { id: `${id}-help`, class: "help", text: helpText(kind, schema, meta) }),
    h("p", { id: `${id}-error`, class: "field-error", hidden: true }));
  return { name, kind, meta, row, input, read, reset, setValue };
}

function base64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

/** A plain field of the job options (priority, idempotency key, attempts). */
function optionField(id, labelText, help, attrs, after) {
  const input = h("input", { id, name: id, "aria-describedby": `${id}-help ${id}-error`, ...attrs });
  const row = h("div", { class: "field" },
    h("label", { for: id, text: labelText }),
    after ? h("div", { class: "inline" }, input, after) : input,
    h("p", { id: `${id}-help`, class: "help", text: help }),
    h("p", { id: `${id}-error`, class: "field-error", hidden: true }));
  return { row, input };
}

export async function renderForm(main, name, query) {
  const workflow = (await workflows()).find((w) => w.name === name);
  if (!workflow) {
    replace(main, pageHeading("Unknown workflow"), h("p", { text: `serve has no workflow named ${name}.` }), h("p", {}, h("a", { href: "#/", text: "All workflows" })));
    return null;
  }
  const controls = workflow.params.map(control);

  // Parameters grouped by node, in the order they first appear.
  const groups = new Map();
  for (const c of controls) {
    const key = c.meta.node;
    if (!groups.has(key)) groups.set(key, { classType: c.meta.classType, controls: [] });
    groups.get(key).controls.push(c);
  }
  const fieldsets = [...groups.entries()].map(([node, group]) =>
    h("fieldset", { class: "node" },
      h("legend", { text: `${group.classType || "Node"} · node ${node}` }),
      group.controls.map((c) => c.row)));

  const priority = optionField("job-priority", "Priority", "Higher runs first; equal priorities run oldest first.", { type: "number", step: 1, value: "0", inputmode: "numeric" });
  const newKey = h("button", { type: "button", class: "secondary", text: "New key" });
  const idempotency = optionField("job-idempotency-key", "Idempotency key", "Optional. Submitting the same key again returns the first job instead of queueing another.", { type: "text", maxlength: 200, spellcheck: "false", autocomplete: "off" }, newKey);
  newKey.addEventListener("click", () => {
    idempotency.input.value = randomKey();
    idempotency.input.focus();
  });
  const attempts = optionField("job-max-attempts", "Attempts", "Optional. Attempts for transient failures (backend down, timeout) before the job is dead-lettered; 1 to 100.", { type: "number", step: 1, min: 1, max: 100, inputmode: "numeric" });

  const summary = h("div", { id: "error-summary", class: "error-summary", tabindex: "-1", hidden: true, "aria-labelledby": "error-summary-title" });
  const submit = h("button", { type: "submit", text: "Run" });
  const resetButton = h("button", { type: "button", class: "secondary", text: "Reset to defaults" });
  const status = h("p", { class: "form-status", role: "status" });
  const form = h("form", { id: "run-form", novalidate: true, "aria-labelledby": "form-title" },
    summary,
    controls.length ? fieldsets : h("p", { text: "This workflow has no parameters: it runs as saved." }),
    h("fieldset", { class: "options" }, h("legend", { text: "Job options" }), priority.row, idempotency.row, attempts.row),
    h("div", { class: "actions" }, submit, resetButton, status));

  const fieldFor = (path) => {
    if (path.startsWith("params.")) {
      const c = controls.find((c) => c.name === path.slice("params.".length));
      return c ? { id: c.input.id, input: c.input, label: humanize(c.name) } : null;
    }
    const option = { priority, max_attempts: attempts, "Idempotency-Key": idempotency }[path];
    return option ? { id: option.input.id, input: option.input, label: option.row.querySelector("label").textContent } : null;
  };

  const clearErrors = () => {
    summary.hidden = true;
    replace(summary);
    for (const el of form.querySelectorAll(".field-error")) {
      el.hidden = true;
      el.textContent = "";
    }
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  };

  const showErrors = (errors) => {
    const items = [];
    for (const error of errors) {
      const field = fieldFor(error.path || "");
      const message = error.message || error.constraint || "invalid";
      if (field) {
        const el = document.getElementById(`${field.id}-error`);
        el.textContent = el.textContent ? `${el.textContent} ${message}` : message;
        el.hidden = false;
        field.input.setAttribute("aria-invalid", "true");
        items.push(h("li", {}, h("a", { href: `#${field.id}`, onclick: (event) => { event.preventDefault(); field.input.focus(); } }, `${field.label}: ${message}`)));
      } else {
        items.push(h("li", { text: error.path ? `${error.path}: ${message}` : message }));
      }
    }
    replace(summary,
      h("h2", { id: "error-summary-title", text: `serve refused the job: ${errors.length} problem${errors.length === 1 ? "" : "s"}` }),
      h("ul", {}, items));
    summary.hidden = false;
    summary.focus();
  };

  const applyValues = (params) => {
    for (const c of controls) if (params && Object.hasOwn(params, c.name) && c.kind !== "upload") c.setValue(params[c.name]);
  };

  resetButton.addEventListener("click", () => {
    clearErrors();
    for (const c of controls) c.reset();
    priority.input.value = "0";
    idempotency.input.value = "";
    attempts.input.value = "";
    announce("Parameters reset to the workflow's defaults");
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const params = {};
    for (const c of controls) {
      const read = c.read();
      if (read.pending) {
        showErrors([{ path: `params.${c.name}`, message: "the file is still being read; submit again in a moment" }]);
        return;
      }
      if (!read.omit) params[c.name] = read.value;
    }
    const body = { params };
    const intOrText = (text) => (/^-?\d+$/.test(text) ? { __integer: text } : text);
    const priorityText = priority.input.value.trim();
    if (priorityText) body.priority = intOrText(priorityText);
    else if (priority.input.validity.badInput) body.priority = "";
    const attemptsText = attempts.input.value.trim();
    if (attemptsText) body.max_attempts = intOrText(attemptsText);
    else if (attempts.input.validity.badInput) body.max_attempts = "";
    const headers = {};
    const key = idempotency.input.value.trim();
    if (key) headers["Idempotency-Key"] = key;
    submit.disabled = true;
    status.textContent = "Submitting…";
    try {
      const { status: code, data } = await request(`/v1/workflows/${encodeURIComponent(workflow.name)}/jobs`, {
        method: "POST",
        body: jsonWithExactIntegers(body),
        headers,
      });
      status.textContent = "";
      announce(code === 200 ? "This idempotency key already has a job: showing it" : "Job queued");
      location.hash = `#/jobs/${data.id}`;
    } catch (error) {
      status.textContent = "";
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 401) return;
      if (error.status === 422 && Array.isArray(error.body.errors)) showErrors(error.body.errors);
      else if (error.status === 422 || error.status === 409) showErrors([{ path: "Idempotency-Key", message: error.message }]);
      else showErrors([{ path: "", message: error.message }]);
    } finally {
      submit.disabled = false;
    }
  });

  const from = query.get("from");
  let note = null;
  if (from) {
    try {
      const { data } = await request(`/v1/jobs/${encodeURIComponent(from)}`);
      applyValues(data.params);
      note = h("p", { class: "note" }, "Values of job ", h("a", { href: `#/jobs/${data.id}`, text: jobTag(data.id) }), " (uploads are not repeated).");
    } catch {
      note = h("p", { class: "note", text: `Job ${from} could not be read; the workflow's defaults are shown.` });
    }
  }

  replace(main,
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/", text: "Workflows" }), " / ", workflow.name),
    h("h1", { id: "form-title", tabindex: "-1", text: `Run ${workflow.name}` }),
    h("p", { class: "muted" }, `POST /v1/workflows/${workflow.name}/jobs · `, h("a", { href: `#/queue?workflow=${encodeURIComponent(workflow.name)}`, text: "its jobs" })),
    note,
    form);
  return null;
}
