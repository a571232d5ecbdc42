//! What a stencil body may not do, caught at compile time with a span.
//!
//! A stencil is copied into memory far from the binary, so it may reference nothing
//! but its holes and the declared helpers. These constructs would make it reference
//! something else (a panic routine, a formatter, a static), so they are refused here
//! rather than by the harvester later, which can only name the stencil.

use quote::{quote, ToTokens};
use syn::visit::Visit;

const FORBIDDEN_MACROS: &[(&str, &str)] = &[
    (
        "panic",
        "it links the panic machinery; return `Flow::Trap(..)` instead",
    ),
    ("assert", "it can panic; return `Flow::Trap(..)` instead"),
    ("assert_eq", "it can panic; return `Flow::Trap(..)` instead"),
    ("assert_ne", "it can panic; return `Flow::Trap(..)` instead"),
    (
        "debug_assert",
        "it can panic; return `Flow::Trap(..)` instead",
    ),
    (
        "unreachable",
        "it can panic; return `Flow::Trap(..)` instead",
    ),
    ("todo", "it panics"),
    ("unimplemented", "it panics"),
    ("format", "formatting needs an allocator and a formatter"),
    ("format_args", "formatting references core::fmt"),
    ("print", "a stencil cannot do I/O"),
    ("println", "a stencil cannot do I/O"),
    ("eprint", "a stencil cannot do I/O"),
    ("eprintln", "a stencil cannot do I/O"),
    ("dbg", "a stencil cannot do I/O"),
    ("write", "formatting references core::fmt"),
    ("writeln", "formatting references core::fmt"),
    ("asm", "the tier owns machine-specific code"),
    ("global_asm", "the tier owns machine-specific code"),
];

const FORBIDDEN_METHODS: &[(&str, &str)] = &[
    (
        "unwrap",
        "it can panic; match and return `Flow::Trap(..)` instead",
    ),
    (
        "expect",
        "it can panic; match and return `Flow::Trap(..)` instead",
    ),
    ("unwrap_err", "it can panic"),
    ("expect_err", "it can panic"),
];

const ENTRY_ONLY_FLOWS: &[&str] = &["Enter", "TailCall", "Exit"];

struct Checker<'a> {
    stencil: &'a str,
    /// The stencil has a `Target` operand, which `Flow::branch` needs.
    has_target: bool,
    /// The operands whose value is tier-specific (all but immediates).
    opaque: &'a [syn::Ident],
    error: Option<syn::Error>,
}

impl Checker<'_> {
    /// Refuses the construct made of `tokens`; the error spans all of them.
    fn refuse(&mut self, tokens: impl ToTokens, msg: String) {
        let e = syn::Error::new_spanned(tokens, format!("stencil `{}`: {msg}", self.stencil));
        match &mut self.error {
            Some(prev) => prev.combine(e),
            None => self.error = Some(e),
        }
    }

    fn refuse_tier_accessor(&mut self, ident: &proc_macro2::Ident) {
        if ident.to_string().starts_with("__tier") {
            self.refuse(
                ident,
                format!("`{ident}` is for the tiers only: an operand's representation differs between the interpreter and the JIT"),
            );
        }
    }

    fn refuse_tier_accessors_in(&mut self, tokens: proc_macro2::TokenStream) {
        for tree in tokens {
            match tree {
                proc_macro2::TokenTree::Ident(ident) => self.refuse_tier_accessor(&ident),
                proc_macro2::TokenTree::Group(group) => {
                    self.refuse_tier_accessors_in(group.stream())
                }
                _ => {}
            }
        }
    }

    fn refuse_nested_fn(&mut self, sig: &syn::Signature) {
        let (fn_token, ident) = (&sig.fn_token, &sig.ident);
        self.refuse(
            quote!(#fn_token #ident),
            "a stencil may not define functions: LLVM may keep them out of line, as a symbol the stencil cannot reach".into(),
        );
    }

    /// `use std::...;`, `use {alloc::x, ...};`, `use std as s;`.
    fn check_use_tree(&mut self, tree: &syn::UseTree) {
        let first = match tree {
            syn::UseTree::Path(p) => &p.ident,
            syn::UseTree::Name(n) => &n.ident,
            syn::UseTree::Rename(r) => &r.ident,
            syn::UseTree::Glob(_) => return,
            syn::UseTree::Group(g) => return g.items.iter().for_each(|t| self.check_use_tree(t)),
        };
        if first == "std" || first == "alloc" {
            self.refuse(
                tree,
                format!(
                    "`{first}` is not available to stencils (they are `no_std`, with no allocator)"
                ),
            );
        }
    }
}

