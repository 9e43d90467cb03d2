//! Structural checks: dangling links, missing slots, type mismatches, cycles, duplicate ids and
//! unknown node types; given node definitions (`/object_info`), also the required inputs ComfyUI
//! checks before it runs a prompt. Every issue names the node (id, title, type) it concerns.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::builtins::{is_frontend_only, looks_like_subgraph_type};
use crate::convert::convert_to_api;
use crate::document::{
    ApiInput, ApiWorkflow, GraphView, NodeView, SUBGRAPH_INPUT_NODE_ID, SUBGRAPH_OUTPUT_NODE_ID,
    SubgraphView, UiWorkflow, WorkflowDocument,
};
use crate::types::types_compatible;

/// How serious an issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The workflow will not run as saved.
    Error,
    /// Suspicious but tolerated by ComfyUI.
    Warning,
}

/// What kind of problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueCode {
    /// Two nodes in one graph share an id.
    DuplicateNodeId,
    /// Two links in one graph share an id.
    DuplicateLinkId,
    /// A node has no usable `id` or `type`.
    MalformedNode,
    /// A `links` entry is neither a 6-element array nor a link object.
    MalformedLink,
    /// A link (or an input's link id) points at a node or link that does not exist.
    DanglingLink,
    /// A link uses an input/output slot the node does not have.
    MissingSlot,
    /// The output type cannot feed the input type.
    TypeMismatch,
    /// Nodes depend on each other in a loop.
    Cycle,
    /// The node type is not among the known types (node index / object_info).
    UnknownNodeType,
    /// A node's type looks like a subgraph id but no definition has it.
    MissingSubgraphDefinition,
    /// An input the node definition lists under `input.required` gets neither a link nor a value
    /// (ComfyUI's `required_input_missing`).
    RequiredInputMissing,
    /// Required inputs could not be checked (the workflow could not be turned into a prompt).
    RequiredInputsUnchecked,
}

/// One validation finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationIssue {
    pub severity: Severity,
    pub code: IssueCode,
    /// Human-readable, naming node id, title and type.
    pub message: String,
    pub node_id: Option<String>,
    pub node_title: Option<String>,
    pub node_type: Option<String>,
    /// Subgraph definition (name or id) the node lives in; `None` for the top level.
    pub subgraph: Option<String>,
    /// The input concerned, for issues about one input (e.g. a missing required input).
    pub input_name: Option<String>,
}

/// Inputs to [`validate`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidationOptions<'a> {
    /// Known node types (from a node index or object_info); when `None`, unknown types are not reported.
    pub known_node_types: Option<&'a HashSet<String>>,
    /// Node definitions (a saved `GET /object_info`); when given, every node of the prompt must
    /// supply each input of its definition's `input.required`, as ComfyUI demands.
    pub node_definitions: Option<&'a Value>,
}

/// The node types an object_info document defines (its top-level keys).
pub fn node_types_from_object_info(object_info: &Value) -> HashSet<String> {
    object_info
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Validates a document of either format.
pub fn validate(document: &WorkflowDocument, options: &ValidationOptions<'_>) -> Vec<ValidationIssue> {
    let mut issues = match document {
        WorkflowDocument::Ui(ui) => validate_ui(ui, *options),
        WorkflowDocument::Api(api) => validate_api(api, *options),
    };
    if let Some(definitions) = options.node_definitions {
        let mut scope = Scope {
            name: None,
            issues: &mut issues,
        };
        match document {
            // The prompt the frontend would queue: muted and virtual nodes gone, links through
            // bypassed nodes and reroutes resolved, widget values named.
            WorkflowDocument::Ui(ui) => match convert_to_api(ui, definitions) {
                Ok(conversion) => check_required_inputs(&conversion.prompt, definitions, &mut scope),
                Err(err) => scope.report(
                    Severity::Warning,
                    IssueCode::RequiredInputsUnchecked,
                    None,
                    &format!("required inputs were not checked: {err}"),
                ),
            },
            WorkflowDocument::Api(api) => check_required_inputs(api.as_map(), definitions, &mut scope),
        }
    }
    issues
}

struct Scope<'a> {
    name: Option<String>,
    issues: &'a mut Vec<ValidationIssue>,
}

