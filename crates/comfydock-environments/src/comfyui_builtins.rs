//! The built-in node types of an environment's ComfyUI, found by a static scan of its checkout
//! (`nodes.py`, `comfy_extras/`, `comfy_api_nodes/`) — Python is never imported.

use std::path::Path;

use comfydock_workflow::BuiltinNodes;
use comfydock_workflow::builtins::scan_python_source;

use crate::environment::Environment;

/// The shipped fallback list plus every node class the checkout defines.
pub fn builtin_nodes(env: &Environment) -> BuiltinNodes {
    BuiltinNodes::fallback().with_extra(scan_checkout(&env.comfyui()))
}

/// Node class names and V3 node ids defined by a ComfyUI checkout.
pub fn scan_checkout(comfyui: &Path) -> Vec<String> {
    let mut files = vec![comfyui.join("nodes.py")];
    for dir in ["comfy_extras", "comfy_api_nodes"] {
        if let Ok(entries) = fs_err::read_dir(comfyui.join(dir)) {
            let mut found: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "py"))
                .collect();
            found.sort();
            files.extend(found);
        }
    }
    files
        .iter()
        .filter_map(|f| fs_err::read_to_string(f).ok())
        .flat_map(|source| scan_python_source(&source))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_classes_in_nodes_and_extras() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(
            dir.path().join("nodes.py"),
            "NODE_CLASS_MAPPINGS = {\"KSampler\": KSampler}\n",
        )
        .unwrap();
        fs_err::create_dir(dir.path().join("comfy_extras")).unwrap();
        fs_err::write(
            dir.path().join("comfy_extras/nodes_stitch.py"),
            "NODE_CLASS_MAPPINGS = {\n    \"ImageStitchX\": ImageStitch,\n}\n",
        )
        .unwrap();
        let names = scan_checkout(dir.path());
        assert!(
            names.contains(&"KSampler".to_owned()) && names.contains(&"ImageStitchX".to_owned()),
            "{names:?}"
        );
    }
}
