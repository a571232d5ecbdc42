//! `#[stencil]`: turns one Rust function into an opcode of both tiers.
//!
//! ```ignore
//! /// iA = iB + iC
//! #[stencil]
//! pub fn AddI64<T: Tier>(t: &mut T, a: RegI, b: RegI, c: RegI) -> Flow {
//!     let v = t.i(b).wrapping_add(t.i(c));
//!     t.set_i(a, v);
//!     Flow::Next
//! }
//! ```
//!
//! The function's name is the mnemonic; its first parameter is the tier; the others
//! are named after the instruction field they read (`a`, `b`, `c`) and typed by the
//! operand kind (`RegI`, `Imm`, `Target`, ...). It expands to:
//! - the function itself, `#[inline(always)]`;
//! - `__OPINFO_<Name>`: the opcode's metadata (operands, whether it ends a block);
//! - `__interp_<Name>`: the interpreter's handler, decoding operands from an `Inst`;
//! - `__stencil_<Name>` (only with `--cfg stencil_jit`): the stencil, reading operands
//!   from holes and ending in a tail jump.
//!
//! - `__stencil_<Name>__<placement>` (only with `--cfg stencil_jit`): its register
//!   variants, one per placement of the register operands in frame slots or cached
//!   machine registers (`stencils::variant`).
//!
//! Options: `#[stencil(terminal)]` never falls through (jumps, tail calls);
//! `#[stencil(returns)]` returns from the function; `#[stencil(internal)]` is a JIT
//! building block, not an opcode (no interpreter handler); `#[stencil(frame_only)]`
//! has no register variants (its operands are raw frame offsets).
//!
//! Rules are checked here, with errors on the offending tokens: the signature's shape,
//! and no construct that would make the stencil reference a symbol other than its
//! holes and the declared helpers (panics, formatting, indexing, statics, externs).

mod access;
mod rules;

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{parse_macro_input, FnArg, ItemFn, Pat, ReturnType, Type};

/// Operand types a stencil parameter may have.
const OPERAND_TYPES: &[&str] = &[
    "RegI", "RegF", "RegC", "Imm", "Target", "ConstI64", "ConstF64", "ConstStr", "Table", "Callee",
    "ArgsI", "ArgsF", "ArgsAny", "Dest", "FmaPair",
];

/// Cached machine registers per bank: `stencils::variant::{CACHED_INT, CACHED_FLOAT}`
/// (the harvester refuses a table whose variants do not match).
const CACHED_INT: usize = 4;
const CACHED_FLOAT: usize = 8;
/// `stencils::variant::FRAME`.
const FRAME: u8 = 0xFF;

#[derive(Default)]
struct Options {
    terminal: bool,
    returns: bool,
    internal: bool,
    frame_only: bool,
}

#[proc_macro_attribute]
pub fn stencil(attr: TokenStream, item: TokenStream) -> TokenStream {
    let func = parse_macro_input!(item as ItemFn);
    let options = match parse_options(attr.into(), &func.sig.ident.to_string()) {
        Ok(o) => o,
        Err(e) => return e.to_compile_error().into(),
    };
    match expand(func, options) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn parse_options(attr: proc_macro2::TokenStream, stencil: &str) -> syn::Result<Options> {
    let mut options = Options::default();
    if attr.is_empty() {
        return Ok(options);
    }
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("terminal") {
            options.terminal = true;
        } else if meta.path.is_ident("returns") {
            options.returns = true;
            options.terminal = true;
        } else if meta.path.is_ident("internal") {
            options.internal = true;
        } else if meta.path.is_ident("frame_only") {
            options.frame_only = true;
        } else {
            return Err(syn::Error::new_spanned(
                &meta.path,
                format!("stencil `{stencil}`: unknown #[stencil] option; expected `terminal`, `returns`, `internal` or `frame_only`"),
            ));
        }
        if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
            return Err(syn::Error::new_spanned(
                &meta.path,
                format!("stencil `{stencil}`: #[stencil] options are plain words, like `#[stencil(terminal)]`"),
            ));
        }
        Ok(())
    });
    syn::parse::Parser::parse2(parser, attr)?;
    Ok(options)
}

struct Param {
    field: syn::Ident,
    ty: syn::Ident,
}