#[derive(Clone, Copy)]
struct Who<'a> {
    id: &'a str,
    title: Option<&'a str>,
    node_type: Option<&'a str>,
}

impl Scope<'_> {
    fn report(&mut self, severity: Severity, code: IssueCode, who: Option<Who<'_>>, detail: &str) {
        let mut message = String::new();
        if let Some(name) = &self.name {
            message.push_str("in subgraph '");
            message.push_str(name);
            message.push_str("': ");
        }
        if let Some(who) = who {
            message.push_str(&describe(who));
            message.push_str(": ");
        }
        message.push_str(detail);
        self.issues.push(ValidationIssue {
            severity,
            code,
            message,
            node_id: who.map(|w| w.id.to_owned()),
            node_title: who.and_then(|w| w.title.map(str::to_owned)),
            node_type: who.and_then(|w| w.node_type.map(str::to_owned)),
            subgraph: self.name.clone(),
            input_name: None,
        });
    }

    /// Like [`Scope::report`], for an issue about the input `input_name` of a node.
    fn report_input(
        &mut self,
        severity: Severity,
        code: IssueCode,
        who: Who<'_>,
        input_name: &str,
        detail: &str,
    ) {
        self.report(severity, code, Some(who), detail);
        if let Some(issue) = self.issues.last_mut() {
            issue.input_name = Some(input_name.to_owned());
        }
    }
}

fn describe(who: Who<'_>) -> String {
    let node_type = who.node_type.unwrap_or("?");
    match who.title {
        Some(title) => format!("node {} '{title}' ({node_type})", who.id),
        None => format!("node {} ({node_type})", who.id),
    }
}

fn who<'a>(id: &'a str, node: NodeView<'a>) -> Who<'a> {
    Who {
        id,
        title: node.title(),
        node_type: node.node_type(),
    }
}

fn validate_ui(ui: &UiWorkflow, options: ValidationOptions<'_>) -> Vec<ValidationIssue> {
    let mut issues = Vec::new();
    let definitions = ui.subgraph_definitions();
    let definition_ids: HashSet<&str> = definitions.iter().filter_map(SubgraphView::id).collect();
    let mut scope = Scope {
        name: None,
        issues: &mut issues,
    };
    validate_graph(ui.graph(), &definition_ids, options, &mut scope);
    for def in &definitions {
        let name = def.name().or(def.id()).unwrap_or("<unnamed>").to_owned();
        let mut scope = Scope {
            name: Some(name),
            issues: &mut issues,
        };
        validate_graph(def.graph(), &definition_ids, options, &mut scope);
    }
    issues
}

