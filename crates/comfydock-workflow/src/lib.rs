//! Pure ComfyUI workflow parsing, analysis, validation and conversion (no IO).
//!
//! Callers pass text, bytes or JSON values; nothing here touches files or the network.
//!
//! - Read: [`WorkflowDocument::parse`] / [`WorkflowDocument::parse_bytes`] (UI or API format, detected),
//!   [`png::extract_workflows`] (the `workflow` / `prompt` text chunks of a ComfyUI PNG). The document keeps
//!   the whole JSON tree, so [`WorkflowDocument::to_json_string`] writes back every field it read.
//! - Understand: [`analyze`] (node types, packages, models, input files; [`analyze_json`] from bytes, node by
//!   node when it can), [`validate`] (structural issues),
//!   [`builtins::scan_python_source`] (built-in node names from a ComfyUI checkout, for [`AnalysisOptions`]).
//! - Transform and compare: [`convert_to_api`] (needs `/object_info`), [`content_hash`], [`diff`].
//!
//! Every result type is `serde::Serialize` with snake_case fields for `--json` output.

pub mod analysis;
pub mod builtins;
mod content_hash;
pub mod convert;
pub mod diff;
pub mod document;
pub mod error;
mod flatten;
pub mod png;
mod resolve;
pub mod types;
pub mod validation;
pub mod widget_order;

pub use analysis::{
    Analysis, AnalysisOptions, Criticality, FileInput, FileLocation, ModelReference, ModelSource,
    NodeTypeUsage, PackageHint, analyze, analyze_json,
};
pub use builtins::{BuiltinNodes, NodeCategory};
pub use content_hash::{CONTENT_HASH_VERSION, content_hash};
pub use convert::{Conversion, ConversionWarning, convert_to_api};
pub use diff::{DiffNode, ModeChange, ModelChange, WidgetChange, WorkflowDiff, diff};
pub use document::{
    ApiInput, ApiNodeView, ApiWorkflow, GraphView, InputSlot, Link, MAX_SUBGRAPH_DEPTH, NodeMode, NodeView,
    OutputSlot, SubgraphIo, SubgraphView, UiWorkflow, WidgetRef, WidgetValues, WorkflowDocument,
    WorkflowFormat, detect_format,
};
pub use error::WorkflowError;
pub use validation::{
    IssueCode, Severity, ValidationIssue, ValidationOptions, node_types_from_object_info, validate,
};
