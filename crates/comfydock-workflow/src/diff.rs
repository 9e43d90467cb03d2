//! Semantic difference between two versions of a workflow: nodes added/removed, widget values and
//! modes changed, models changed. Seeds re-randomized by the editor are not reported.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use crate::analysis::{AnalysisOptions, ModelReference, analyze};
use crate::content_hash::randomized_seed_positions;
use crate::document::{ApiInput, NodeMode, WidgetRef, WorkflowDocument};
use crate::error::WorkflowError;
use crate::flatten::flatten;
use crate::widget_order::positional_names;

/// A node named in a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffNode {
    /// Flattened id (`12:5` inside subgraph instance 12).
    pub node_id: String,
    pub node_type: String,
    pub title: Option<String>,
}

/// One widget value that differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WidgetChange {
    pub node_id: String,
    pub node_type: String,
    pub title: Option<String>,
    pub widget: WidgetRef,
    /// `None` when the widget did not exist before.
    pub old: Option<Value>,
    /// `None` when the widget no longer exists.
    pub new: Option<Value>,
}

/// A node switched between normal, muted and bypassed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModeChange {
    pub node_id: String,
    pub node_type: String,
    pub title: Option<String>,
    pub old: NodeMode,
    pub new: NodeMode,
}

/// A model reference that appeared, disappeared or changed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelChange {
    pub node_id: String,
    pub node_type: String,
    pub widget: Option<WidgetRef>,
    pub folder: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// The result of [`diff`].
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct WorkflowDiff {
    pub nodes_added: Vec<DiffNode>,
    pub nodes_removed: Vec<DiffNode>,
    pub widgets_changed: Vec<WidgetChange>,
    pub modes_changed: Vec<ModeChange>,
    pub models_added: Vec<ModelChange>,
    pub models_removed: Vec<ModelChange>,
    pub models_changed: Vec<ModelChange>,
}

impl WorkflowDiff {
    /// No semantic difference.
    pub fn is_empty(&self) -> bool {
        self.nodes_added.is_empty()
            && self.nodes_removed.is_empty()
            && self.widgets_changed.is_empty()
            && self.modes_changed.is_empty()
            && self.models_added.is_empty()
            && self.models_removed.is_empty()
            && self.models_changed.is_empty()
    }
}

/// A node reduced to what the diff compares.
struct Snapshot {
    node: DiffNode,
    mode: NodeMode,
    widgets: Vec<(WidgetRef, Value)>,
    randomized: HashSet<WidgetRef>,
}

fn snapshots(document: &WorkflowDocument) -> Result<Vec<Snapshot>, WorkflowError> {
    match document {
        WorkflowDocument::Ui(ui) => Ok(flatten(ui)?
            .nodes
            .iter()
            .map(|flat| {
                let mask = randomized_seed_positions(flat.node.as_map());
                let named = flat.node.widgets_values_named().is_some();
                // Positional values get their widget names when the definition is known.
                let positional_names = if named {
                    None
                } else {
                    positional_names(flat.node, None)
                };
                let address = |reference: WidgetRef| match (&reference, &positional_names) {
                    (WidgetRef::Index(i), Some(widget_names)) => WidgetRef::Name(widget_names[*i].clone()),
                    _ => reference,
                };
                let mut randomized: HashSet<WidgetRef> =
                    mask.named.into_iter().map(WidgetRef::Name).collect();
                if !named {
                    randomized.extend(mask.list.into_iter().map(|i| address(WidgetRef::Index(i))));
                }
                Snapshot {
                    node: DiffNode {
                        node_id: flat.id.clone(),
                        node_type: flat.node.node_type().unwrap_or_default().to_owned(),
                        title: flat.node.title().map(str::to_owned),
                    },
                    mode: flat.node.mode(),
                    widgets: flat
                        .node
                        .all_widget_values()
                        .into_iter()
                        .map(|(r, v)| (address(r), v.clone()))
                        .collect(),
                    randomized,
                }
            })
            .collect()),
        WorkflowDocument::Api(api) => Ok(api
            .nodes()
            .map(|node| Snapshot {
                node: DiffNode {
                    node_id: node.id().to_owned(),
                    node_type: node.class_type().to_owned(),
                    title: node.title().map(str::to_owned),
                },
                mode: NodeMode::Always,
                widgets: node
                    .inputs()
                    .into_iter()
                    .filter_map(|(name, input)| match input {
                        ApiInput::Value(v) => Some((WidgetRef::Name(name.to_owned()), v.clone())),
                        ApiInput::Link { .. } => None,
                    })
                    .collect(),
                randomized: HashSet::new(),
            })
            .collect()),
    }
}

