//! Ranking the packages that may provide a custom node type: the workflow's own hints
//! (`properties.cnr_id` / `aux_id`) first, then the node index's claims (installed nodes, the
//! registry, ComfyUI-Manager's map) by rank.

use comfydock_environments::nodes::NodeError;
use comfydock_environments::nodes::index::{ClaimSource, NodeIndex};
use comfydock_environments::nodes::ops::ListedNode;
use comfydock_workflow::NodeTypeUsage;
use serde::Serialize;

/// One package that may provide a node type, and why we think so.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// Registry id or git URL.
    pub package: String,
    pub version: Option<String>,
    pub rank: i64,
    pub why: String,
}

/// The candidates for one node type, best first, and the installed package among them.
pub struct Candidates {
    pub list: Vec<Candidate>,
    /// A package that is installed and provides the type (from the hints or an installed claim).
    pub installed: Option<String>,
}

impl Candidates {
    /// Packages the candidates name, without repeats.
    pub fn distinct(&self) -> Vec<&str> {
        let mut packages: Vec<&str> = Vec::new();
        for c in &self.list {
            if !packages.contains(&c.package.as_str()) {
                packages.push(&c.package);
            }
        }
        packages
    }
}

/// Rank the packages for `usage`, given the node index and the installed nodes.
pub fn candidates(
    usage: &NodeTypeUsage,
    index: &NodeIndex,
    installed: &[ListedNode],
) -> Result<Candidates, NodeError> {
    let mut list: Vec<Candidate> = Vec::new();
    for hint in &usage.packages {
        if let Some(id) = &hint.cnr_id {
            push(
                &mut list,
                id.to_ascii_lowercase(),
                hint.ver.clone(),
                0,
                "properties.cnr_id",
            );
        } else if let Some(aux) = &hint.aux_id {
            push(
                &mut list,
                format!("https://github.com/{aux}"),
                hint.ver.clone(),
                0,
                "properties.aux_id",
            );
        }
    }
    let claims = index.lookup(&usage.node_type)?;
    for claim in &claims {
        let why = match claim.source {
            ClaimSource::Installed => "an installed node defines it",
            ClaimSource::Registry => "the registry lists it",
            ClaimSource::Manager => "ComfyUI-Manager's node map lists it",
        };
        push(
            &mut list,
            claim.package.clone(),
            claim.version.clone(),
            claim.rank,
            why,
        );
    }
    let installed_package = list
        .iter()
        .find(|c| is_installed(installed, &c.package))
        .map(|c| c.package.clone())
        .or_else(|| {
            claims
                .iter()
                .find(|c| c.source == ClaimSource::Installed)
                .map(|c| c.package.clone())
        });
    Ok(Candidates {
        list,
        installed: installed_package,
    })
}

fn push(list: &mut Vec<Candidate>, package: String, version: Option<String>, rank: i64, why: &str) {
    if !list.iter().any(|c| c.package == package) {
        list.push(Candidate {
            package,
            version,
            rank,
            why: why.to_owned(),
        });
    }
    list.sort_by_key(|c| c.rank);
}

/// Whether `package` (a registry id, node name or repository URL) is installed.
pub fn is_installed(installed: &[ListedNode], package: &str) -> bool {
    installed.iter().any(|n| n.entry.provides_package(package))
}
