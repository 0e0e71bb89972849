//! Turning a test function into one that runs inside its own leakcheck
//! scope and checks it before returning.

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Attribute, ItemFn, ReturnType};

use crate::args::{Args, Flavor, TokioAttr, TokioKind, UnhandledPanic};

pub(crate) fn leak_check(args_tokens: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut args: Args = syn::parse2(args_tokens.clone())?;
    let mut func: ItemFn = syn::parse2(item.clone()).map_err(|_| {
        let first = item.clone().into_iter().next();
        let span = first.map_or_else(Span::call_site, |t| t.span());
        syn::Error::new(
            span,
            "#[leak_check] goes on a test function: `#[leak_check] #[test] fn ...` or `#[leak_check] async fn ...`",
        )
    })?;
    let krate = args
        .krate
        .clone()
        .map_or_else(|| quote!(::leakcheck), ToTokens::into_token_stream);

    if let Some(constness) = &func.sig.constness {
        return Err(syn::Error::new(
            constness.span(),
            "#[leak_check] can't check a `const fn`: a test function can't be const",
        ));
    }
    if let Some(abi) = &func.sig.abi {
        return Err(syn::Error::new(
            abi.span(),
            "#[leak_check] can't check an `extern` fn: remove the ABI from the test function",
        ));
    }

    // Above #[rstest]: move ourselves below it, so rstest copies us onto each
    // generated case (which takes no parameters) and every case is checked.
    if func.attrs.iter().any(|a| last_segment_is(a, "rstest")) {
        func.attrs
            .push(syn::parse_quote!(#[#krate::leak_check(#args_tokens)]));
        return Ok(func.into_token_stream());
    }
    if !func.sig.inputs.is_empty() {
        return Err(syn::Error::new(
            func.sig.inputs.span(),
            "#[leak_check] tests take no parameters; with rstest, put #[leak_check] below #[rstest] so each case is checked",
        ));
    }
    if mentions_tokio_expansion(&func.block.to_token_stream()) {
        // tokio's test attribute also emits the #[test] we see here, by its
        // full path.
        let (below, form) = if func.attrs.iter().any(is_prelude_test_attr) {
            ("#[tokio::test]", "#[tokio::test]")
        } else {
            ("#[tokio::main]", "#[tokio::main] #[test]")
        };
        return Err(syn::Error::new(
            Span::call_site(),
            format!(
                "#[leak_check] must go above {below}, not below it: below, the runtime is dropped \
                 (cancelling every task) before the check could see a leak. \
                 Write `#[leak_check] {form} async fn ...`"
            ),
        ));
    }

    let mut tokio_attrs = func.attrs.iter().filter_map(TokioAttr::of);
    let tokio = tokio_attrs.next();
    if let Some(second) = tokio_attrs.next() {
        return Err(syn::Error::new(
            second.attr.span(),
            "one tokio attribute per test: #[tokio::test] or #[tokio::main], not both",
        ));
    }

    if func.sig.asyncness.is_none() {
        if let Some(tokio) = &tokio {
            return Err(syn::Error::new(
                func.sig.fn_token.span(),
                format!("{} needs an `async fn`", tokio.display()),
            ));
        }
        if let Some(span) = args.runtime.first_span() {
            return Err(syn::Error::new(
                span,
                "`flavor`, `worker_threads`, `start_paused`, `name` and `unhandled_panic` configure the runtime of an `async fn` test; this test is not async",
            ));
        }
        return Ok(expand_sync(func, &args, &krate));
    }

    // `#[tokio::main]` on its own is a program's main, not a test.
    let is_test = tokio.as_ref().is_none_or(|t| t.kind == TokioKind::Test)
        || func.attrs.iter().any(is_test_attr);
    let Some(tokio) = tokio else {
        args.runtime.validate("#[leak_check]")?;
        let runtime = Runtime {
            tokio: quote!(#krate::__private::tokio),
            tokio_crate: None,
            probe: None,
        };
        return Ok(expand_async(func, &args, &krate, &runtime, is_test));
    };
    match tokio.runtime() {
        // Every argument is one leakcheck knows: build the runtime here, for
        // the full view (tokio's task hooks under tokio_unstable).
        Some((theirs, tokio_path)) => {
            args.runtime.absorb(theirs, &tokio.display())?;
            args.runtime.validate("#[leak_check]")?;
            func.attrs
                .retain(|a| TokioAttr::of(a).is_none() && !is_test_attr(a));
            let runtime = Runtime {
                probe: Some(probe_path(&tokio)),
                tokio_crate: tokio_path.as_ref().map(|p| {
                    let text = p.to_token_stream().to_string().replace(' ', "");
                    syn::LitStr::new(&text, Span::call_site())
                }),
                tokio: tokio_path.map_or_else(|| quote!(tokio), ToTokens::into_token_stream),
            };
            Ok(expand_async(func, &args, &krate, &runtime, is_test))
        }
        // An argument leakcheck doesn't know: it is tokio's to judge, so
        // tokio keeps its attribute and leakcheck checks inside the body.
        None => {
            if let Some(span) = args.runtime.first_span() {
                return Err(syn::Error::new(
                    span,
                    format!(
                        "{} has arguments that leakcheck leaves to tokio, so it keeps building the runtime: \
                         give this runtime setting to {} instead of #[leak_check]",
                        tokio.display(),
                        tokio.display()
                    ),
                ));
            }
            Ok(expand_inside(func, &args, &krate))
        }
    }
}

/// The path of `#[tokio::main]` next to the tokio attribute the user wrote.
fn probe_path(tokio: &TokioAttr) -> syn::Path {
    let mut path = tokio.attr.path().clone();
    if let Some(last) = path.segments.last_mut() {
        last.ident = syn::Ident::new("main", last.ident.span());
    }
    path
}

/// The `Options` the check runs with.
fn options(args: &Args, krate: &TokenStream) -> TokenStream {
    let mut options = quote!(#krate::Options::new());
    if let Some(ms) = args.settle_ms {
        options = quote!(#options.settle(::core::time::Duration::from_millis(#ms)));
    }
    if let Some(name) = &args.ignore_name {
        options = quote!(#options.ignore_name(#name));
    }
    if let Some(site) = &args.ignore_spawned_at {
        options = quote!(#options.ignore_spawned_at(#site));
    }
    options
}

fn output_type(func: &ItemFn) -> TokenStream {
    match &func.sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => ty.to_token_stream(),
    }
}

/// What every expansion needs from the function and the arguments.
struct Parts {
    /// The test function's name, for its scope.
    name: String,
    /// Where a failing check says it failed: the test's own name.
    at: Span,
    /// The `Options` expression the check runs with.
    options: TokenStream,
    /// The body's type.
    output: TokenStream,
}

impl Parts {
    fn of(func: &ItemFn, args: &Args, krate: &TokenStream) -> Parts {
        Parts {
            name: func.sig.ident.to_string(),
            at: func.sig.ident.span(),
            options: options(args, krate),
            output: output_type(func),
        }
    }
}

/// The expansion's two locals, the test's scope and the body's outcome,
/// spanned at `at` where they are bound and where they are used: the check's
/// `#[track_caller]` call takes its location from its receiver, and a name
/// resolves only under the same hygiene it was bound with (a test that a
/// `macro_rules!` macro writes has a name with that macro's).
fn locals(at: Span) -> (Ident, Ident) {
    (
        Ident::new("__leakcheck_scope", at),
        Ident::new("__leakcheck_outcome", at),
    )
}

fn expand_sync(func: ItemFn, args: &Args, krate: &TokenStream) -> TokenStream {
    let Parts {
        name,
        at,
        options,
        output,
    } = Parts::of(&func, args, krate);
    let (attrs, vis, sig, block) = (&func.attrs, &func.vis, &func.sig, &func.block);
    // `finish` is #[track_caller]: spanned at the test's name, a failing
    // check panics there.
    let (scope, outcome) = locals(at);
    let finish = quote_spanned! {at=> #scope.finish(#outcome) };
    // The body runs in a closure so that `return` and `?` leave the body,
    // not the check.
    quote! {
        #(#attrs)*
        #vis #sig {
            let #scope = #krate::__private::TestScope::enter(#name, #options);
            #[allow(clippy::let_unit_value, clippy::redundant_closure_call)]
            let #outcome = (move || -> #output #block)();
            #finish
        }
    }
}

/// The body of an async test, run in its scope and checked before the
/// runtime it runs on shuts down.
fn checked_body(func: &ItemFn, args: &Args, krate: &TokenStream) -> TokenStream {
    let Parts {
        name,
        at,
        options,
        output,
    } = Parts::of(func, args, krate);
    let block = &func.block;
    let (scope, outcome) = locals(at);
    let finish = quote_spanned! {at=> #scope.finish_async(#outcome) };
    quote! {
        let #scope = #krate::__private::TestScope::enter(#name, #options);
        #[allow(clippy::let_unit_value)]
        let #outcome: #output = async move #block.await;
        #finish.await
    }
}

/// Where the runtime's types come from, and the tokio attribute that can
/// check its features.
struct Runtime {
    tokio: TokenStream,
    /// The tokio attribute's `crate = "..."`, if given.
    tokio_crate: Option<syn::LitStr>,
    /// `#[tokio::main]` at the path the user wrote, when they wrote one.
    probe: Option<syn::Path>,
}

/// The runtime builder for `args`, each call spanned at the argument it
/// comes from: when the user's tokio lacks the feature a method needs, the
/// error points at that argument.
fn builder(args: &Args, tokio: &TokenStream) -> TokenStream {
    let runtime = &args.runtime;
    let mut builder = match runtime.flavor {
        Some((Flavor::MultiThread, span)) => {
            quote_spanned!(span=> #tokio::runtime::Builder::new_multi_thread())
        }
        _ => quote!(#tokio::runtime::Builder::new_current_thread()),
    };
    if let Some((threads, span)) = &runtime.worker_threads {
        builder = quote_spanned!(*span=> #builder.worker_threads(#threads));
    }
    if let Some((paused, span)) = &runtime.start_paused {
        builder = quote_spanned!(*span=> #builder.start_paused(#paused));
    }
    if let Some((name, span)) = &runtime.name {
        builder = quote_spanned!(*span=> #builder.name(#name));
    }
    if let Some((behavior, span)) = &runtime.unhandled_panic {
        let behavior = match behavior {
            UnhandledPanic::Ignore => quote!(Ignore),
            UnhandledPanic::ShutdownRuntime => quote!(ShutdownRuntime),
        };
        builder = quote_spanned!(*span=>
            #builder.unhandled_panic(#tokio::runtime::UnhandledPanic::#behavior));
    }
    quote!(#builder.enable_all())
}

/// tokio's own check that it has the `rt-multi-thread` feature: its
/// `#[tokio::main]` names the feature when it is missing, which a failed
/// method call can't. An unused item otherwise.
fn feature_probe(args: &Args, runtime: &Runtime) -> TokenStream {
    match (&runtime.probe, args.runtime.flavor) {
        (Some(path), Some((Flavor::MultiThread, span))) => {
            let tokio_crate = runtime.tokio_crate.iter();
            quote_spanned! {span=>
            const _: () = {
                #[allow(dead_code)]
                #[#path(flavor = "multi_thread" #(, crate = #tokio_crate)*)]
                async fn __leakcheck_needs_rt_multi_thread() {}
            };
            }
        }
        _ => TokenStream::new(),
    }
}

fn expand_async(
    mut func: ItemFn,
    args: &Args,
    krate: &TokenStream,
    runtime: &Runtime,
    is_test: bool,
) -> TokenStream {
    let body = checked_body(&func, args, krate);
    func.sig.asyncness = None;
    let (attrs, vis, sig) = (&func.attrs, &func.vis, &func.sig);
    let builder = builder(args, &runtime.tokio);
    let probe = feature_probe(args, runtime);
    // `tokio::time::pause` exists only with tokio's `test-util` feature:
    // naming it makes rustc say which feature `start_paused` needs.
    let paused_check = args.runtime.start_paused.as_ref().map(|(_, span)| {
        let tokio = &runtime.tokio;
        quote_spanned!(*span=> let _ = #tokio::time::pause;)
    });
    let build = match args.runtime.flavor() {
        Flavor::Local => quote!(#krate::runtime::build_local(#builder)),
        _ => quote!(#krate::runtime::build(#builder)),
    };
    // We generate the #[test] ourselves, like #[tokio::test] does.
    let test = is_test.then(|| quote!(#[::core::prelude::v1::test]));
    quote! {
        #probe
        #test
        #(#attrs)*
        #vis #sig {
            #paused_check
            // Built as this test's own runtime: tasks on it that leakcheck
            // didn't spawn count too (and, under tokio_unstable, are listed).
            let __leakcheck_runtime = #build
                .expect("leakcheck: failed to build the test's tokio runtime");
            // The check runs inside `block_on`: dropping the runtime would
            // cancel every task and hide every leak. Pinned here, as tokio's
            // attribute does, so that `block_on` moves a pointer, not the
            // whole test's future.
            let __leakcheck_body = async move { #body };
            let __leakcheck_body = ::core::pin::pin!(__leakcheck_body);
            __leakcheck_runtime.block_on(__leakcheck_body)
        }
    }
}

/// For a tokio attribute leakcheck leaves in place: the check goes inside
/// the body, which tokio's attribute then runs on the runtime it builds.
fn expand_inside(mut func: ItemFn, args: &Args, krate: &TokenStream) -> TokenStream {
    let body = checked_body(&func, args, krate);
    func.block = Box::new(syn::parse_quote!({ #body }));
    func.into_token_stream()
}

fn last_segment_is(attr: &Attribute, name: &str) -> bool {
    attr.path().segments.last().is_some_and(|s| s.ident == name)
}

/// `#[test]`, or the `#[::core::prelude::v1::test]` that tokio emits.
fn is_test_attr(attr: &Attribute) -> bool {
    attr.path().is_ident("test") || is_prelude_test_attr(attr)
}

/// `#[::core::prelude::v1::test]` (or `std`'s), as macros write `#[test]`.
fn is_prelude_test_attr(attr: &Attribute) -> bool {
    let path = attr.path();
    path.segments.len() > 1
        && path.segments.last().is_some_and(|s| s.ident == "test")
        && path
            .segments
            .first()
            .is_some_and(|s| s.ident == "core" || s.ident == "std")
}

/// Whether `tokens` contain the runtime setup that `#[tokio::test]` and
/// `#[tokio::main]` generate, which means one expanded before us (we were
/// below it).
fn mentions_tokio_expansion(tokens: &TokenStream) -> bool {
    tokens.clone().into_iter().any(|tree| match tree {
        TokenTree::Literal(lit) => lit.to_string() == "\"Failed building the Runtime\"",
        TokenTree::Group(group) => mentions_tokio_expansion(&group.stream()),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::leak_check;
    use quote::quote;

    fn error_of(args: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> String {
        leak_check(args, item)
            .expect_err("should be rejected")
            .to_string()
    }

    // `#[tokio::test] #[leak_check]` can't be a trybuild case: the #[test]
    // that tokio::test emits strips the function outside `cargo test`
    // before #[leak_check] ever runs. So test on what tokio::test emits.
    #[test]
    fn below_tokio_test_is_an_error_naming_the_right_order() {
        let expanded_by_tokio_test = quote! {
            #[::core::prelude::v1::test]
            fn check() {
                let body = async {};
                {
                    use tokio::runtime::Builder;
                    return Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("Failed building the Runtime")
                        .block_on(body);
                }
            }
        };
        let error = error_of(quote!(), expanded_by_tokio_test);
        assert!(error.contains("must go above #[tokio::test]"), "{error}");
    }

    #[test]
    fn a_tokio_argument_leakcheck_does_not_know_is_left_to_tokio() {
        let item = quote! {
            #[tokio::test(flavor = "multi_thread", next_years_argument = "x")]
            async fn check() { work().await }
        };
        let out = leak_check(quote!(settle = "1s"), item).unwrap().to_string();
        // tokio's attribute stays, with its arguments unchanged, and the
        // body runs the check inside the runtime tokio builds.
        assert!(
            out.contains(
                "# [tokio :: test (flavor = \"multi_thread\" , next_years_argument = \"x\")]"
            ),
            "{out}"
        );
        assert!(out.contains("async fn check"), "{out}");
        assert!(out.contains("TestScope :: enter"), "{out}");
        assert!(out.contains("finish_async"), "{out}");
        assert!(!out.contains("runtime :: build"), "{out}");
    }

    #[test]
    fn a_known_tokio_attribute_is_taken_over_and_its_features_probed() {
        let item = quote! {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2, name = "rt")]
            async fn check() {}
        };
        let out = leak_check(quote!(), item).unwrap().to_string();
        assert!(!out.contains("# [tokio :: test"), "{out}");
        assert!(out.contains("runtime :: build"), "{out}");
        assert!(out.contains(". name (\"rt\")"), "{out}");
        // tokio's own #[tokio::main] names a missing rt-multi-thread feature.
        assert!(
            out.contains("# [tokio :: main (flavor = \"multi_thread\")]"),
            "{out}"
        );
    }

    #[test]
    fn a_sync_test_that_builds_its_own_runtime_is_accepted() {
        let own_runtime = quote! {
            fn check() {
                let rt = tokio::runtime::Runtime::new().expect("a runtime");
                rt.block_on(async {});
            }
        };
        assert!(leak_check(quote!(), own_runtime).is_ok());
    }

    #[test]
    fn above_rstest_moves_itself_below() {
        let item = quote! {
            #[rstest]
            #[case(1)]
            fn check(#[case] n: u32) {}
        };
        let out = leak_check(quote!(settle = "1s"), item).unwrap().to_string();
        let rstest = out.find("rstest").unwrap();
        let ours = out.find("leak_check").unwrap();
        assert!(rstest < ours, "{out}");
        assert!(out.contains("settle = \"1s\""), "{out}");
    }
}