/// Compares two versions (`old` → `new`) of a workflow; both may be UI or API documents.
pub fn diff(old: &WorkflowDocument, new: &WorkflowDocument) -> Result<WorkflowDiff, WorkflowError> {
    let before = snapshots(old)?;
    let after = snapshots(new)?;
    let key = |s: &Snapshot| (s.node.node_id.clone(), s.node.node_type.clone());
    let before_index: BTreeMap<(String, String), &Snapshot> = before.iter().map(|s| (key(s), s)).collect();
    let after_keys: HashSet<(String, String)> = after.iter().map(key).collect();
    let mut result = WorkflowDiff::default();
    for snapshot in &before {
        if !after_keys.contains(&key(snapshot)) {
            result.nodes_removed.push(snapshot.node.clone());
        }
    }
    for new_node in &after {
        let Some(old_node) = before_index.get(&key(new_node)) else {
            result.nodes_added.push(new_node.node.clone());
            continue;
        };
        if old_node.mode != new_node.mode {
            result.modes_changed.push(ModeChange {
                node_id: new_node.node.node_id.clone(),
                node_type: new_node.node.node_type.clone(),
                title: new_node.node.title.clone(),
                old: old_node.mode,
                new: new_node.mode,
            });
        }
        compare_widgets(old_node, new_node, &mut result.widgets_changed);
    }
    compare_models(old, new, &mut result)?;
    Ok(result)
}

fn compare_widgets(old: &Snapshot, new: &Snapshot, out: &mut Vec<WidgetChange>) {
    let mut refs: Vec<&WidgetRef> = old.widgets.iter().map(|(r, _)| r).collect();
    for (r, _) in &new.widgets {
        if !refs.contains(&r) {
            refs.push(r);
        }
    }
    for widget in refs {
        if old.randomized.contains(widget) && new.randomized.contains(widget) {
            continue;
        }
        let before = old.widgets.iter().find(|(r, _)| r == widget).map(|(_, v)| v);
        let after = new.widgets.iter().find(|(r, _)| r == widget).map(|(_, v)| v);
        if before != after {
            out.push(WidgetChange {
                node_id: new.node.node_id.clone(),
                node_type: new.node.node_type.clone(),
                title: new.node.title.clone().or_else(|| old.node.title.clone()),
                widget: widget.clone(),
                old: before.cloned(),
                new: after.cloned(),
            });
        }
    }
}

/// Model references are matched by node, widget and (for widget-less declarations) name.
type ModelKey = (String, Option<WidgetRef>, String);

fn compare_models(
    old: &WorkflowDocument,
    new: &WorkflowDocument,
    result: &mut WorkflowDiff,
) -> Result<(), WorkflowError> {
    let options = AnalysisOptions::default();
    let before = analyze(old, &options)?.models;
    let after = analyze(new, &options)?.models;
    let key_of = |m: &ModelReference| -> ModelKey {
        // Models without a widget are keyed by name so that several per node stay apart.
        let name = if m.widget.is_none() {
            m.name.clone()
        } else {
            String::new()
        };
        (m.node_id.clone(), m.widget.clone(), name)
    };
    let old_map: BTreeMap<ModelKey, &ModelReference> = before.iter().map(|m| (key_of(m), m)).collect();
    let new_map: BTreeMap<ModelKey, &ModelReference> = after.iter().map(|m| (key_of(m), m)).collect();
    let change = |m: &ModelReference, old: Option<String>, new: Option<String>| ModelChange {
        node_id: m.node_id.clone(),
        node_type: m.node_type.clone(),
        widget: m.widget.clone(),
        folder: m.folder.clone(),
        old,
        new,
    };
    for (k, m) in &old_map {
        match new_map.get(k) {
            None => result.models_removed.push(change(m, Some(m.name.clone()), None)),
            Some(n) if n.name != m.name => {
                result
                    .models_changed
                    .push(change(n, Some(m.name.clone()), Some(n.name.clone())));
            }
            Some(_) => {}
        }
    }
    for (k, n) in &new_map {
        if !old_map.contains_key(k) {
            result.models_added.push(change(n, None, Some(n.name.clone())));
        }
    }
    Ok(())
}
