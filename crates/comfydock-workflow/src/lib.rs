//! Pure ComfyUI workflow parsing, analysis, validation and conversion (no IO).
//!
//! Callers pass text, bytes or JSON values; nothing here touches files or the network.
//! Entry points: [`WorkflowDocument::parse`], [`png::extract_workflows`].

pub mod document;
pub mod error;
pub mod png;
mod subgraph_check;

pub use document::{
    ApiInput, ApiNodeView, ApiWorkflow, GraphView, InputSlot, Link, NodeMode, NodeView, OutputSlot,
    SubgraphIo, SubgraphView, UiWorkflow, WidgetRef, WidgetValues, WorkflowDocument, WorkflowFormat,
    detect_format,
};
pub use error::WorkflowError;
