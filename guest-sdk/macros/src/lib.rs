//! The proc macro behind `#[wask_guest::task]`; use it through `wask-guest`.
//!
//! # Layout
//!
//! - [`task`]: the attribute; parses and checks the function, then emits
//!   the export and the signature record.
//! - `record`: the bytes of one record of the `wask:tasks` custom section,
//!   the same as `wask_proto::signature::encode_record` produces. It is
//!   reimplemented here so this crate does not pull in wask-proto (and
//!   wasmparser, blake3...) at macro build time.

#![warn(missing_docs)]

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, Pat, PathArguments, ReturnType, Type};

/// Turns a plain Rust function into a wask task.
///
/// See the `wask-guest` crate documentation for what it generates and the
/// rules the function must follow.
#[proc_macro_attribute]
pub fn task(
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    let item = TokenStream::from(item);
    match expand(attr.into(), item.clone()) {
        Ok(tokens) => tokens.into(),
        // Keep the function so its callers do not add errors of their own.
        Err(e) => {
            let error = e.to_compile_error();
            quote!(#error #item).into()
        }
    }
}

/// What the task returns, as far as the macro can tell from the syntax.
enum Output {
    /// A plain `R: Serialize`.
    Plain(Type),
    /// `Result<T, E>` or `Result<T>`: `T` is serialized, `E` displayed.
    Fallible(Type),
}

/// Expands the attribute; errors carry the span of the offending syntax.
fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new(
            attr.span(),
            "#[wask_guest::task] takes no arguments",
        ));
    }
    let func: ItemFn = syn::parse2(item)?;
    let sig = &func.sig;
    if let Some(token) = &sig.asyncness {
        return Err(syn::Error::new(
            token.span(),
            "a wask task cannot be `async`: it runs to completion inside its own sandbox",
        ));
    }
    if let Some(token) = &sig.unsafety {
        return Err(syn::Error::new(
            token.span(),
            "a wask task cannot be `unsafe fn`",
        ));
    }
    if let Some(abi) = &sig.abi {
        return Err(syn::Error::new(
            abi.span(),
            "a wask task is a plain Rust fn; remove the `extern`",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "a wask task cannot be generic: its argument and result types are fixed in the module",
        ));
    }
    if let Some(clause) = &sig.generics.where_clause {
        return Err(syn::Error::new(
            clause.span(),
            "a wask task cannot have a `where` clause",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new(
            variadic.span(),
            "a wask task cannot be variadic",
        ));
    }

    let mut param_types: Vec<Type> = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                return Err(syn::Error::new(
                    receiver.span(),
                    "a wask task is a free function: it cannot take `self`",
                ));
            }
            FnArg::Typed(typed) => {
                match &*typed.pat {
                    Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => {}
                    other => {
                        return Err(syn::Error::new(
                            other.span(),
                            "a wask task parameter must be a plain identifier like `x: i64`, not a pattern",
                        ));
                    }
                }
                check_owned(&typed.ty)?;
                param_types.push((*typed.ty).clone());
            }
        }
    }

    let output = match &sig.output {
        ReturnType::Default => Output::Plain(syn::parse_quote!(())),
        ReturnType::Type(_, ty) => {
            check_owned(ty)?;
            match result_ok_type(ty) {
                Some(ok) => Output::Fallible(ok),
                None => Output::Plain((**ty).clone()),
            }
        }
    };
    let result_type = match &output {
        Output::Plain(ty) | Output::Fallible(ty) => ty,
    };

    let fn_ident = &sig.ident;
    // The generated items are as visible as the task, so `mod::task` and
    // its record can be reached the same way.
    let vis = &func.vis;
    let name = fn_ident.unraw().to_string();
    let param_names: Vec<String> = param_types
        .iter()
        .map(|ty| quote!(#ty).to_string())
        .collect();
    let result_name = quote!(#result_type).to_string();
    let record = record::encode(&name, &param_names, &result_name);
    let record_len = record.len();

    let static_ident = format_ident!("__WASK_TASK_{}", name.to_uppercase());
    let export_ident = format_ident!("__wask_task_{}", name);
    // The export minus the pointer handling, so native tests can call it.
    let call_ident = format_ident!("__wask_call_{}", name);
    let export_name = format!("wask:task:{name}");
    let compact = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    let described = format!(
        "{name}({})",
        param_names
            .iter()
            .map(|p| compact(p))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let arg_idents: Vec<_> = (0..param_types.len())
        .map(|i| format_ident!("__wask_arg{i}"))
        .collect();
    // postcard encodes a tuple as its fields in order, so `(A, B)` is exactly
    // the bytes of the arguments one after another, and `(A,)` those of `A`.
    let call = quote! {
        |(#(#arg_idents,)*): (#(#param_types,)*)| #fn_ident(#(#arg_idents),*)
    };
    let run = match output {
        Output::Plain(_) => quote!(run),
        Output::Fallible(_) => quote!(run_fallible),
    };
    let span = fn_ident.span();
    let export_doc = format!(
        " The wask export of [`{name}`]: `(ptr, len) -> ptr << 32 | len`.\n\n # Safety\n\n `ptr..ptr + len` must be readable memory of this instance (the host \
         writes the arguments into a `wask:alloc` buffer)."
    );

    Ok(quote_spanned! {span=>
        #func

        #[doc(hidden)]
        #[cfg_attr(target_family = "wasm", unsafe(link_section = "wask:tasks"))]
        #[used]
        #[allow(non_upper_case_globals)]
        #vis static #static_ident: [u8; #record_len] = [#(#record),*];

        #[doc = #export_doc]
        #[doc(hidden)]
        #[allow(dead_code, non_snake_case)]
        #[cfg_attr(target_family = "wasm", unsafe(export_name = #export_name))]
        #vis unsafe extern "C" fn #export_ident(ptr: *const u8, len: usize) -> i64 {
            ::wask_guest::__private::install_panic_hook();
            // SAFETY: the caller (the host) guarantees the range is readable.
            let input = unsafe { ::wask_guest::__private::input(ptr, len) };
            ::wask_guest::__private::leak(#call_ident(input))
        }

        /// Runs the task on postcard arguments: status byte + payload.
        #[doc(hidden)]
        #[allow(dead_code, non_snake_case)]
        #vis fn #call_ident(input: &[u8]) -> ::std::vec::Vec<u8> {
            ::wask_guest::__private::#run(#described, input, #call)
        }
    })
}

/// Refuses types a task cannot take or return: borrowed data (the guest owns
/// everything it decodes), raw pointers and `impl Trait`.
fn check_owned(ty: &Type) -> syn::Result<()> {
    let borrowed = |span: Span| {
        syn::Error::new(
            span,
            "a wask task takes and returns owned values (`String`, `Vec<u8>`), not references or borrowed types",
        )
    };
    match ty {
        Type::Reference(r) => Err(borrowed(r.span())),
        Type::Ptr(p) => Err(syn::Error::new(
            p.span(),
            "a wask task cannot take or return raw pointers",
        )),
        Type::ImplTrait(t) => Err(syn::Error::new(
            t.span(),
            "a wask task needs concrete types: `impl Trait` is not allowed here",
        )),
        Type::Infer(t) => Err(syn::Error::new(
            t.span(),
            "a wask task needs its types written out",
        )),
        Type::Array(a) => check_owned(&a.elem),
        Type::Slice(s) => check_owned(&s.elem),
        Type::Paren(p) => check_owned(&p.elem),
        Type::Group(g) => check_owned(&g.elem),
        Type::Tuple(t) => t.elems.iter().try_for_each(check_owned),
        Type::Path(p) => {
            if let Some(qself) = &p.qself {
                check_owned(&qself.ty)?;
            }
            for segment in &p.path.segments {
                if let PathArguments::AngleBracketed(args) = &segment.arguments {
                    for arg in &args.args {
                        match arg {
                            GenericArgument::Type(t) => check_owned(t)?,
                            GenericArgument::Lifetime(l) => return Err(borrowed(l.span())),
                            _ => {}
                        }
                    }
                }
            }
            Ok(())
        }
        // Trait objects, fn pointers, `!` and macros: the compiler explains
        // why they are not `Serialize`/`DeserializeOwned` better than we can.
        _ => Ok(()),
    }
}

/// `Some(T)` when `ty` is spelled `Result<T, E>` or `Result<T>` (any path
/// ending in `Result`, so `io::Result<T>` and `anyhow::Result<T>` count).
fn result_ok_type(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let types: Vec<&Type> = args
        .args
        .iter()
        .filter_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect();
    match types.as_slice() {
        [ok] | [ok, _] => Some((*ok).clone()),
        _ => None,
    }
}

/// One record of the `wask:tasks` section, postcard-encoded by hand.
mod record {
    /// Appends `value` as a LEB128 varint, as postcard writes `u32`/`usize`.
    fn varint(out: &mut Vec<u8>, mut value: u64) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// A postcard string: varint length, then UTF-8.
    fn string(out: &mut Vec<u8>, s: &str) {
        varint(out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }

    /// `varint(u32 body length) ++ postcard(TaskSignature { name, params, result })`.
    pub fn encode(name: &str, params: &[String], result: &str) -> Vec<u8> {
        let mut body = Vec::new();
        string(&mut body, name);
        varint(&mut body, params.len() as u64);
        for p in params {
            string(&mut body, p);
        }
        string(&mut body, result);
        let mut out = Vec::with_capacity(body.len() + 5);
        varint(&mut out, body.len() as u64);
        out.extend_from_slice(&body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(item: TokenStream) -> String {
        match expand(TokenStream::new(), item) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn record_matches_wask_proto() {
        // Computed once with wask_proto::signature::encode_record(&TaskSignature {
        //     name: "sum".into(), params: vec!["Vec < i64 >".into()], result: "i64".into() }).
        assert_eq!(
            record::encode("sum", &["Vec < i64 >".into()], "i64"),
            [
                21, 3, 115, 117, 109, 1, 11, 86, 101, 99, 32, 60, 32, 105, 54, 52, 32, 62, 3, 105,
                54, 52
            ]
        );
        // ...and for a body over 127 bytes (two-byte varints), name "t",
        // params ["u8"; 3], result "x" repeated 130 times.
        let long = record::encode(
            "t",
            &["u8".into(), "u8".into(), "u8".into()],
            &"x".repeat(130),
        );
        let mut expected = vec![
            0x90, 0x01, 1, b't', 3, 2, b'u', b'8', 2, b'u', b'8', 2, b'u', b'8', 0x82, 0x01,
        ];
        expected.extend(std::iter::repeat_n(b'x', 130));
        assert_eq!(long, expected);
        assert_eq!(
            record::encode("f", &[], "()"),
            [6, 1, b'f', 0, 2, b'(', b')']
        );
    }

    #[test]
    fn detects_results() {
        let ok = |src: &str| {
            result_ok_type(&syn::parse_str(src).unwrap()).map(|t| quote!(#t).to_string())
        };
        assert_eq!(ok("Result<i64, String>").as_deref(), Some("i64"));
        assert_eq!(ok("anyhow::Result<Vec<u8>>").as_deref(), Some("Vec < u8 >"));
        assert_eq!(ok("std::result::Result<(), E>").as_deref(), Some("()"));
        assert_eq!(ok("Option<i64>"), None);
        assert_eq!(ok("i64"), None);
    }

    #[test]
    fn expands_a_plain_task() {
        let out = expand(
            TokenStream::new(),
            quote!(
                fn add(a: i64, mut b: i64) -> i64 {
                    b += a;
                    b
                }
            ),
        )
        .unwrap()
        .to_string();
        assert!(out.contains("\"wask:task:add\""), "{out}");
        assert!(out.contains("__WASK_TASK_ADD"), "{out}");
        assert!(out.contains("__private :: run ("), "{out}");
        let out = expand(
            TokenStream::new(),
            quote!(
                fn f(x: i64) -> Result<i64, String> {
                    Ok(x)
                }
            ),
        )
        .unwrap();
        assert!(out.to_string().contains("run_fallible"));
    }

    #[test]
    fn refuses_what_cannot_be_a_task() {
        assert!(
            error_of(quote!(
                async fn f() {}
            ))
            .contains("async")
        );
        assert!(
            error_of(quote!(
                fn f(&self) {}
            ))
            .contains("self")
        );
        assert!(
            error_of(quote!(
                fn f((a, b): (i64, i64)) {}
            ))
            .contains("plain identifier")
        );
        assert!(
            error_of(quote!(
                fn f(ref a: i64) {}
            ))
            .contains("plain identifier")
        );
        assert!(
            error_of(quote!(
                fn f<T>(a: T) {}
            ))
            .contains("generic")
        );
        assert!(
            error_of(quote!(
                fn f<'a>(a: i64) {}
            ))
            .contains("generic")
        );
        assert!(
            error_of(quote!(
                fn f(a: &str) {}
            ))
            .contains("references")
        );
        assert!(
            error_of(quote!(
                fn f(a: Vec<&str>) {}
            ))
            .contains("references")
        );
        assert!(
            error_of(quote!(
                fn f(a: Cow<'static, str>) {}
            ))
            .contains("references")
        );
        assert!(
            error_of(quote!(
                fn f() -> &'static str {
                    ""
                }
            ))
            .contains("references")
        );
        assert!(
            error_of(quote!(
                fn f() -> impl Clone {
                    1
                }
            ))
            .contains("impl Trait")
        );
        assert!(
            error_of(quote!(
                unsafe fn f() {}
            ))
            .contains("unsafe")
        );
        assert!(
            expand(
                quote!(foo),
                quote!(
                    fn f() {}
                )
            )
            .unwrap_err()
            .to_string()
            .contains("no arguments")
        );
    }
}
