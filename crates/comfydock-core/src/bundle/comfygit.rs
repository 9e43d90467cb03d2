//! Exports of comfygit (`[tool.comfygit]` in `pyproject.toml`, no `manifest.json`).
//!
//! They carry no lock, no checksums and no dev-node sources, so an exact import is impossible;
//! they are recognised so the user gets a precise message instead of "missing manifest.json".

/// Why a comfygit export is refused.
pub const UNSUPPORTED: &str = "this is a comfygit export (`[tool.comfygit]`): it has no uv.lock, no checksums and no dev-node sources, and importing it is not supported yet";

/// Whether `pyproject` is a comfygit manifest.
pub fn is_comfygit(pyproject: &str) -> bool {
    pyproject
        .parse::<toml::Table>()
        .ok()
        .and_then(|t| t.get("tool")?.get("comfygit").cloned())
        .is_some()
}

#[cfg(test)]
mod tests {
    #[test]
    fn recognises_comfygit() {
        assert!(super::is_comfygit("[tool.comfygit]\nschema_version = 2\n"));
        assert!(!super::is_comfygit("[tool.comfydock]\nschema_version = 1\n"));
    }
}