impl<'ast> Visit<'ast> for Checker<'_> {
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        // A macro's input is tokens, not syntax: look for the accessors in them too.
        self.refuse_tier_accessors_in(mac.tokens.clone());
        if let Some(last) = mac.path.segments.last() {
            let name = last.ident.to_string();
            if let Some((_, why)) = FORBIDDEN_MACROS.iter().find(|(m, _)| *m == name) {
                let (path, bang) = (&mac.path, &mac.bang_token);
                self.refuse(
                    quote!(#path #bang),
                    format!("`{name}!` is not allowed in a stencil: {why}"),
                );
            }
        }
        syn::visit::visit_macro(self, mac);
    }

    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        let name = call.method.to_string();
        if let Some((_, why)) = FORBIDDEN_METHODS.iter().find(|(m, _)| *m == name) {
            self.refuse(
                &call.method,
                format!("`.{name}()` is not allowed in a stencil: {why}"),
            );
        }
        syn::visit::visit_expr_method_call(self, call);
    }

    /// `b.0` on a register operand: a register index in the interpreter, a byte offset
    /// in the JIT. The field is private too, but this names the reason.
    fn visit_expr_field(&mut self, field: &'ast syn::ExprField) {
        if let syn::Expr::Path(p) = &*field.base {
            if let Some(operand) = p.path.get_ident().filter(|i| self.opaque.contains(i)) {
                self.refuse(
                    field,
                    format!("reading the value of operand `{operand}` is not allowed in a stencil: it is the tier's representation (a register index in the interpreter, a byte offset or address in the JIT), so the tiers would disagree; hand the operand itself to the tier's primitives (`t.i({operand})`, `{operand}.into()`, ...)"),
                );
            }
        }
        syn::visit::visit_expr_field(self, field);
    }

    /// The tiers' accessors of an operand's representation (`__tier_raw`, ...).
    fn visit_ident(&mut self, ident: &'ast proc_macro2::Ident) {
        self.refuse_tier_accessor(ident);
    }

    fn visit_expr_index(&mut self, index: &'ast syn::ExprIndex) {
        self.refuse(
            index,
            "indexing is not allowed in a stencil: a bounds check panics; use the tier's primitives".into(),
        );
        syn::visit::visit_expr_index(self, index);
    }

    fn visit_expr_unsafe(&mut self, block: &'ast syn::ExprUnsafe) {
        self.refuse(
            block.unsafe_token,
            "`unsafe` is not allowed in a stencil body: raw memory access belongs in the tier"
                .into(),
        );
        syn::visit::visit_expr_unsafe(self, block);
    }

    fn visit_item_static(&mut self, item: &'ast syn::ItemStatic) {
        let (static_token, mutability, ident) = (&item.static_token, &item.mutability, &item.ident);
        self.refuse(
            quote!(#static_token #mutability #ident),
            "a stencil may not define a static: it would be a symbol outside the stencil".into(),
        );
    }

    fn visit_item_foreign_mod(&mut self, item: &'ast syn::ItemForeignMod) {
        self.refuse(
            &item.abi,
            "a stencil may not declare external symbols: only holes and the helpers of `stencils::helpers` may be referenced".into(),
        );
    }

    fn visit_item_extern_crate(&mut self, item: &'ast syn::ItemExternCrate) {
        let (extern_token, crate_token, ident) =
            (&item.extern_token, &item.crate_token, &item.ident);
        self.refuse(
            quote!(#extern_token #crate_token #ident),
            "a stencil may not link crates: only holes and the helpers of `stencils::helpers` may be referenced".into(),
        );
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.check_use_tree(&item.tree);
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        self.refuse_nested_fn(&item.sig);
    }

    // Functions in an `impl` or a `trait` inside the body are out-of-line symbols too.
    fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
        self.refuse_nested_fn(&item.sig);
    }

    fn visit_trait_item_fn(&mut self, item: &'ast syn::TraitItemFn) {
        self.refuse_nested_fn(&item.sig);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segs: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if let Some(first) = segs.first() {
            if first == "std" || first == "alloc" {
                self.refuse(path, format!("`{first}` is not available to stencils (they are `no_std`, with no allocator)"));
            }
        }
        if segs.len() >= 2
            && segs[segs.len() - 2] == "Flow"
            && ENTRY_ONLY_FLOWS.contains(&segs[segs.len() - 1].as_str())
        {
            self.refuse(
                path,
                format!(
                    "`Flow::{}` is produced by the tiers, not by stencil bodies",
                    segs[segs.len() - 1]
                ),
            );
        }
        if !self.has_target && segs.ends_with(&["Flow".to_string(), "branch".to_string()]) {
            // Without a `Target` there is nowhere to branch to: the interpreter would jump
            // to whatever field C holds and the JIT would have no target to patch.
            self.refuse(
                path,
                "`Flow::branch` needs a `Target` operand to branch to; this stencil has none"
                    .to_string(),
            );
        }
        syn::visit::visit_path(self, path);
    }
}

pub fn check_body(
    stencil: &str,
    body: &syn::Block,
    has_target: bool,
    opaque: &[syn::Ident],
) -> syn::Result<()> {
    let mut checker = Checker {
        stencil,
        has_target,
        opaque,
        error: None,
    };
    checker.visit_block(body);
    match checker.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
