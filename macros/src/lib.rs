//! The `#[leak_check]` attribute for [leakcheck](https://docs.rs/leakcheck).
//!
//! This crate is an implementation detail: depend on `leakcheck` and use
//! `#[leakcheck::leak_check]`, whose documentation lists every argument.

mod args;
mod expand;

use proc_macro::TokenStream;

/// See `leakcheck::leak_check` for the documentation.
#[proc_macro_attribute]
pub fn leak_check(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::leak_check(args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
