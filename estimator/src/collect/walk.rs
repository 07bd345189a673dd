//! The `Visit` entry points: statement and expression dispatch under the depth guard, and
//! branches (`if`/`else if` chains flattened, `switch`, `try`, `?:`).

use swc_common::Spanned;
use swc_ecma_ast::{
    ArrowExpr, Callee, Class, ClassDecl, Expr, FnDecl, FnExpr, Function, IfStmt, ImportDecl,
    ImportSpecifier, Lit, OptChainBase, Stmt, VarDecl,
};
use swc_ecma_visit::{Visit, VisitWith};

use super::syntax::{str_lit, unparen};
use super::{ARRAY_BYTES, CALL_UNITS, Collector, ELEMENT_BYTES, REGEX_LITERAL_UNITS, STMT_UNITS};
use crate::ir::{Binding, Block, BodyKind, CallKind, CalleeRef, Item};
use crate::weights::Class as OpClass;

impl Collector<'_, '_> {
    /// An `if` with its `else if` chain, as one flat branch: the chain is as deep in the AST
    /// as it is long, and a flat branch keeps both this walk and the cost pass shallow.
    pub(super) fn if_chain(&mut self, first: &IfStmt) {
        let arms = self.arms_start();
        let mut cur = first;
        loop {
            cur.test.visit_with(self);
            let cons = &cur.cons;
            let arm = self.nested(|c| cons.visit_with(c));
            self.arm(arm);
            match cur.alt.as_deref() {
                Some(Stmt::If(next)) => {
                    self.work(STMT_UNITS);
                    cur = next;
                }
                Some(alt) => {
                    let arm = self.nested(|c| alt.visit_with(c));
                    self.arm(arm);
                    break;
                }
                None => {
                    self.arm(Block::default());
                    break;
                }
            }
        }
        self.branch(arms);
    }
}

impl Visit for Collector<'_, '_> {
    fn visit_stmt(&mut self, s: &Stmt) {
        if !self.enter(|| s.span().lo.0) {
            return;
        }
        if !matches!(s, Stmt::Block(_) | Stmt::Empty(_) | Stmt::Decl(_)) {
            self.work(STMT_UNITS);
        }
        match s {
            Stmt::For(_) | Stmt::ForIn(_) | Stmt::ForOf(_) | Stmt::While(_) | Stmt::DoWhile(_) => {
                self.loop_stmt(s)
            }
            Stmt::If(i) => self.if_chain(i),
            Stmt::Switch(sw) => {
                sw.discriminant.visit_with(self);
                let arms = self.arms_start();
                for case in &sw.cases {
                    let arm = self.nested(|c| {
                        case.test.visit_with(c);
                        case.cons.visit_with(c);
                    });
                    self.arm(arm);
                }
                if !sw.cases.iter().any(|c| c.test.is_none()) {
                    self.arm(Block::default());
                }
                self.branch(arms);
            }
            Stmt::Try(t) => {
                t.block.visit_with(self);
                if let Some(h) = &t.handler {
                    let arm = self.nested(|c| h.visit_with(c));
                    self.maybe(arm);
                }
                t.finalizer.visit_with(self);
            }
            _ => s.visit_children_with(self),
        }
        self.leave();
    }

