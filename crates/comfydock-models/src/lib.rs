//! Content-addressed model index, hashing, scanning and verified downloads.
//!
//! Models are identified by the blake3 of their full content ([`hashing`]). The index
//! ([`index::ModelIndex`]) is a SQLite file (`.metadata/model_index.db`) holding models, their
//! hashes, where they are on disk ([`index::Location`]) and where they came from
//! ([`index::Source`]).
//!
//! What each `comfydock model` subcommand calls:
//!
//! | command | API |
//! |---|---|
//! | `root list/add/remove` | [`roots::ModelRoots::load_or_default`], [`roots::ModelRoots::add`] / [`roots::ModelRoots::remove`] + [`roots::ModelRoots::save`]; after `remove`, [`index::ModelIndex::forget_root`]; then [`extra_paths::write_extra_model_paths`] for every environment |
//! | `root import FILE` | [`extra_paths::import_extra_model_paths`], then `add(root, is_default)` for each |
//! | `scan [--root R]` | [`index::ModelIndex::scan`] with a [`scan::ScanReporter`] |
//! | `list` / `find` | [`index::ModelIndex::visit_models`] (streamed; [`index::ModelIndex::list`] / [`index::ModelIndex::find`] collect it) |
//! | `show ID` | [`query::ModelId::parse`] + [`index::ModelIndex::resolve`] |
//! | `hash --sha256 [ID\|--all]` | [`index::ModelIndex::ensure_sha256`] |
//! | `duplicates` | [`index::ModelIndex::duplicates`] |
//! | `verify [ID\|--all]` | [`index::ModelIndex::verify`] |
//! | `download URL...` | [`download::Downloader::download_all`] + [`index::ModelIndex::record_download`] |
//! | `sources find [ID\|--all]` | [`index::ModelIndex::find_sources`] |
//! | `add-source ID URL` | [`index::ModelIndex::add_source`] with [`endpoints::Endpoints::classify`] |

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
