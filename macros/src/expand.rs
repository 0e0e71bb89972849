//! Turning a test function into one that runs inside its own leakcheck
//! scope and checks it before returning.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Attribute, ItemFn, ReturnType};

use crate::args::{Args, Flavor};

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
    if mentions_tokio_test_expansion(&func.block.to_token_stream()) {
        return Err(syn::Error::new(
            Span::call_site(),
            "#[leak_check] must go above #[tokio::test], not below it: below, the runtime is dropped \
             (cancelling every task) before the check could see a leak. \
             Write `#[leak_check] #[tokio::test] async fn ...`, or just `#[leak_check] async fn ...`",
        ));
    }

    // Take over a #[tokio::test(...)] below us, with its arguments.
    let mut took_over_tokio_test = false;
    let mut kept = Vec::with_capacity(func.attrs.len());
    for attr in std::mem::take(&mut func.attrs) {
        if is_tokio_test(&attr) {
            let tokio_args: Args = match &attr.meta {
                syn::Meta::Path(_) => Args::default(),
                _ => attr.parse_args()?,
            };
            if let Some(span) = tokio_args.foreign_key_span() {
                return Err(syn::Error::new(
                    span,
                    "#[leak_check] takes over #[tokio::test]; only `flavor`, `worker_threads` and `start_paused` are supported there",
                ));
            }
            args.absorb(tokio_args)?;
            took_over_tokio_test = true;
        } else {
            kept.push(attr);
        }
    }
    func.attrs = kept;
    args.validate()?;

    if func.sig.asyncness.is_some() {
        Ok(expand_async(func, &args, &krate))
    } else {
        if took_over_tokio_test {
            return Err(syn::Error::new(
                func.sig.fn_token.span(),
                "#[tokio::test] needs an `async fn`",
            ));
        }
        if let Some(span) = args.runtime_arg_span() {
            return Err(syn::Error::new(
                span,
                "`flavor`, `worker_threads` and `start_paused` configure the runtime of an `async fn` test; this test is not async",
            ));
        }
        Ok(expand_sync(func, &args, &krate))
    }
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

/// What both expansions need from the function and the arguments.
struct Parts {
    /// The test function's name, for its scope.
    name: String,
    /// The `Options` expression the check runs with.
    options: TokenStream,
    /// The body's type.
    output: TokenStream,
}

impl Parts {
    fn of(func: &ItemFn, args: &Args, krate: &TokenStream) -> Parts {
        Parts {
            name: func.sig.ident.to_string(),
            options: options(args, krate),
            output: output_type(func),
        }
    }
}

fn expand_sync(func: ItemFn, args: &Args, krate: &TokenStream) -> TokenStream {
    let Parts {
        name,
        options,
        output,
    } = Parts::of(&func, args, krate);
    let (attrs, vis, sig, block) = (&func.attrs, &func.vis, &func.sig, &func.block);
    let span = block.span();
    // The body runs in a closure so that `return` and `?` leave the body,
    // not the check.
    let body = quote_spanned! {span=>
        let __leakcheck_scope = #krate::__private::TestScope::enter(#name, #options);
        #[allow(clippy::let_unit_value, clippy::redundant_closure_call)]
        let __leakcheck_outcome = (move || -> #output #block)();
        __leakcheck_scope.finish(__leakcheck_outcome)
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            #body
        }
    }
}

fn expand_async(mut func: ItemFn, args: &Args, krate: &TokenStream) -> TokenStream {
    // We generate the #[test] ourselves, like #[tokio::test] does.
    func.attrs.retain(|a| !a.path().is_ident("test"));
    func.sig.asyncness = None;
    let Parts {
        name,
        options,
        output,
    } = Parts::of(&func, args, krate);
    let (attrs, vis, sig, block) = (&func.attrs, &func.vis, &func.sig, &func.block);
    let tokio = quote!(#krate::__private::tokio);
    let mut runtime = match args.flavor {
        Some((Flavor::MultiThread, _)) => quote!(#tokio::runtime::Builder::new_multi_thread()),
        _ => quote!(#tokio::runtime::Builder::new_current_thread()),
    };
    if let Some((threads, _)) = &args.worker_threads {
        runtime = quote!(#runtime.worker_threads(#threads));
    }
    if let Some((paused, _)) = &args.start_paused {
        runtime = quote!(#runtime.start_paused(#paused));
    }
    quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis #sig {
            let __leakcheck_scope = #krate::__private::TestScope::enter(#name, #options);
            // Built as this test's own runtime: tasks on it that leakcheck
            // didn't spawn count too (and, under tokio_unstable, are listed).
            let __leakcheck_runtime = #krate::runtime::build(#runtime.enable_all())
                .expect("leakcheck: failed to build the test's tokio runtime");
            // The check runs inside `block_on`: dropping the runtime would
            // cancel every task and hide every leak.
            __leakcheck_runtime.block_on(async move {
                #[allow(clippy::let_unit_value)]
                let __leakcheck_outcome: #output = async move #block.await;
                __leakcheck_scope.finish_async(__leakcheck_outcome).await
            })
        }
    }
}

fn last_segment_is(attr: &Attribute, name: &str) -> bool {
    attr.path().segments.last().is_some_and(|s| s.ident == name)
}

fn is_tokio_test(attr: &Attribute) -> bool {
    let segments: Vec<String> = attr
        .path()
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    segments == ["tokio", "test"]
}

/// Whether `tokens` contain the runtime setup that `#[tokio::test]`
/// generates, which means it expanded before us (we were below it).
fn mentions_tokio_test_expansion(tokens: &TokenStream) -> bool {
    tokens.clone().into_iter().any(|tree| match tree {
        TokenTree::Literal(lit) => lit.to_string() == "\"Failed building the Runtime\"",
        TokenTree::Group(group) => mentions_tokio_test_expansion(&group.stream()),
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
