// The environment serve runs in (`GET /v1/environment`): ComfyUI pin and checkout, Python and
// torch backends, custom nodes, models, workflows, and the `.cec` history (its builds).

import { ApiError, request } from "./api.js";
import { bytes, h, pageHeading, replace, short, timeEl } from "./dom.js";

function table(caption, headers, rows, empty) {
  if (!rows.length) return h("p", { class: "muted", text: empty });
  return h("div", { class: "scroll" }, h("table", {},
    h("caption", { class: "visually-hidden", text: caption }),
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell, i) => (i === 0 ? h("th", { scope: "row" }, cell) : h("td", {}, cell))))))));
}

function section(id, title, ...content) {
  return h("section", { "aria-labelledby": id }, h("h2", { id, text: title }), ...content);
}

export async function renderEnvironment(main) {
  let env;
  try {
    env = (await request("/v1/environment")).data;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      replace(main, pageHeading("Environment"), h("p", { text: "serve runs outside a comfydock environment (workflow files and `--comfyui` backends only), so there is nothing to show here." }), h("p", { class: "muted", text: "Start it with `comfydock -e NAME serve …` to see the environment's ComfyUI, nodes, models and history." }));
      return null;
    }
    throw error;
  }
  const comfy = env.comfyui || {};
  const outOfSync = comfy.commit && comfy.checkout && comfy.commit !== comfy.checkout;
  const row = (term, ...value) => [h("dt", { text: term }), h("dd", {}, ...value)];
  replace(main,
    pageHeading(`Environment ${env.name}`),
    h("dl", { class: "details" },
      row("ComfyUI", comfy.ref ? h("code", { text: comfy.ref }) : "—", comfy.commit ? [" at ", h("code", { title: comfy.commit, text: short(comfy.commit, 12) })] : ""),
      row("Checkout", comfy.checkout ? h("code", { title: comfy.checkout, text: short(comfy.checkout, 12) }) : "—",
        outOfSync ? h("span", { class: "warning", text: " differs from the pin: run `comfydock sync`" }) : ""),
      row("Python", env.python || "—"),
      row("Torch backends", (env.torch_backends || []).join(", ") || "—", env.torch_backend ? ` (this machine: ${env.torch_backend})` : ""),
      env.uncommitted?.length ? row("Uncommitted", h("span", { class: "warning", text: env.uncommitted.join(", ") })) : null),
    section("nodes-title", `Custom nodes (${(env.nodes || []).length})`,
      table("Custom nodes", ["Node", "Source", "Version", "State"],
        (env.nodes || []).map((n) => [
          h("code", { text: n.name || n.key }),
          n.source,
          n.version || (n.commit ? h("code", { title: n.commit, text: `${n.ref ? `${n.ref} ` : ""}${short(n.commit, 12)}` }) : n.path || "—"),
          n.enabled === false ? "disabled" : "enabled",
        ]), "No custom nodes.")),
    section("models-title", `Models (${(env.models || []).length})`,
      table("Models", ["Model", "Folder", "Hash", "Size", "Need", "Used by"],
        (env.models || []).map((m) => [
          m.name || m.relative_path || "—",
          m.folder || "—",
          m.hash ? h("code", { title: m.hash, text: short(m.hash, 18) }) : "—",
          bytes(m.size),
          m.criticality || "—",
          [...(m.workflows || []), ...(m.in_catalog ? ["catalog"] : [])].join(", ") || "—",
        ]), "No models pinned.")),
    section("workflows-title", `Workflows (${(env.workflows || []).length})`,
      table("Workflows", ["Workflow", "Tracked", "Nodes", "Models", "Unresolved"],
        (env.workflows || []).map((w) => [
          w.name,
          w.tracked ? "yes" : "no",
          (w.nodes || []).join(", ") || "—",
          String(w.models ?? 0),
          [...(w.unresolved_nodes || []), ...(w.unresolved_models || [])].join(", ") || "—",
        ]), "No tracked workflows.")),
    section("history-title", "Build history",
      (env.history || []).length
        ? h("ol", { class: "history" }, env.history.map((c) => h("li", {},
          h("code", { title: c.commit, text: c.short }), " ", timeEl(c.date), " ", h("span", { text: c.message }), " ", h("span", { class: "muted", text: `by ${c.author}` }))))
        : h("p", { class: "muted", text: "No commits yet." })));
  return null;
}
