//! Parsing and validating `#[leak_check(...)]` arguments.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Ident, LitBool, LitInt, LitStr, Token};

const KEYS: &str =
    "settle, ignore_name, ignore_spawned_at, crate, flavor, worker_threads, start_paused";

/// The runtime a `#[leak_check] async fn` gets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    CurrentThread,
    MultiThread,
}

/// Every argument, as given (each at most once).
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) settle_ms: Option<u64>,
    pub(crate) ignore_name: Option<LitStr>,
    pub(crate) ignore_spawned_at: Option<LitStr>,
    pub(crate) krate: Option<syn::Path>,
    pub(crate) flavor: Option<(Flavor, Span)>,
    pub(crate) worker_threads: Option<(LitInt, Span)>,
    pub(crate) start_paused: Option<(LitBool, Span)>,
}

impl Args {
    /// The span of the first runtime argument, if any: those only make
    /// sense on an async test.
    pub(crate) fn runtime_arg_span(&self) -> Option<Span> {
        self.flavor
            .map(|(_, s)| s)
            .or(self.worker_threads.as_ref().map(|(_, s)| *s))
            .or(self.start_paused.as_ref().map(|(_, s)| *s))
    }

    /// The span of an argument that `#[tokio::test]` can't be given when
    /// `#[leak_check]` takes it over.
    pub(crate) fn foreign_key_span(&self) -> Option<Span> {
        let ours = [
            self.settle_ms.map(|_| ()),
            self.ignore_name.as_ref().map(|_| ()),
            self.ignore_spawned_at.as_ref().map(|_| ()),
        ];
        if ours.iter().any(Option::is_some) {
            return Some(Span::call_site());
        }
        self.krate.as_ref().map(syn::spanned::Spanned::span)
    }

    /// Merges the arguments of a `#[tokio::test(...)]` that `#[leak_check]`
    /// takes over. An argument given to both is an error.
    pub(crate) fn absorb(&mut self, tokio_args: Args) -> syn::Result<()> {
        take_once(&mut self.flavor, tokio_args.flavor, "flavor", |f| f.1)?;
        take_once(
            &mut self.worker_threads,
            tokio_args.worker_threads,
            "worker_threads",
            |w| w.1,
        )?;
        take_once(
            &mut self.start_paused,
            tokio_args.start_paused,
            "start_paused",
            |p| p.1,
        )?;
        Ok(())
    }

    /// Checks the combinations that are wrong whatever the order.
    pub(crate) fn validate(&self) -> syn::Result<()> {
        let multi = matches!(self.flavor, Some((Flavor::MultiThread, _)));
        if let Some((_, span)) = &self.worker_threads {
            if !multi {
                return Err(syn::Error::new(
                    *span,
                    "`worker_threads` needs `flavor = \"multi_thread\"`; a current-thread runtime has no worker threads",
                ));
            }
        }
        if let Some((paused, span)) = &self.start_paused {
            if paused.value && multi {
                return Err(syn::Error::new(
                    *span,
                    "`start_paused = true` needs `flavor = \"current_thread\"` (tokio can only pause a current-thread runtime's clock)",
                ));
            }
        }
        Ok(())
    }
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Args::default();
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            let key = Ident::parse_any(input)?;
            let name = key.to_string();
            if seen.contains(&name) {
                return Err(syn::Error::new(
                    key.span(),
                    format!("duplicate argument `{name}`"),
                ));
            }
            seen.push(name.clone());
            if !input.peek(Token![=]) {
                return Err(syn::Error::new(
                    key.span(),
                    format!("expected `{name} = ...`; arguments are `key = value` pairs"),
                ));
            }
            input.parse::<Token![=]>()?;
            let span = key.span();
            match name.as_str() {
                "settle" => {
                    let lit: LitStr = input.parse()?;
                    args.settle_ms = Some(parse_settle(&lit)?);
                }
                "ignore_name" => args.ignore_name = Some(input.parse()?),
                "ignore_spawned_at" => args.ignore_spawned_at = Some(input.parse()?),
                "crate" => args.krate = Some(input.parse()?),
                "flavor" => {
                    let lit: LitStr = input.parse()?;
                    let flavor = match lit.value().as_str() {
                        "current_thread" => Flavor::CurrentThread,
                        "multi_thread" => Flavor::MultiThread,
                        other => {
                            return Err(syn::Error::new(
                                lit.span(),
                                format!("unknown flavor {other:?}; expected \"current_thread\" or \"multi_thread\""),
                            ))
                        }
                    };
                    args.flavor = Some((flavor, span));
                }
                "worker_threads" => {
                    let lit: LitInt = input.parse()?;
                    match lit.base10_parse::<usize>() {
                        Ok(n) if n > 0 => {}
                        _ => {
                            return Err(syn::Error::new(
                                lit.span(),
                                "`worker_threads` must be a whole number greater than zero",
                            ))
                        }
                    }
                    args.worker_threads = Some((lit, span));
                }
                "start_paused" => args.start_paused = Some((input.parse()?, span)),
                _ => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("unknown argument `{name}`; expected one of: {KEYS}"),
                    ))
                }
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

/// `"250ms"` or `"2s"`, greater than zero, in milliseconds.
fn parse_settle(lit: &LitStr) -> syn::Result<u64> {
    let text = lit.value();
    let malformed = || {
        syn::Error::new(
            lit.span(),
            format!("malformed duration {text:?}; `settle` takes whole milliseconds or seconds, such as \"250ms\" or \"2s\""),
        )
    };
    let (number, per_unit) = match text.strip_suffix("ms") {
        Some(number) => (number, 1),
        None => (text.strip_suffix('s').ok_or_else(malformed)?, 1000),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    let ms = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(per_unit))
        .ok_or_else(|| syn::Error::new(lit.span(), "`settle` is too large"))?;
    if ms == 0 {
        return Err(syn::Error::new(
            lit.span(),
            "`settle` must be greater than zero; a zero settle period would report tasks that are about to end",
        ));
    }
    Ok(ms)
}

/// Moves `given` into `slot`, unless `slot` already holds the argument:
/// then it is an error at `given`'s span.
fn take_once<T>(
    slot: &mut Option<T>,
    given: Option<T>,
    key: &str,
    span: impl Fn(&T) -> Span,
) -> syn::Result<()> {
    if let Some(value) = given {
        if slot.is_some() {
            return Err(syn::Error::new(
                span(&value),
                format!("`{key}` is given twice (here and in #[leak_check])"),
            ));
        }
        *slot = Some(value);
    }
    Ok(())
}
