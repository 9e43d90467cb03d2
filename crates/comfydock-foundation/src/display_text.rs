//! Shortening strings for display without panicking.
//!
//! Hashes and commits usually are ASCII hex, but a manifest or bundle can hold anything; slicing
//! bytes (`&s[..12]`) panics in the middle of a multi-byte character. These count characters.

/// How many characters of a hash or commit are shown.
pub const SHORT_HASH_CHARS: usize = 12;

/// The first `max` characters of `s` (all of it when shorter).
pub fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

/// A hash or commit shortened for display (its first [`SHORT_HASH_CHARS`] characters).
pub fn short_hash(hash: &str) -> &str {
    truncate(hash, SHORT_HASH_CHARS)
}

/// A byte count in binary units for people: `512 B`, `39.1 KiB`, `2.4 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Items in backticks, comma-separated: `` `a`, `b` `` (names in messages).
pub fn backticked(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `s` cut to `max` characters with `…` at the end when it was longer.
pub fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out = truncate(s, max.saturating_sub(1)).to_owned();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_in_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(40_000), "39.1 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn never_splits_a_character() {
        assert_eq!(short_hash("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_hash("abc"), "abc");
        assert_eq!(short_hash(""), "");
        assert_eq!(short_hash("ééééééééééééééé"), "éééééééééééé");
        assert_eq!(short_hash("aaaaaaaaaaa😀tail"), "aaaaaaaaaaa😀");
        assert_eq!(truncate("日本語", 2), "日本");
        assert_eq!(ellipsize("日本語テキスト", 4), "日本語…");
        assert_eq!(ellipsize("short", 10), "short");
    }
}
