//! What every resolution operation works with: the workspace, settings, tools and environment,
//! and the analysis of a tracked workflow's live file.

use comfydock_environments::environment::{Environment, Tools};
use comfydock_environments::settings::Settings;
use comfydock_environments::workflow_tracking as tracking;
use comfydock_environments::workspace::Workspace;
use comfydock_foundation::reporter::Reporter;
use comfydock_workflow::{Analysis, AnalysisOptions, WorkflowDocument, analyze};

use crate::error::ResolveError;

/// Everything `resolve` works with.
pub struct ResolveContext<'a> {
    pub workspace: &'a Workspace,
    pub settings: &'a Settings,
    pub tools: &'a Tools,
    pub env: &'a Environment,
    pub reporter: &'a dyn Reporter,
}

/// The analysis of the live file of tracked workflow `name` (built-ins from the environment's
/// ComfyUI).
pub(crate) fn analyze_live(env: &Environment, name: &str) -> Result<Analysis, ResolveError> {
    let live = tracking::live_path(env, name);
    let bytes = fs_err::read(&live).map_err(|source| ResolveError::Read {
        path: live.clone(),
        source,
    })?;
    let workflow_error = |source| ResolveError::Workflow {
        path: live.clone(),
        source,
    };
    let doc = WorkflowDocument::parse_bytes(&bytes).map_err(workflow_error)?;
    let analysis_options = AnalysisOptions {
        builtins: comfydock_environments::comfyui_builtins::builtin_nodes(env),
        ..Default::default()
    };
    analyze(&doc, &analysis_options).map_err(workflow_error)
}
