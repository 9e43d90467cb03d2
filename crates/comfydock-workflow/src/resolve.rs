//! Follows a link back to the node output (or literal value) that really feeds an input, the way the
//! frontend does when queueing: through Reroutes, subgraph boundaries, bypassed nodes and PrimitiveNodes.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::document::{
    GraphView, Link, NodeMode, NodeView, SUBGRAPH_INPUT_NODE_ID, SubgraphView, WidgetValues,
};
use crate::flatten::FlatGraph;

/// Maximum hops when following a chain (guards against reroute/bypass loops in broken files).
const MAX_HOPS: usize = 10_000;

/// Where an input's data comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Source<'a> {
    /// Output `slot` of the flat node at index `node`.
    Output { node: usize, slot: i64 },
    /// A literal (PrimitiveNode value or a subgraph instance's widget value).
    Value(&'a Value),
    /// Not connected to anything usable (dangling link, bypass without a matching input, loop).
    Nothing,
    /// Fed by a subgraph input whose instance neither links nor stores a value: the inner node's own
    /// (saved) widget value applies.
    InnerWidget,
}

pub(crate) struct Resolver<'g, 'a> {
    flat: &'g FlatGraph<'a>,
    /// (enclosing instance, local id) → flat index.
    by_scope_id: HashMap<(Option<usize>, &'g str), usize>,
    /// Graph identity → link id → link.
    links: HashMap<usize, HashMap<i64, Link>>,
}

fn graph_key(graph: GraphView<'_>) -> usize {
    std::ptr::from_ref::<Map<String, Value>>(graph.as_map()) as usize
}

fn local_id(flat_id: &str) -> &str {
    flat_id.rsplit(':').next().unwrap_or(flat_id)
}

impl<'g, 'a> Resolver<'g, 'a> {
    pub(crate) fn new(flat: &'g FlatGraph<'a>) -> Self {
        let mut by_scope_id = HashMap::with_capacity(flat.nodes.len());
        let mut links: HashMap<usize, HashMap<i64, Link>> = HashMap::new();
        for (index, node) in flat.nodes.iter().enumerate() {
            by_scope_id
                .entry((node.parent, local_id(&node.id)))
                .or_insert(index);
            links
                .entry(graph_key(node.graph))
                .or_insert_with(|| node.graph.links().into_iter().map(|l| (l.id, l)).collect());
        }
        Resolver {
            flat,
            by_scope_id,
            links,
        }
    }

    /// Flat index of a local node id inside the scope of `parent`.
    pub(crate) fn lookup(&self, parent: Option<usize>, id: &str) -> Option<usize> {
        self.by_scope_id.get(&(parent, id)).copied()
    }

    fn link(&self, graph: GraphView<'a>, id: i64) -> Option<&Link> {
        self.links.get(&graph_key(graph)).and_then(|m| m.get(&id))
    }

    /// Resolves input slot `slot` of the flat node at `index`.
    pub(crate) fn resolve_input(&self, index: usize, slot: usize) -> Source<'a> {
        let node = &self.flat.nodes[index];
        let Some(link_id) = node.node.inputs().get(slot).and_then(|i| i.link) else {
            return Source::Nothing;
        };
        self.resolve_link(node.parent, node.graph, link_id)
    }