    fn visit_expr(&mut self, e: &Expr) {
        if !self.enter(|| e.span().lo.0) {
            return;
        }
        match e {
            Expr::Call(c) => match &c.callee {
                Callee::Expr(callee) => self.call(callee, &c.args),
                Callee::Import(_) => {
                    self.work_as(OpClass::Call, CALL_UNITS);
                    let url = c.args.first().and_then(|a| str_lit(&a.expr));
                    self.net("import()", url);
                    for a in &c.args {
                        a.expr.visit_with(self);
                    }
                }
                Callee::Super(_) => {
                    self.work_as(OpClass::Call, CALL_UNITS);
                    self.args(&c.args, None);
                }
            },
            Expr::OptChain(o) => match &*o.base {
                OptChainBase::Call(c) => self.call(&c.callee, &c.args),
                OptChainBase::Member(m) => self.member(m),
            },
            Expr::New(n) => self.new_expr(&n.callee, n.args.as_deref().unwrap_or(&[])),
            Expr::Fn(f) => self.visit_fn_expr(f),
            Expr::Arrow(a) => {
                self.arrow(None, a);
            }
            Expr::Class(c) => {
                self.class(c.ident.as_ref().map(|i| i.sym.to_string()), &c.class);
            }
            Expr::Assign(a) => self.assign(a),
            Expr::Bin(b) => self.bin(b),
            Expr::Member(m) => self.member(m),
            Expr::Cond(c) => {
                self.work(1.0);
                c.test.visit_with(self);
                let cons = self.nested(|s| c.cons.visit_with(s));
                let alt = self.nested(|s| c.alt.visit_with(s));
                let arms = self.arms_start();
                self.arm(cons);
                self.arm(alt);
                self.branch(arms);
            }
            Expr::Object(o) => self.object(o),
            Expr::Array(a) => {
                let n = a.elems.len() as f64;
                self.work(1.0 + n);
                self.alloc(ARRAY_BYTES + ELEMENT_BYTES * n);
                a.visit_children_with(self);
            }
            Expr::Tpl(t) => {
                self.work(1.0 + t.exprs.len() as f64);
                if self.loop_depth > 0 && !t.exprs.is_empty() {
                    // Built in a loop: a string concatenation (with number formatting) per
                    // trip, as `'a' + i` is.
                    self.item(Item::Builtin(&crate::builtins::STRING_CONCAT));
                }
                t.visit_children_with(self);
            }
            Expr::TaggedTpl(t) => {
                self.work_as(OpClass::Call, CALL_UNITS);
                self.work(t.tpl.exprs.len() as f64);
                match unparen(&t.tag) {
                    Expr::Ident(i) => {
                        self.site(CalleeRef::Name(i.sym.clone()), CallKind::Direct);
                    }
                    other => other.visit_with(self),
                }
                t.tpl.visit_with(self);
            }
            Expr::Lit(Lit::Regex(_)) => self.work_as(OpClass::RegexLiteral, REGEX_LITERAL_UNITS),
            Expr::Ident(_)
            | Expr::Lit(_)
            | Expr::This(_)
            | Expr::MetaProp(_)
            | Expr::Invalid(_) => {}
            Expr::Paren(_) | Expr::Seq(_) => e.visit_children_with(self),
            _ => {
                self.work(1.0);
                e.visit_children_with(self);
            }
        }
        self.leave();
    }

    fn visit_fn_expr(&mut self, f: &FnExpr) {
        let name = f.ident.as_ref().map(|i| i.sym.to_string());
        self.function(
            BodyKind::Function,
            name,
            f.ident.as_ref().map(|i| &i.sym),
            &f.function,
        );
    }

    fn visit_fn_decl(&mut self, f: &FnDecl) {
        let id = self.function(
            BodyKind::Function,
            Some(f.ident.sym.to_string()),
            None,
            &f.function,
        );
        self.bind(f.ident.sym.clone(), Binding::Function(id));
    }

    fn visit_class_decl(&mut self, c: &ClassDecl) {
        let id = self.class(Some(c.ident.sym.to_string()), &c.class);
        self.bind(c.ident.sym.clone(), Binding::Class(id));
    }

    // Reached only through syntax the walk does not handle itself (e.g. `export default`).
    fn visit_function(&mut self, f: &Function) {
        self.function(BodyKind::Function, None, None, f);
    }

    fn visit_arrow_expr(&mut self, a: &ArrowExpr) {
        self.arrow(None, a);
    }

    fn visit_class(&mut self, c: &Class) {
        self.class(None, c);
    }

    fn visit_var_decl(&mut self, d: &VarDecl) {
        for decl in &d.decls {
            self.var_declarator(d.kind, &decl.name, decl.init.as_deref());
        }
    }

    fn visit_import_decl(&mut self, d: &ImportDecl) {
        for s in &d.specifiers {
            let local = match s {
                ImportSpecifier::Named(n) => &n.local,
                ImportSpecifier::Default(d) => &d.local,
                ImportSpecifier::Namespace(n) => &n.local,
            };
            self.bind(local.sym.clone(), Binding::Other);
        }
    }
}
