//! Which register operands a stencil body reads and which it writes, for the JIT's
//! liveness of cached registers.
//!
//! A body writes a register through `t.set_i(a, ..)`, `t.set_f(a, ..)`,
//! `t.set_cell(a, ..)` or as a call's destination (`t.call(c, b.into(), a.into())`); any
//! other mention of the operand counts as a read, which errs on the safe side (a read
//! too many keeps a value alive longer, never shorter). A write is taken to happen on
//! every path that continues: the other paths of every opcode trap, which ends the run.

use syn::visit::Visit;

use crate::Param;

pub struct Access {
    pub reads: Vec<syn::Ident>,
    pub writes: Vec<syn::Ident>,
}

pub fn analyse(body: &syn::Block, params: &[Param]) -> Access {
    let mut v = Visitor {
        params: params.iter().map(|p| p.field.clone()).collect(),
        access: Access {
            reads: Vec::new(),
            writes: Vec::new(),
        },
    };
    v.visit_block(body);
    v.access
}

struct Visitor {
    params: Vec<syn::Ident>,
    access: Access,
}

impl Visitor {
    /// The operand an expression names: `a`, or `a.into()`.
    fn operand(&self, expr: &syn::Expr) -> Option<syn::Ident> {
        match expr {
            syn::Expr::Path(p) if p.qself.is_none() => {
                let ident = p.path.get_ident()?;
                self.params.contains(ident).then(|| ident.clone())
            }
            syn::Expr::MethodCall(m) if m.method == "into" && m.args.is_empty() => {
                self.operand(&m.receiver)
            }
            _ => None,
        }
    }

    fn read_tokens(&mut self, tokens: proc_macro2::TokenStream) {
        for tree in tokens {
            match tree {
                proc_macro2::TokenTree::Ident(ident) => self.read(&ident),
                proc_macro2::TokenTree::Group(group) => self.read_tokens(group.stream()),
                _ => {}
            }
        }
    }

    fn read(&mut self, ident: &syn::Ident) {
        if self.params.contains(ident) && !self.access.reads.contains(ident) {
            self.access.reads.push(ident.clone());
        }
    }

    fn write(&mut self, ident: syn::Ident) {
        if !self.access.writes.contains(&ident) {
            self.access.writes.push(ident);
        }
    }
}

impl<'ast> Visit<'ast> for Visitor {
    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        let method = call.method.to_string();
        let written = match method.as_str() {
            "set_i" | "set_f" | "set_cell" => Some(0),
            "call" => Some(2),
            _ => None,
        };
        if let Some(position) = written {
            if let Some(ident) = call.args.iter().nth(position).and_then(|a| self.operand(a)) {
                self.write(ident);
                self.visit_expr(&call.receiver);
                for (i, arg) in call.args.iter().enumerate() {
                    if i != position {
                        self.visit_expr(arg);
                    }
                }
                return;
            }
        }
        syn::visit::visit_expr_method_call(self, call);
    }

    /// A macro's input is tokens, not syntax (`checked!(t.heap().list_get(t.cell(b),
    /// ..))`): every operand named in it counts as read.
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.read_tokens(mac.tokens.clone());
    }

    fn visit_ident(&mut self, ident: &'ast syn::Ident) {
        self.read(ident);
    }
}
