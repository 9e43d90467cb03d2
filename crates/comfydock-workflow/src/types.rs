//! Slot type compatibility, as the editor applies it when connecting sockets.

/// Whether an output of type `a` may feed an input of type `b`: equal, either is `*` (or empty),
/// or the comma-separated unions (`"IMAGE,MASK"`) share a member.
pub fn types_compatible(a: &str, b: &str) -> bool {
    let a = a.trim();
    let b = b.trim();
    if a.is_empty() || b.is_empty() || a == "*" || b == "*" || a == b {
        return true;
    }
    a.split(',')
        .map(str::trim)
        .any(|x| x == "*" || b.split(',').map(str::trim).any(|y| y == "*" || x == y))
}