fn validate_graph(
    graph: GraphView<'_>,
    definition_ids: &HashSet<&str>,
    options: ValidationOptions<'_>,
    scope: &mut Scope<'_>,
) {
    let in_subgraph = graph.subgraph().is_some();
    // Nodes and their ids.
    let nodes: Vec<(String, NodeView<'_>)> = graph.nodes().map(|n| (n.id().unwrap_or_default(), n)).collect();
    let mut by_id: HashMap<&str, NodeView<'_>> = HashMap::new();
    for (id, node) in &nodes {
        if id.is_empty() {
            let detail = "node has no usable `id`";
            scope.report(
                Severity::Error,
                IssueCode::MalformedNode,
                Some(who("?", *node)),
                detail,
            );
            continue;
        }
        if by_id.insert(id.as_str(), *node).is_some() {
            scope.report(
                Severity::Error,
                IssueCode::DuplicateNodeId,
                Some(who(id, *node)),
                "another node has the same id",
            );
        }
        match node.node_type() {
            None => scope.report(
                Severity::Error,
                IssueCode::MalformedNode,
                Some(who(id, *node)),
                "node has no `type`",
            ),
            Some(t) if definition_ids.contains(t) || is_frontend_only(t) => {}
            Some(t) if looks_like_subgraph_type(t) => scope.report(
                Severity::Error,
                IssueCode::MissingSubgraphDefinition,
                Some(who(id, *node)),
                &format!("no subgraph definition has id {t}"),
            ),
            Some(t) => {
                if let Some(known) = options.known_node_types
                    && !known.contains(t)
                {
                    scope.report(
                        Severity::Error,
                        IssueCode::UnknownNodeType,
                        Some(who(id, *node)),
                        &format!("node type '{t}' is not installed / not known"),
                    );
                }
            }
        }
    }
    for index in graph.malformed_links() {
        scope.report(
            Severity::Error,
            IssueCode::MalformedLink,
            None,
            &format!("links[{index}] cannot be read"),
        );
    }
    let links = graph.links();
    let mut link_ids = HashSet::new();
    let subgraph_inputs = graph.subgraph().map(|s| s.inputs()).unwrap_or_default();
    let subgraph_outputs = graph.subgraph().map(|s| s.outputs()).unwrap_or_default();
    let mut edges: Vec<(&str, &str)> = Vec::new();
    for link in &links {
        if !link_ids.insert(link.id) {
            scope.report(
                Severity::Warning,
                IssueCode::DuplicateLinkId,
                None,
                &format!("link id {} is used twice", link.id),
            );
        }
        let origin_is_io = in_subgraph && link.origin_id == SUBGRAPH_INPUT_NODE_ID;
        let target_is_io = in_subgraph && link.target_id == SUBGRAPH_OUTPUT_NODE_ID;
        let origin = by_id.get(link.origin_id.as_str()).copied();
        let target = by_id.get(link.target_id.as_str()).copied();
        let target_who = target.map(|n| who(&link.target_id, n));
        let origin_type: Option<String> = if origin_is_io {
            if let Some(io) = usize::try_from(link.origin_slot)
                .ok()
                .and_then(|k| subgraph_inputs.get(k))
            {
                Some(io.io_type.clone())
            } else {
                let detail = format!(
                    "link {} starts at subgraph input {} which does not exist",
                    link.id, link.origin_slot
                );
                scope.report(Severity::Error, IssueCode::MissingSlot, target_who, &detail);
                None
            }
        } else if let Some(origin) = origin {
            let outputs = origin.outputs();
            if let Some(slot) = usize::try_from(link.origin_slot)
                .ok()
                .and_then(|k| outputs.get(k))
            {
                Some(slot.slot_type.clone())
            } else {
                let detail = format!(
                    "link {} starts at output slot {} which the node does not have ({} outputs)",
                    link.id,
                    link.origin_slot,
                    outputs.len()
                );
                scope.report(
                    Severity::Error,
                    IssueCode::MissingSlot,
                    Some(who(&link.origin_id, origin)),
                    &detail,
                );
                None
            }
        } else {
            let detail = format!(
                "link {} comes from node {} which does not exist",
                link.id, link.origin_id
            );
            scope.report(Severity::Error, IssueCode::DanglingLink, target_who, &detail);
            None
        };
        let target_type: Option<(String, String)> = if target_is_io {
            if let Some(io) = usize::try_from(link.target_slot)
                .ok()
                .and_then(|k| subgraph_outputs.get(k))
            {
                Some((io.name.to_owned(), io.io_type.clone()))
            } else {
                let detail = format!(
                    "link {} ends at subgraph output {} which does not exist",
                    link.id, link.target_slot
                );
                scope.report(Severity::Error, IssueCode::MissingSlot, None, &detail);
                None
            }
        } else if let Some(target) = target {
            let inputs = target.inputs();
            if let Some(slot) = usize::try_from(link.target_slot).ok().and_then(|k| inputs.get(k)) {
                Some((slot.name.to_owned(), slot.slot_type.clone()))
            } else {
                let detail = format!(
                    "link {} ends at input slot {} which the node does not have ({} inputs)",
                    link.id,
                    link.target_slot,
                    inputs.len()
                );
                scope.report(Severity::Error, IssueCode::MissingSlot, target_who, &detail);
                None
            }
        } else {
            let origin_who = origin.map(|n| who(&link.origin_id, n));
            let detail = format!(
                "link {} goes to node {} which does not exist",
                link.id, link.target_id
            );
            scope.report(Severity::Error, IssueCode::DanglingLink, origin_who, &detail);
            None
        };
        if let (Some(from), Some((input_name, to))) = (origin_type, target_type)
            && !types_compatible(&from, &to)
        {
            let detail = format!(
                "input '{input_name}' expects {to} but link {} carries {from}",
                link.id
            );
            scope.report(Severity::Error, IssueCode::TypeMismatch, target_who, &detail);
        }
        if origin.is_some() && target.is_some() {
            edges.push((link.origin_id.as_str(), link.target_id.as_str()));
        }
    }
    // Inputs that name a link id the graph does not have.
    for (id, node) in &nodes {
        for input in node.inputs() {
            if let Some(link) = input.link
                && !link_ids.contains(&link)
            {
                let detail = format!(
                    "input '{}' refers to link {link} which does not exist",
                    input.name
                );
                scope.report(
                    Severity::Error,
                    IssueCode::DanglingLink,
                    Some(who(id, *node)),
                    &detail,
                );
            }
        }
    }
    for cycle in cycle_members(&edges) {
        let first = by_id.get(cycle[0]).map(|n| who(cycle[0], *n));
        let detail = format!("nodes {} depend on each other in a loop", cycle.join(", "));
        scope.report(Severity::Error, IssueCode::Cycle, first, &detail);
    }
}

/// V3 inputs whose rows are all optional (`name.1.x` keys, possibly none at all).
const INPUT_TYPES_WITHOUT_OWN_KEY: &[&str] = &["COMFY_AUTOGROW_V3", "COMFY_DYNAMICGROUP_V3"];

/// Reports every `input.required` entry of a node definition that a prompt node does not supply.
///
/// ComfyUI validates only what an output node depends on, so a node no output needs is reported as a
/// warning (ComfyUI skips it); for all other nodes a missing required input stops the prompt.
fn check_required_inputs(prompt: &Map<String, Value>, definitions: &Value, scope: &mut Scope<'_>) {
    let needed = nodes_outputs_depend_on(prompt, definitions);
    for (id, entry) in prompt {
        let Some(class_type) = entry.get("class_type").and_then(Value::as_str) else {
            continue;
        };
        let Some(required) = definitions
            .get(class_type)
            .and_then(|d| d.get("input"))
            .and_then(|i| i.get("required"))
            .and_then(Value::as_object)
        else {
            continue;
        };
        let inputs = entry.get("inputs").and_then(Value::as_object);
        let supplied = |name: &str| {
            inputs.is_some_and(|inputs| {
                inputs.contains_key(name)
                    || inputs
                        .keys()
                        .any(|k| k.strip_prefix(name).is_some_and(|rest| rest.starts_with('.')))
            })
        };
        let me = Who {
            id,
            title: entry
                .get("_meta")
                .and_then(|m| m.get("title"))
                .and_then(Value::as_str),
            node_type: Some(class_type),
        };
        for (name, spec) in required {
            let input_type = spec.get(0).and_then(Value::as_str).unwrap_or_default();
            if supplied(name) || INPUT_TYPES_WITHOUT_OWN_KEY.contains(&input_type) {
                continue;
            }
            let (severity, detail) = if needed.contains(id.as_str()) {
                (Severity::Error, format!("required input '{name}' is missing"))
            } else {
                (
                    Severity::Warning,
                    format!(
                        "required input '{name}' is missing (no output needs this node, so ComfyUI skips it)"
                    ),
                )
            };
            scope.report_input(severity, IssueCode::RequiredInputMissing, me, name, &detail);
        }
    }
}

/// Ids of output nodes (`output_node: true` in their definition) and of every node they depend on
/// through links.
fn nodes_outputs_depend_on<'a>(prompt: &'a Map<String, Value>, definitions: &Value) -> HashSet<&'a str> {
    let mut pending: Vec<&str> = prompt
        .iter()
        .filter(|(_, entry)| {
            entry
                .get("class_type")
                .and_then(Value::as_str)
                .and_then(|c| definitions.get(c))
                .and_then(|d| d.get("output_node"))
                .and_then(Value::as_bool)
                == Some(true)
        })
        .map(|(id, _)| id.as_str())
        .collect();
    let mut seen = HashSet::new();
    while let Some(id) = pending.pop() {
        let Some((key, entry)) = prompt.get_key_value(id) else {
            continue;
        };
        if !seen.insert(key.as_str()) {
            continue;
        }
        let inputs = entry.get("inputs").and_then(Value::as_object);
        for value in inputs.into_iter().flat_map(|i| i.values()) {
            if let [Value::String(origin), Value::Number(_)] = value.as_array().map_or(&[][..], Vec::as_slice)
            {
                pending.push(origin);
            }
        }
    }
    seen
}

