//! Content-addressed model index, hashing, scanning and verified downloads.
//!
//! Models are identified by the blake3 of their full content ([`hashing`]). The index
//! ([`index::ModelIndex`]) is a SQLite file (`.metadata/model_index.db`) holding models, their
//! hashes, where they are on disk and where they came from.

pub mod civitai;
pub mod download;
pub mod endpoints;
pub mod extra_paths;
pub mod fetch;
pub mod folders;
pub mod hashing;
pub mod index;
pub mod query;
pub mod roots;
pub mod scan;
