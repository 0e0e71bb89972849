//! Procedural macros for [leakcheck](https://docs.rs/leakcheck).
//!
//! This crate is an implementation detail: depend on `leakcheck` and use the
//! macros it re-exports. It is empty until the `#[leak_check]` attribute lands.
