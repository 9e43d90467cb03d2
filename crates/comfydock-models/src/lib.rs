//! Content-addressed model index, hashing, scanning and verified downloads.
