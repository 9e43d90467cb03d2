//! Errors raised while reading a workflow document.

/// Why a text or byte buffer could not be read as a ComfyUI workflow.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The text is not valid JSON.
    #[error("invalid JSON at line {line}, column {column}: {source}")]
    InvalidJson {
        line: usize,
        column: usize,
        #[source]
        source: serde_json::Error,
    },
    /// Valid JSON, but neither a UI workflow nor an API prompt.
    #[error("this JSON is not a ComfyUI workflow: {reason}")]
    NotAWorkflow { reason: String },
    /// A subgraph definition contains an instance of itself, directly or through other subgraphs.
    #[error("subgraph {} contains itself (cycle: {})", chain.first().map_or("?", String::as_str), chain.join(" -> "))]
    SubgraphCycle { chain: Vec<String> },
    /// Subgraph definitions nest deeper than the safety limit (instances inside definitions inside ...).
    #[error("subgraph {subgraph} nests subgraphs more than {limit} levels deep; refusing to expand it")]
    SubgraphTooDeep { subgraph: String, limit: usize },
    /// Expanding nested subgraph instances would produce more nodes than the safety limit.
    #[error("expanding subgraphs produces more than {limit} nodes; refusing to continue")]
    TooManyNodes { limit: usize },
    /// Expanding nested subgraph instances would produce more node-id text than the safety limit.
    #[error("expanding subgraphs produces more than {limit_bytes} bytes of node ids; refusing to continue")]
    ExpansionTooLarge { limit_bytes: usize },
}

impl WorkflowError {
    pub(crate) fn from_json(source: serde_json::Error) -> Self {
        if source.is_syntax() || source.is_eof() || source.is_io() {
            WorkflowError::InvalidJson {
                line: source.line(),
                column: source.column(),
                source,
            }
        } else {
            WorkflowError::NotAWorkflow {
                reason: source.to_string(),
            }
        }
    }

    pub(crate) fn not_a_workflow(reason: impl Into<String>) -> Self {
        WorkflowError::NotAWorkflow {
            reason: reason.into(),
        }
    }
}
