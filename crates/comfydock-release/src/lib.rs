//! Release manager for multi-package template and asset monorepos.
