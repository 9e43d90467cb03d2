//! `release validate` (placeholder while being written).
use serde::Serialize;

/// The result of validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ValidationReport {
    pub problems: Vec<String>,
}
