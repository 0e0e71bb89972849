//! Parsing `#[leak_check(...)]`'s own arguments and reading those of a
//! tokio attribute below it.
//!
//! The two are parsed differently on purpose. `#[leak_check]`'s arguments
//! are ours: a bad one is our error, naming `#[leak_check]`. A tokio
//! attribute's are tokio's: we take them over only when we understand every
//! one of them ([`TokioAttr::runtime`]); anything else (a key tokio added
//! after this was written, a value we don't know) is left to tokio itself,
//! which then reports its own errors.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Attribute, Ident, Lit, LitBool, LitInt, LitStr, Token};

const KEYS: &str = "settle, ignore_name, ignore_spawned_at, crate, flavor, worker_threads, \
                    start_paused, name, unhandled_panic";

/// The runtime a `#[leak_check] async fn` gets.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Flavor {
    CurrentThread,
    MultiThread,
    /// tokio's `LocalRuntime`: a current-thread runtime whose `spawn_local`
    /// needs no `LocalSet`.
    Local,
}

impl Flavor {
    fn parse(text: &str) -> Option<Flavor> {
        match text {
            "current_thread" => Some(Flavor::CurrentThread),
            "multi_thread" => Some(Flavor::MultiThread),
            "local" => Some(Flavor::Local),
            _ => None,
        }
    }
}

/// What a runtime should do with a panic in a spawned task.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum UnhandledPanic {
    Ignore,
    ShutdownRuntime,
}

impl UnhandledPanic {
    fn parse(text: &str) -> Option<UnhandledPanic> {
        match text {
            "ignore" => Some(UnhandledPanic::Ignore),
            "shutdown_runtime" => Some(UnhandledPanic::ShutdownRuntime),
            _ => None,
        }
    }
}

/// The runtime settings, from `#[leak_check]` or from the tokio attribute
/// it takes over. Each value keeps the span of the argument it came from,
/// so the generated builder call points at it when tokio lacks a feature.
#[derive(Default)]
pub(crate) struct RuntimeArgs {
    pub(crate) flavor: Option<(Flavor, Span)>,
    pub(crate) worker_threads: Option<(LitInt, Span)>,
    pub(crate) start_paused: Option<(LitBool, Span)>,
    pub(crate) name: Option<(LitStr, Span)>,
    pub(crate) unhandled_panic: Option<(UnhandledPanic, Span)>,
}

impl RuntimeArgs {
    /// The span of the first argument given, if any.
    pub(crate) fn first_span(&self) -> Option<Span> {
        self.flavor
            .map(|(_, s)| s)
            .or(self.worker_threads.as_ref().map(|(_, s)| *s))
            .or(self.start_paused.as_ref().map(|(_, s)| *s))
            .or(self.name.as_ref().map(|(_, s)| *s))
            .or(self.unhandled_panic.map(|(_, s)| s))
    }

    pub(crate) fn flavor(&self) -> Flavor {
        self.flavor.map_or(Flavor::CurrentThread, |(f, _)| f)
    }

    /// Merges the settings of a tokio attribute that `#[leak_check]` takes
    /// over. A setting given to both is an error at the tokio one.
    pub(crate) fn absorb(&mut self, theirs: RuntimeArgs, attr: &str) -> syn::Result<()> {
        take_once(&mut self.flavor, theirs.flavor, "flavor", attr, |f| f.1)?;
        let key = "worker_threads";
        take_once(
            &mut self.worker_threads,
            theirs.worker_threads,
            key,
            attr,
            |w| w.1,
        )?;
        let key = "start_paused";
        take_once(
            &mut self.start_paused,
            theirs.start_paused,
            key,
            attr,
            |p| p.1,
        )?;
        take_once(&mut self.name, theirs.name, "name", attr, |n| n.1)?;
        let key = "unhandled_panic";
        take_once(
            &mut self.unhandled_panic,
            theirs.unhandled_panic,
            key,
            attr,
            |u| u.1,
        )?;
        Ok(())
    }

