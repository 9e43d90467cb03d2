//! Test support for comfydock.