/// Nodes that sit on a cycle, grouped into strongly connected parts (iterative Tarjan).
fn cycle_members<'a>(edges: &[(&'a str, &'a str)]) -> Vec<Vec<&'a str>> {
    let mut ids: Vec<&str> = edges.iter().flat_map(|(a, b)| [*a, *b]).collect();
    ids.sort_unstable();
    ids.dedup();
    let index_of: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut adjacency: Vec<Vec<usize>> = vec![Vec::new(); ids.len()];
    let mut self_loops = vec![false; ids.len()];
    for (a, b) in edges {
        let (a, b) = (index_of[a], index_of[b]);
        adjacency[a].push(b);
        if a == b {
            self_loops[a] = true;
        }
    }
    let n = ids.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next_index = 0;
    let mut components = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut call: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut child)) = call.last_mut() {
            if let Some(&w) = adjacency[v].get(*child) {
                *child += 1;
                if index[w] == usize::MAX {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                call.pop();
                if let Some(&(parent, _)) = call.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut component = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        component.push(ids[w]);
                        if w == v {
                            break;
                        }
                    }
                    if component.len() > 1 || self_loops[v] {
                        component.sort_unstable();
                        components.push(component);
                    }
                }
            }
        }
    }
    components.sort();
    components
}

