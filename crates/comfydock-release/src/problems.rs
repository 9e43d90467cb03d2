//! What the release checks find wrong, as data: the validation report with its problems, and
//! the frozen packages `bump` refuses to raise. It sits below the `error` module, whose errors
//! carry these reports.

use serde::Serialize;

/// What kind of problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    MissingIndex,
    MissingBundles,
    DuplicateTemplate,
    TemplateFileMissing,
    ThumbnailMissing,
    InvalidWorkflow,
    TemplateNotInBundle,
    TemplateInSeveralBundles,
    BundleTemplateMissing,
    BundlePackageMissing,
    AssetMissingFromPackage,
    AssetOutdatedInPackage,
    InputFileMissing,
    PackageNotBumped,
    FrozenPackageChanged,
    SyncChangedFile,
    LogoMissingFromPackage,
    LogoOutdatedInPackage,
    MetaVersionNotRaised,
    SubPackageNotPinned,
    NotExactlyPinned,
    PinMismatch,
    PinnedVersionUnavailable,
    PublishedContentDiffers,
    ManifestMissing,
    ManifestTemplateMissing,
    ManifestBundleMismatch,
    ManifestAssetMissing,
    ManifestAssetOutdated,
    IndexQueryFailed,
}

/// One problem: what it concerns and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The file, template, bundle or package concerned.
    pub subject: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.subject, self.message)
    }
}

/// The result of `validate`; the release is valid when `problems` is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ValidationReport {
    pub problems: Vec<Problem>,
    pub templates_checked: usize,
    pub bundles_checked: usize,
    pub packages_checked: usize,
    /// The index pinned versions were checked against (`None`: not checked).
    pub index_url: Option<String>,
    /// Whether packages already on the index were built and compared with it.
    pub content_checked: bool,
}

impl ValidationReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A frozen package that changed: what `bump` refuses to raise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FrozenChange {
    pub dir: String,
    pub package: String,
    /// Why it counts as changed, one line each.
    pub reasons: Vec<String>,
}
