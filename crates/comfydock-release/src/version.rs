//! PEP 440 versions: comparison (is the local version newer than the index's?) and the
//! patch bump applied to changed sub-packages.

use std::cmp::Ordering;
use std::str::FromStr as _;

use pep440_rs::Version;

/// Parse a PEP 440 version; `None` when it is not one.
pub fn parse(text: &str) -> Option<Version> {
    Version::from_str(text.trim()).ok()
}

/// Compare two version strings by PEP 440 rules (`1.0` == `1.0.0`); `None` if either is invalid.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    Some(parse(a)?.cmp(&parse(b)?))
}

/// Whether two version strings denote the same PEP 440 version.
pub fn same(a: &str, b: &str) -> bool {
    compare(a, b) == Some(Ordering::Equal)
}

/// Why a version cannot be patch-bumped automatically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BumpRefusal {
    Invalid,
    NotAPlainRelease,
    TooManyComponents,
}

impl std::fmt::Display for BumpRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Invalid => "it is not a PEP 440 version",
            Self::NotAPlainRelease => {
                "it has an epoch, pre-, post-, dev- or local part; set the next version by hand"
            }
            Self::TooManyComponents => "it has more than three release components",
        })
    }
}

/// `x.y.z` → `x.y.(z+1)`; shorter releases are padded (`1.2` → `1.2.1`).
pub fn patch_bump(text: &str) -> Result<String, BumpRefusal> {
    let version = parse(text).ok_or(BumpRefusal::Invalid)?;
    if version.epoch() != 0
        || version.pre().is_some()
        || version.post().is_some()
        || version.dev().is_some()
        || version.is_local()
    {
        return Err(BumpRefusal::NotAPlainRelease);
    }
    let mut release = version.release().to_vec();
    if release.len() > 3 {
        return Err(BumpRefusal::TooManyComponents);
    }
    release.resize(3, 0);
    release[2] += 1;
    Ok(release.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

/// The version a human most likely wants next for the meta package: a patch bump of `text`'s
/// release part (`0.11.96` → `0.11.97`, the way workflow_templates releases).
pub fn suggest_next(text: &str) -> Option<String> {
    let version = parse(text)?;
    let mut release = version.release().to_vec();
    release.resize(3.max(release.len()), 0);
    let last = release.len() - 1;
    release[last] += 1;
    Some(release.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_bumps() {
        assert_eq!(patch_bump("0.3.6").unwrap(), "0.3.7");
        assert_eq!(patch_bump("1.2").unwrap(), "1.2.1");
        assert_eq!(patch_bump("0.3.099").unwrap(), "0.3.100");
        assert_eq!(patch_bump("0.3.6.dev1"), Err(BumpRefusal::NotAPlainRelease));
        assert_eq!(patch_bump("1.2.3.4"), Err(BumpRefusal::TooManyComponents));
        assert_eq!(patch_bump("banana"), Err(BumpRefusal::Invalid));
    }

    #[test]
    fn compares_by_pep440() {
        assert!(same("1.0", "1.0.0"));
        assert_eq!(compare("0.3.10", "0.3.9"), Some(Ordering::Greater));
        assert_eq!(compare("x", "1"), None);
    }

    #[test]
    fn suggests_a_patch_release() {
        assert_eq!(suggest_next("0.11.96").as_deref(), Some("0.11.97"));
        assert_eq!(suggest_next("1").as_deref(), Some("1.0.1"));
    }
}