    /// The combinations that no runtime accepts, worded for `attr`, the
    /// attribute the user wrote them in.
    pub(crate) fn validate(&self, attr: &str) -> syn::Result<()> {
        let multi = self.flavor() == Flavor::MultiThread;
        if let Some((_, span)) = &self.worker_threads {
            if !multi {
                return Err(syn::Error::new(
                    *span,
                    format!("`worker_threads` needs `flavor = \"multi_thread\"` in {attr}; a current-thread runtime has no worker threads"),
                ));
            }
        }
        if let Some((paused, span)) = &self.start_paused {
            if paused.value && multi {
                return Err(syn::Error::new(
                    *span,
                    format!("`start_paused = true` needs `flavor = \"current_thread\"` in {attr} (tokio can only pause a current-thread runtime's clock)"),
                ));
            }
        }
        if let Some((_, span)) = &self.unhandled_panic {
            if multi {
                return Err(syn::Error::new(
                    *span,
                    format!("`unhandled_panic` needs `flavor = \"current_thread\"` or `\"local\"` in {attr}; tokio's multi-thread runtime doesn't take it"),
                ));
            }
        }
        Ok(())
    }
}

/// `#[leak_check]`'s arguments, as given (each at most once).
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) settle_ms: Option<u64>,
    pub(crate) ignore_name: Option<LitStr>,
    pub(crate) ignore_spawned_at: Option<LitStr>,
    /// The path to leakcheck, when it is re-exported or renamed.
    pub(crate) krate: Option<syn::Path>,
    pub(crate) runtime: RuntimeArgs,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Args::default();
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            let key = Ident::parse_any(input)?;
            let name = key.to_string();
            let span = key.span();
            if seen.contains(&name) {
                return Err(syn::Error::new(
                    span,
                    format!("duplicate argument `{name}` in #[leak_check]"),
                ));
            }
            seen.push(name.clone());
            if !input.peek(Token![=]) {
                return Err(syn::Error::new(
                    span,
                    format!("expected `{name} = ...`; #[leak_check]'s arguments are `key = value` pairs"),
                ));
            }
            input.parse::<Token![=]>()?;
            let runtime = &mut args.runtime;
            match name.as_str() {
                "settle" => args.settle_ms = Some(parse_settle(&input.parse()?)?),
                "ignore_name" => args.ignore_name = Some(input.parse()?),
                "ignore_spawned_at" => args.ignore_spawned_at = Some(input.parse()?),
                // A path, or tokio's string form of one.
                "crate" if input.peek(LitStr) => {
                    args.krate = Some(input.parse::<LitStr>()?.parse()?)
                }
                "crate" => args.krate = Some(input.parse()?),
                "flavor" => {
                    let lit: LitStr = input.parse()?;
                    let flavor = Flavor::parse(&lit.value()).ok_or_else(|| {
                        syn::Error::new(
                            lit.span(),
                            format!("unknown flavor {:?} in #[leak_check]; expected \"current_thread\", \"multi_thread\" or \"local\"", lit.value()),
                        )
                    })?;
                    runtime.flavor = Some((flavor, span));
                }
                "worker_threads" => {
                    let lit: LitInt = input.parse()?;
                    if !lit.base10_parse::<usize>().is_ok_and(|n| n > 0) {
                        return Err(syn::Error::new(
                            lit.span(),
                            "`worker_threads` must be a whole number greater than zero",
                        ));
                    }
                    runtime.worker_threads = Some((lit, span));
                }
                "start_paused" => runtime.start_paused = Some((input.parse()?, span)),
                "name" => runtime.name = Some((input.parse()?, span)),
                "unhandled_panic" => {
                    let lit: LitStr = input.parse()?;
                    let behavior = UnhandledPanic::parse(&lit.value()).ok_or_else(|| {
                        syn::Error::new(
                            lit.span(),
                            format!("unknown `unhandled_panic` value {:?}; expected \"ignore\" or \"shutdown_runtime\"", lit.value()),
                        )
                    })?;
                    runtime.unhandled_panic = Some((behavior, span));
                }
                _ => {
                    return Err(syn::Error::new(
                        span,
                        format!(
                            "unknown argument `{name}` in #[leak_check]; expected one of: {KEYS}"
                        ),
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

/// Which tokio attribute: `#[tokio::test]` or `#[tokio::main]`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TokioKind {
    Test,
    Main,
}

/// A `#[tokio::test(...)]` or `#[tokio::main(...)]` on the function.
pub(crate) struct TokioAttr {
    pub(crate) attr: Attribute,
    pub(crate) kind: TokioKind,
}

impl TokioAttr {
    /// The attribute, if `attr` is one: a path ending in `tokio::test` or
    /// `tokio::main`.
    pub(crate) fn of(attr: &Attribute) -> Option<TokioAttr> {
        let segments: Vec<String> = attr
            .path()
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect();
        let kind = match segments.as_slice() {
            [.., tokio, last] if tokio == "tokio" && last == "test" => TokioKind::Test,
            [.., tokio, last] if tokio == "tokio" && last == "main" => TokioKind::Main,
            _ => return None,
        };
        Some(TokioAttr {
            attr: attr.clone(),
            kind,
        })
    }

    /// How the user wrote it, for messages: `#[tokio::test]`.
    pub(crate) fn display(&self) -> String {
        match self.kind {
            TokioKind::Test => "#[tokio::test]".to_owned(),
            TokioKind::Main => "#[tokio::main]".to_owned(),
        }
    }

    /// Its settings and the tokio path from `crate = "..."`, when every
    /// argument is one leakcheck knows, with a value it knows; `None`
    /// leaves the attribute to tokio.
    pub(crate) fn runtime(&self) -> Option<(RuntimeArgs, Option<syn::Path>)> {
        let mut runtime = RuntimeArgs::default();
        let mut tokio_path = None;
        let pairs = match &self.attr.meta {
            syn::Meta::Path(_) => syn::punctuated::Punctuated::new(),
            syn::Meta::List(list) => list
                .parse_args_with(syn::punctuated::Punctuated::<Pair, Token![,]>::parse_terminated)
                .ok()?,
            syn::Meta::NameValue(_) => return None,
        };
        let mut seen = Vec::new();
        for Pair { key, value } in pairs {
            let name = key.to_string();
            if seen.contains(&name) {
                return None;
            }
            seen.push(name.clone());
            let span = key.span();
            match (name.as_str(), value) {
                ("flavor", Lit::Str(s)) => {
                    runtime.flavor = Some((Flavor::parse(&s.value())?, span))
                }
                ("worker_threads", Lit::Int(n))
                    if n.base10_parse::<usize>().is_ok_and(|n| n > 0) =>
                {
                    runtime.worker_threads = Some((n, span));
                }
                ("start_paused", Lit::Bool(b)) => runtime.start_paused = Some((b, span)),
                ("name", Lit::Str(s)) => runtime.name = Some((s, span)),
                ("unhandled_panic", Lit::Str(s)) => {
                    runtime.unhandled_panic = Some((UnhandledPanic::parse(&s.value())?, span));
                }
                ("crate", Lit::Str(s)) => tokio_path = Some(s.parse().ok()?),
                _ => return None,
            }
        }
        // tokio's default: a multi-thread runtime for #[tokio::main].
        if self.kind == TokioKind::Main && runtime.flavor.is_none() {
            runtime.flavor = Some((Flavor::MultiThread, self.attr.path().span()));
        }
        runtime.validate("").ok()?;
        Some((runtime, tokio_path))
    }
}

/// One `key = literal` argument of a tokio attribute.
struct Pair {
    key: Ident,
    value: Lit,
}

impl Parse for Pair {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let key = Ident::parse_any(input)?;
        input.parse::<Token![=]>()?;
        Ok(Pair {
            key,
            value: input.parse()?,
        })
    }
}

/// `"250ms"` or `"2s"`, in milliseconds. Zero is allowed and means what it
/// means everywhere else (`Options::settle`, `LEAKCHECK_SETTLE`): check
/// once, without waiting.
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
    Ok(ms)
}

/// Moves `given` into `slot`, unless `slot` already holds the argument:
/// then it is an error at `given`'s span.
fn take_once<T>(
    slot: &mut Option<T>,
    given: Option<T>,
    key: &str,
    attr: &str,
    span: impl Fn(&T) -> Span,
) -> syn::Result<()> {
    if let Some(value) = given {
        if slot.is_some() {
            return Err(syn::Error::new(
                span(&value),
                format!("`{key}` is given twice (in {attr} and in #[leak_check]); keep one"),
            ));
        }
        *slot = Some(value);
    }
    Ok(())
}