fn validate_api(api: &ApiWorkflow, options: ValidationOptions<'_>) -> Vec<ValidationIssue> {
    let mut issues = Vec::new();
    let mut scope = Scope {
        name: None,
        issues: &mut issues,
    };
    let nodes: Vec<_> = api.nodes().collect();
    let by_id: HashMap<&str, _> = nodes.iter().map(|n| (n.id(), *n)).collect();
    let mut edges = Vec::new();
    for node in &nodes {
        let me = Who {
            id: node.id(),
            title: node.title(),
            node_type: Some(node.class_type()),
        };
        if let Some(known) = options.known_node_types
            && !known.contains(node.class_type())
        {
            let detail = format!("node type '{}' is not installed / not known", node.class_type());
            scope.report(Severity::Error, IssueCode::UnknownNodeType, Some(me), &detail);
        }
        for (name, input) in node.inputs() {
            if let ApiInput::Link { node_id, .. } = input {
                if by_id.contains_key(node_id) {
                    edges.push((node_id, node.id()));
                } else {
                    let detail = format!("input '{name}' is linked to node {node_id} which does not exist");
                    scope.report(Severity::Error, IssueCode::DanglingLink, Some(me), &detail);
                }
            }
        }
    }
    for cycle in cycle_members(&edges) {
        let first = by_id.get(cycle[0]).map(|n| Who {
            id: n.id(),
            title: n.title(),
            node_type: Some(n.class_type()),
        });
        let detail = format!("nodes {} depend on each other in a loop", cycle.join(", "));
        scope.report(Severity::Error, IssueCode::Cycle, first, &detail);
    }
    issues
}