fn expand(func: ItemFn, options: Options) -> syn::Result<proc_macro2::TokenStream> {
    let name = func.sig.ident.clone();
    let name_str = name.to_string();
    check_signature(&func)?;
    let params = operand_params(&func)?;
    let has_target = params.iter().any(|p| p.ty == "Target");
    // An immediate is the same number in both tiers and an `FmaPair`'s fields are
    // register operands; every other operand's value is the tier's representation,
    // which a body must not read.
    let opaque: Vec<syn::Ident> = params
        .iter()
        .filter(|p| p.ty != "Imm" && p.ty != "FmaPair")
        .map(|p| p.field.clone())
        .collect();
    rules::check_body(&name_str, &func.block, has_target, &opaque)?;

    let mut func = func;
    func.attrs.push(syn::parse_quote!(#[inline(always)]));
    func.attrs.push(syn::parse_quote!(#[allow(non_snake_case)]));

    let field_of = |p: &Param| -> syn::Ident {
        let f = p.field.to_string();
        format_ident!("{}", f.trim_start_matches('_').to_uppercase())
    };
    let interp_args = params.iter().map(|p| {
        let ty = &p.ty;
        let field = field_of(p);
        quote!(<#ty as crate::Operand>::decode(inst, crate::Field::#field))
    });
    let hole_args = params.iter().map(|p| {
        let ty = &p.ty;
        let field = field_of(p);
        quote!(<#ty as crate::__jit::FromHole>::from_hole(crate::Field::#field))
    });
    let call = quote!(#name(t, #(#hole_args),*));
    let entry: proc_macro2::TokenStream =
        variant_entries(&name_str, &params, !options.frame_only, field_of)
            .into_iter()
            .map(|variant| quote!(crate::__stencil_entry!(#variant, |t| #call);))
            .collect();
    let access = access::analyse(&func.block, &params);
    let field_bits = |fields: &[syn::Ident]| -> u8 {
        params
            .iter()
            .filter(|p| fields.contains(&p.field))
            .map(|p| 1u8 << field_index(&field_of(p)))
            .fold(0, |a, b| a | b)
    };
    let reads = field_bits(&access.reads);
    let writes = field_bits(&access.writes);

    let info = format_ident!("__OPINFO_{}", name);
    let operands = params.iter().map(|p| {
        let ty = &p.ty;
        let field = field_of(p);
        quote!((crate::Field::#field, <#ty as crate::Operand>::KIND))
    });
    let terminal = options.terminal;
    let returns = options.returns;
    let cached = !options.frame_only;
    let info_item = quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        pub const #info: crate::OpInfo = crate::OpInfo {
            name: #name_str,
            operands: &[#(#operands),*],
            terminal: #terminal,
            returns: #returns,
            cached: #cached,
            reads: #reads,
            writes: #writes,
        };
    };
    if options.internal {
        return Ok(quote! { #func #info_item #entry });
    }

    let interp = format_ident!("__interp_{}", name);
    Ok(quote! {
        #func

        #info_item

        #[doc(hidden)]
        #[inline(always)]
        #[allow(non_snake_case)]
        pub fn #interp<T: crate::Tier>(t: &mut T, inst: crate::Inst) -> crate::Flow {
            let _ = inst;
            #name(t, #(#interp_args),*)
        }

        #entry
    })
}

fn field_index(field: &syn::Ident) -> usize {
    match field.to_string().as_str() {
        "A" => 0,
        "B" => 1,
        _ => 2,
    }
}

/// The symbol and the location codes (fields A, B, C, D) of every register variant of
/// a stencil, in the order and with the names of `stencils::variant`: each register
/// operand in its frame slot or one of its bank's cached machine registers.
fn variant_entries(
    name: &str,
    params: &[Param],
    cached: bool,
    field_of: impl Fn(&Param) -> syn::Ident,
) -> Vec<proc_macro2::TokenStream> {
    // (field index, radix) of each cacheable operand, in text order.
    let digits: Vec<(usize, usize)> = params
        .iter()
        .filter(|_| cached)
        .filter_map(|p| {
            let radix = match p.ty.to_string().as_str() {
                "RegI" | "RegC" => 1 + CACHED_INT,
                "RegF" => 1 + CACHED_FLOAT,
                _ => return None,
            };
            Some((field_index(&field_of(p)), radix))
        })
        .collect();
    let count: usize = digits.iter().map(|d| d.1).product();
    (0..count)
        .map(|index| {
            let mut locs = [FRAME; 4];
            let mut suffix = String::new();
            let mut rest = index;
            for &(field, radix) in digits.iter().rev() {
                let digit = rest % radix;
                rest /= radix;
                if digit > 0 {
                    locs[field] = digit as u8 - 1;
                }
                suffix.insert(
                    0,
                    if digit == 0 {
                        'm'
                    } else {
                        (b'0' + digit as u8 - 1) as char
                    },
                );
            }
            let symbol = if index == 0 {
                format!("__stencil_{name}")
            } else {
                format!("__stencil_{name}__{suffix}")
            };
            let [a, b, c, d] = locs;
            quote!(#symbol, [#a, #b, #c, #d])
        })
        .collect()
}

/// `pub fn Name<T: Tier>(t: &mut T, <operands>) -> Flow`, nothing else.
fn check_signature(func: &ItemFn) -> syn::Result<()> {
    let sig = &func.sig;
    let name = sig.ident.to_string();
    if !name.starts_with(|c: char| c.is_ascii_uppercase()) || name.contains('_') {
        return Err(syn::Error::new(
            sig.ident.span(),
            format!("stencil `{name}`: the function's name is the opcode's mnemonic and must be UpperCamelCase, like `AddI64`"),
        ));
    }
    if let Some(tok) = &sig.constness {
        return Err(err(tok.span(), &name, "a stencil cannot be `const`"));
    }
    if let Some(tok) = &sig.asyncness {
        return Err(err(tok.span(), &name, "a stencil cannot be `async`"));
    }
    if let Some(tok) = &sig.unsafety {
        return Err(err(
            tok.span(),
            &name,
            "a stencil body is safe code; use the tier's primitives instead of `unsafe`",
        ));
    }
    if let Some(abi) = &sig.abi {
        return Err(err_on(
            abi,
            &name,
            "a stencil has no ABI of its own; `#[stencil]` generates the entry point",
        ));
    }
    match &func.vis {
        syn::Visibility::Public(_) => {}
        syn::Visibility::Restricted(vis) => {
            return Err(err_on(
                vis,
                &name,
                "a stencil must be `pub` (the registry refers to it)",
            ))
        }
        syn::Visibility::Inherited => {
            return Err(err(
                sig.fn_token.span,
                &name,
                "a stencil must be `pub` (the registry refers to it)",
            ))
        }
    }
    // Exactly one generic parameter, a type: the tier.
    let generics = &sig.generics.params;
    let Some(tier) = generics.iter().find_map(|g| match g {
        syn::GenericParam::Type(tp) => Some(&tp.ident),
        _ => None,
    }) else {
        let msg = "a stencil is generic over its tier: `fn Name<T: Tier>(t: &mut T, ...)`";
        return Err(if generics.is_empty() {
            err(sig.ident.span(), &name, msg)
        } else {
            err_on(generics, &name, msg)
        });
    };
    if generics.len() > 1 {
        let extra = generics
            .iter()
            .filter(|g| !matches!(g, syn::GenericParam::Type(tp) if &tp.ident == tier));
        return Err(err_on(
            quote!(#(#extra),*),
            &name,
            "a stencil takes exactly one generic parameter, the tier: `fn Name<T: Tier>(t: &mut T, ...)`",
        ));
    }
    match &sig.output {
        ReturnType::Type(_, ty) if type_name(ty).as_deref() == Some("Flow") => {}
        ReturnType::Type(_, ty) => return Err(err_on(ty, &name, "a stencil returns `Flow`")),
        ReturnType::Default => {
            return Err(err(
                sig.paren_token.span.close(),
                &name,
                "a stencil returns `Flow`",
            ))
        }
    }
    let tier_msg = format!("the first parameter is the tier: `t: &mut {tier}`");
    match sig.inputs.first() {
        Some(FnArg::Typed(pt)) if is_mut_ref_to(&pt.ty, tier) => Ok(()),
        Some(other) => Err(err_on(other, &name, &tier_msg)),
        None => Err(err(sig.paren_token.span.join(), &name, &tier_msg)),
    }
}

/// `&mut T`, with `T` the tier parameter.
fn is_mut_ref_to(ty: &Type, tier: &syn::Ident) -> bool {
    match ty {
        Type::Reference(r) if r.mutability.is_some() => {
            matches!(&*r.elem, Type::Path(p) if p.qself.is_none() && p.path.is_ident(tier))
        }
        _ => false,
    }
}

/// The operand parameters: named `a`, `b` or `c` (optionally `_`-prefixed), each at
/// most once, typed by a known operand type.
fn operand_params(func: &ItemFn) -> syn::Result<Vec<Param>> {
    let name = func.sig.ident.to_string();
    let mut params = Vec::new();
    for arg in func.sig.inputs.iter().skip(1) {
        let FnArg::Typed(pt) = arg else {
            return Err(err_on(arg, &name, "unexpected `self`"));
        };
        let Pat::Ident(pat) = &*pt.pat else {
            return Err(err_on(
                &pt.pat,
                &name,
                "operand parameters are plain names: `a`, `b` or `c`",
            ));
        };
        let field = pat.ident.clone();
        let f = field.to_string();
        if !matches!(f.trim_start_matches('_'), "a" | "b" | "c") {
            return Err(err(
                field.span(),
                &name,
                &format!("operand `{f}` must be named after the instruction field it reads: `a`, `b` or `c`"),
            ));
        }
        if params.iter().any(|p: &Param| {
            p.field.to_string().trim_start_matches('_') == f.trim_start_matches('_')
        }) {
            return Err(err(
                field.span(),
                &name,
                &format!("field `{}` is used twice", f.trim_start_matches('_')),
            ));
        }
        let ty = match type_name(&pt.ty) {
            Some(t) if OPERAND_TYPES.contains(&t.as_str()) => {
                format_ident!("{}", t, span = pt.ty.span())
            }
            _ => {
                return Err(err_on(
                    &pt.ty,
                    &name,
                    &format!(
                        "unknown operand type; expected one of {}",
                        OPERAND_TYPES.join(", ")
                    ),
                ))
            }
        };
        params.push(Param { field, ty });
    }
    Ok(params)
}

fn type_name(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

fn err(span: Span, stencil: &str, msg: &str) -> syn::Error {
    syn::Error::new(span, format!("stencil `{stencil}`: {msg}"))
}

/// An error spanning all of `tokens` (a plain `Span` covers only their first token on
/// stable Rust).
fn err_on(tokens: impl quote::ToTokens, stencil: &str, msg: &str) -> syn::Error {
    syn::Error::new_spanned(tokens, format!("stencil `{stencil}`: {msg}"))
}
