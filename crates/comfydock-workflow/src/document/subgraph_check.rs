//! Rejects subgraph definitions that contain themselves (directly or through a cycle) or nest deeper
//! than [`MAX_SUBGRAPH_DEPTH`], iteratively, so a hostile file cannot overflow the stack or make
//! expansion cost grow with the square of the nesting depth.

use std::collections::HashMap;

use super::UiWorkflow;
use crate::error::WorkflowError;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    OnPath,
    Done,
}

/// Deepest subgraph nesting accepted: an instance inside a definition inside a definition ... counts
/// one level per definition. The editor sets no hard limit, but real workflows nest a few levels;
/// a chain of 50,000 definitions (12.7 MB of JSON) used to cost 20 s and 9.4 GB to analyze.
pub const MAX_SUBGRAPH_DEPTH: usize = 64;

pub(crate) fn check_no_cycles(workflow: &UiWorkflow) -> Result<(), WorkflowError> {
    let definitions = workflow.subgraph_definitions();
    if definitions.is_empty() {
        return Ok(());
    }
    let index: HashMap<&str, usize> = definitions
        .iter()
        .enumerate()
        .filter_map(|(i, d)| d.id().map(|id| (id, i)))
        .collect();
    let children: Vec<Vec<usize>> = definitions
        .iter()
        .map(|d| {
            let mut kids: Vec<usize> = d
                .graph()
                .nodes()
                .filter_map(|n| n.node_type().and_then(|t| index.get(t).copied()))
                .collect();
            kids.sort_unstable();
            kids.dedup();
            kids
        })
        .collect();
    let mut state = vec![Visit::New; definitions.len()];
    // Levels of nesting below and including each finished definition (1 = no nested instances).
    let mut depth = vec![0usize; definitions.len()];
    for start in 0..definitions.len() {
        if state[start] != Visit::New {
            continue;
        }
        // Explicit DFS stack of (definition, next child position).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = Visit::OnPath;
        while let Some(&mut (def, ref mut next)) = stack.last_mut() {
            if let Some(&child) = children[def].get(*next) {
                *next += 1;
                match state[child] {
                    Visit::New => {
                        state[child] = Visit::OnPath;
                        stack.push((child, 0));
                    }
                    Visit::OnPath => {
                        let from = stack.iter().position(|&(d, _)| d == child).unwrap_or(0);
                        let mut chain: Vec<String> = stack[from..]
                            .iter()
                            .map(|&(d, _)| describe(definitions[d]))
                            .collect();
                        chain.push(describe(definitions[child]));
                        return Err(WorkflowError::SubgraphCycle { chain });
                    }
                    Visit::Done => {}
                }
            } else {
                state[def] = Visit::Done;
                depth[def] = 1 + children[def].iter().map(|&c| depth[c]).max().unwrap_or(0);
                if depth[def] > MAX_SUBGRAPH_DEPTH {
                    return Err(WorkflowError::SubgraphTooDeep {
                        subgraph: describe(definitions[def]),
                        limit: MAX_SUBGRAPH_DEPTH,
                    });
                }
                stack.pop();
            }
        }
    }
    Ok(())
}

fn describe(def: super::SubgraphView<'_>) -> String {
    match (def.name(), def.id()) {
        (Some(name), Some(id)) => format!("'{name}' ({id})"),
        (None, Some(id)) => id.to_owned(),
        (Some(name), None) => format!("'{name}'"),
        (None, None) => "<unnamed>".to_owned(),
    }
}
