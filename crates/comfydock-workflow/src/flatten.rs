//! Expands subgraph instances into their inner nodes with flattened ids (`outer:inner`, nested `a:b:c`),
//! iteratively and with a node-count limit so nested instances cannot explode memory.

use std::collections::HashMap;

use crate::document::{GraphView, NodeMode, NodeView, SubgraphView, UiWorkflow};
use crate::error::WorkflowError;

/// Upper bound on flattened nodes (a hostile file could nest many instances of many instances).
pub(crate) const MAX_FLAT_NODES: usize = 500_000;

/// Upper bound on the bytes of all flattened ids together: ids repeat their enclosing instances'
/// ids, so long string ids nested a few levels could otherwise cost far more than the file.
pub(crate) const MAX_FLAT_ID_BYTES: usize = 64 << 20;

/// One node after subgraph expansion.
#[derive(Debug, Clone)]
pub(crate) struct FlatNode<'a> {
    /// Flattened id: `"12"` at the top level, `"12:5"` inside instance 12.
    pub id: String,
    pub node: NodeView<'a>,
    /// The graph (top level or subgraph body) the node belongs to.
    pub graph: GraphView<'a>,
    /// Index (in the flat list) of the subgraph instance this node sits in.
    pub parent: Option<usize>,
    /// Muted or bypassed when the node itself or any enclosing instance is.
    pub effective_mode: NodeMode,
    /// The definition, when this node is a subgraph instance.
    pub instance_of: Option<SubgraphView<'a>>,
}

pub(crate) struct FlatGraph<'a> {
    pub nodes: Vec<FlatNode<'a>>,
}

struct Frame<'a> {
    graph: GraphView<'a>,
    nodes: Vec<NodeView<'a>>,
    position: usize,
    prefix: String,
    parent: Option<usize>,
    inherited: NodeMode,
}

pub(crate) fn flatten(workflow: &UiWorkflow) -> Result<FlatGraph<'_>, WorkflowError> {
    let definitions: HashMap<&str, SubgraphView<'_>> = workflow.subgraph_index();
    let mut nodes: Vec<FlatNode<'_>> = Vec::new();
    let mut id_bytes = 0usize;
    // Depth-first with an explicit stack, so an instance is followed by its inner nodes.
    let root = workflow.graph();
    let mut stack = vec![Frame {
        graph: root,
        nodes: root.nodes().collect(),
        position: 0,
        prefix: String::new(),
        parent: None,
        inherited: NodeMode::Always,
    }];
    while let Some(frame) = stack.last_mut() {
        let Some(node) = frame.nodes.get(frame.position).copied() else {
            stack.pop();
            continue;
        };
        frame.position += 1;
        let local_id = node.id().unwrap_or_else(|| "?".to_owned());
        let id = if frame.prefix.is_empty() {
            local_id
        } else {
            format!("{}:{local_id}", frame.prefix)
        };
        let effective_mode = if frame.inherited.is_disabled() {
            frame.inherited
        } else {
            node.mode()
        };
        let instance_of = node.node_type().and_then(|t| definitions.get(t).copied());
        id_bytes += id.len();
        if id_bytes > MAX_FLAT_ID_BYTES {
            return Err(WorkflowError::ExpansionTooLarge {
                limit_bytes: MAX_FLAT_ID_BYTES,
            });
        }
        let graph = frame.graph;
        let parent = frame.parent;
        nodes.push(FlatNode {
            id: id.clone(),
            node,
            graph,
            parent,
            effective_mode,
            instance_of,
        });
        if nodes.len() > MAX_FLAT_NODES {
            return Err(WorkflowError::TooManyNodes {
                limit: MAX_FLAT_NODES,
            });
        }
        if let Some(def) = instance_of {
            let body = def.graph();
            stack.push(Frame {
                graph: body,
                nodes: body.nodes().collect(),
                position: 0,
                prefix: id,
                parent: Some(nodes.len() - 1),
                inherited: effective_mode,
            });
        }
    }
    Ok(FlatGraph { nodes })
}