    fn resolve_link(
        &self,
        mut parent: Option<usize>,
        mut graph: GraphView<'a>,
        mut link_id: i64,
    ) -> Source<'a> {
        for _ in 0..MAX_HOPS {
            let Some(link) = self.link(graph, link_id) else {
                return Source::Nothing;
            };
            if link.origin_id == SUBGRAPH_INPUT_NODE_ID {
                let Some(instance_index) = parent else {
                    return Source::Nothing;
                };
                let instance = &self.flat.nodes[instance_index];
                let Some(def) = instance.instance_of else {
                    return Source::Nothing;
                };
                let Ok(k) = usize::try_from(link.origin_slot) else {
                    return Source::Nothing;
                };
                match instance_input(instance.node, def, k) {
                    InstanceFeed::Link(next) => {
                        parent = instance.parent;
                        graph = instance.graph;
                        link_id = next;
                        continue;
                    }
                    InstanceFeed::Value(value) => return Source::Value(value),
                    InstanceFeed::Unset => return Source::InnerWidget,
                }
            }
            let Some(origin_index) = self.lookup(parent, &link.origin_id) else {
                return Source::Nothing;
            };
            let origin = &self.flat.nodes[origin_index];
            let mode = origin.node.mode();
            if let Some(def) = origin.instance_of
                && !mode.is_disabled()
            {
                let outputs = def.outputs();
                let inner = usize::try_from(link.origin_slot)
                    .ok()
                    .and_then(|k| outputs.get(k))
                    .and_then(|o| o.link_ids.first().copied());
                let Some(inner) = inner else {
                    return Source::Nothing;
                };
                parent = Some(origin_index);
                graph = def.graph();
                link_id = inner;
                continue;
            }
            match origin.node.node_type() {
                Some("Reroute") => {
                    let Some(next) = origin.node.inputs().first().and_then(|i| i.link) else {
                        return Source::Nothing;
                    };
                    link_id = next;
                    continue;
                }
                Some("PrimitiveNode") => {
                    return match origin.node.widgets_values() {
                        WidgetValues::List(items) if !items.is_empty() => Source::Value(&items[0]),
                        _ => Source::Nothing,
                    };
                }
                _ => {}
            }
            if mode == NodeMode::Bypassed {
                let wanted = origin
                    .node
                    .outputs()
                    .get(usize::try_from(link.origin_slot).unwrap_or(usize::MAX))
                    .map_or_else(|| link.link_type.clone(), |o| o.slot_type.clone());
                match bypass_input(origin.node, link.origin_slot, &wanted) {
                    Some(next) => {
                        link_id = next;
                        continue;
                    }
                    None => return Source::Nothing,
                }
            }
            return Source::Output {
                node: origin_index,
                slot: link.origin_slot,
            };
        }
        Source::Nothing
    }
}

/// What an instance supplies for subgraph input `k`.
enum InstanceFeed<'a> {
    Link(i64),
    Value(&'a Value),
    Unset,
}

fn instance_input<'a>(instance: NodeView<'a>, def: SubgraphView<'a>, k: usize) -> InstanceFeed<'a> {
    let def_inputs = def.inputs();
    let Some(wanted) = def_inputs.get(k) else {
        return InstanceFeed::Unset;
    };
    let inputs = instance.inputs();
    let slot = inputs.iter().find(|i| i.name == wanted.name).or_else(|| {
        // Older files: same position, when names differ (labels).
        inputs.get(k).filter(|i| i.widget.is_none() || i.name.is_empty())
    });
    if let Some(slot) = slot
        && let Some(link) = slot.link
    {
        return InstanceFeed::Link(link);
    }
    if let Some(value) = instance.widgets_values_named().and_then(|m| m.get(wanted.name)) {
        return InstanceFeed::Value(value);
    }
    match instance.widgets_values() {
        WidgetValues::Map(map) => map
            .get(wanted.name)
            .map_or(InstanceFeed::Unset, InstanceFeed::Value),
        WidgetValues::List(items) => {
            // Widget values are stored for the subgraph inputs that are widgets on the instance:
            // those without a plain (non-widget) socket.
            let position = def_inputs
                .iter()
                .take(k)
                .filter(|io| !inputs.iter().any(|i| i.name == io.name && i.widget.is_none()))
                .count();
            let is_widget = !inputs.iter().any(|i| i.name == wanted.name && i.widget.is_none());
            match items.get(position) {
                Some(value) if is_widget => InstanceFeed::Value(value),
                _ => InstanceFeed::Unset,
            }
        }
        WidgetValues::None => InstanceFeed::Unset,
    }
}

/// Through a bypassed node: the first linked input whose type matches, trying the same slot index first.
fn bypass_input(node: NodeView<'_>, origin_slot: i64, wanted: &str) -> Option<i64> {
    let inputs = node.inputs();
    let same = usize::try_from(origin_slot).ok();
    let order = same
        .into_iter()
        .chain((0..inputs.len()).filter(|i| Some(*i) != same));
    for index in order {
        let Some(input) = inputs.get(index) else { continue };
        if let Some(link) = input.link
            && input.slot_type == wanted
        {
            return Some(link);
        }
    }
    None
}
