//! Node types mapped to packages by hand (`workflow node map`), for the types no index knows or
//! where the user wants a different package than the ranking picks. Stored once per environment
//! in `[tool.comfydock.node_mappings]`; every workflow's resolution follows them first.

use comfydock_environments::environment::Environment;
use comfydock_environments::manifest::schema::{NoPackage, NodeMapping};
use comfydock_environments::nodes::NodeSpec;

use crate::error::ResolveError;

/// Map `node_type` to `package` (a registry id, git URL or installed node key), or to no
/// package with `None`. Returns the mapping it replaced.
pub fn map(
    env: &Environment,
    node_type: &str,
    package: Option<&str>,
) -> Result<Option<NodeMapping>, ResolveError> {
    let mapping = match package {
        Some(package) => {
            // Refuse what `node add` could never install.
            NodeSpec::parse(package)?;
            NodeMapping::Package(package.to_owned())
        }
        None => NodeMapping::NoPackage(NoPackage),
    };
    edit(env, node_type, Some(mapping))
}

/// Drop the mapping of `node_type`; returns it (`None` when there was none).
pub fn unmap(env: &Environment, node_type: &str) -> Result<Option<NodeMapping>, ResolveError> {
    edit(env, node_type, None)
}

fn edit(
    env: &Environment,
    node_type: &str,
    mapping: Option<NodeMapping>,
) -> Result<Option<NodeMapping>, ResolveError> {
    let mut manifest = env.manifest()?;
    let previous = manifest.set_node_mapping(node_type, mapping);
    manifest.save()?;
    Ok(previous)
}
