//! Functions, arrows, methods and classes (each a body with its own scope), declarations and
//! the bindings they make: what later lets `resolve.rs` find the body a name calls.

use swc_ecma_ast::{
    ArrowExpr, ArrowFunctionBody, Class, ClassMember, Expr, ForHead, Function, ObjectPatProp,
    ParamOrTsParamProp, Pat, VarDeclKind,
};
use swc_ecma_visit::VisitWith;

use super::syntax::{element_selector, is_function_value, param_name, prop_name, unparen};
use super::{CLOSURE_BYTES, CLOSURE_UNITS, Collector, push_body};
use crate::ir::{Atom, Binding, BodyId, BodyKind};
use crate::weights::Class as OpClass;

impl Collector<'_, '_> {
    /// Creates a body (with its own scope) and collects `f` into it. The creation cost goes
    /// to the enclosing code.
    pub(super) fn enter_function(
        &mut self,
        kind: BodyKind,
        name: Option<String>,
        own_name: Option<&Atom>,
        f: impl FnOnce(&mut Self),
    ) -> BodyId {
        self.work_as(OpClass::Closure, CLOSURE_UNITS);
        self.alloc(CLOSURE_BYTES);
        let scope = self.out.new_scope(Some(self.scope));
        let id = push_body(
            self.out,
            kind,
            name,
            self.script,
            scope,
            Some(self.body),
            self.realm,
        );
        if let Some(own) = own_name {
            self.out.bind(scope, own.clone(), Binding::Function(id));
        }
        let saved_body = std::mem::replace(&mut self.body, id);
        let saved_scope = std::mem::replace(&mut self.scope, scope);
        let saved_loops = std::mem::replace(&mut self.loop_depth, 0);
        let saved_loop_ids = std::mem::take(&mut self.loop_ids);
        let saved_params = std::mem::take(&mut self.params);
        let saved_top = std::mem::replace(&mut self.top_level, false);
        let block = self.nested(f);
        self.top_level = saved_top;
        self.body = saved_body;
        self.scope = saved_scope;
        self.loop_depth = saved_loops;
        self.loop_ids = saved_loop_ids;
        let params = std::mem::replace(&mut self.params, saved_params);
        if let Some(b) = self.out.bodies.get_mut(id) {
            b.block = block;
            b.params = params;
        }
        id
    }

    pub(super) fn function(
        &mut self,
        kind: BodyKind,
        name: Option<String>,
        own: Option<&Atom>,
        f: &Function,
    ) -> BodyId {
        self.enter_function(kind, name, own, |c| {
            c.params = f.params.iter().map(|p| param_name(&p.pat)).collect();
            for p in &f.params {
                c.bind_pat(&p.pat, 0);
                p.pat.visit_with(c);
            }
            if let Some(body) = &f.body {
                body.visit_with(c);
            }
        })
    }

    pub(super) fn arrow(&mut self, name: Option<String>, a: &ArrowExpr) -> BodyId {
        self.enter_function(BodyKind::Arrow, name, None, |c| {
            c.params = a.params.iter().map(param_name).collect();
            for p in &a.params {
                c.bind_pat(p, 0);
                p.visit_with(c);
            }
            match &*a.body {
                ArrowFunctionBody::FunctionBody(b) => b.visit_with(c),
                ArrowFunctionBody::Expr(e) => e.visit_with(c),
            }
        })
    }

    /// A function or arrow expression (through parentheses), as a body named `name`.
    pub(super) fn function_value(&mut self, e: &Expr, name: Option<String>) -> Option<BodyId> {
        match unparen(e) {
            Expr::Fn(f) => {
                let name = name.or_else(|| f.ident.as_ref().map(|i| i.sym.to_string()));
                Some(self.function(
                    BodyKind::Function,
                    name,
                    f.ident.as_ref().map(|i| &i.sym),
                    &f.function,
                ))
            }
            Expr::Arrow(a) => Some(self.arrow(name, a)),
            _ => None,
        }
    }

    pub(super) fn class(&mut self, name: Option<String>, class: &Class) -> BodyId {
        if let Some(sup) = &class.super_class {
            sup.visit_with(self);
        }
        // Methods are separate bodies, created from the enclosing scope (they do not see the
        // constructor's parameters).
        for member in &class.body {
            match member {
                ClassMember::Method(m) => {
                    let key = prop_name(&m.key);
                    let id = self.function(
                        BodyKind::Method,
                        key.as_ref().map(|k| k.to_string()),
                        None,
                        &m.function,
                    );
                    if let Some(k) = key {
                        self.add_method(k, id);
                    }
                }
                ClassMember::PrivateMethod(m) => {
                    let key = Atom::from(format!("#{}", m.key.name));
                    let id =
                        self.function(BodyKind::Method, Some(key.to_string()), None, &m.function);
                    self.add_method(key, id);
                }
                _ => {}
            }
        }
        self.enter_function(BodyKind::Class, name, None, |c| {
            for member in &class.body {
                match member {
                    ClassMember::Constructor(ctor) => {
                        c.params = ctor
                            .params
                            .iter()
                            .map(|p| match p {
                                ParamOrTsParamProp::Param(p) => param_name(&p.pat),
                                ParamOrTsParamProp::TsParamProp(_) => None,
                            })
                            .collect();
                        for p in &ctor.params {
                            if let ParamOrTsParamProp::Param(p) = p {
                                c.bind_pat(&p.pat, 0);
                                p.pat.visit_with(c);
                            }
                        }
                        if let Some(body) = &ctor.body {
                            body.visit_with(c);
                        }
                    }
                    ClassMember::ClassProp(p) => {
                        let key = prop_name(&p.key);
                        match (p.value.as_deref(), key) {
                            (Some(v), Some(k)) if is_function_value(v) => {
                                if let Some(id) = c.function_value(v, Some(k.to_string())) {
                                    c.add_method(k, id);
                                }
                            }
                            _ => {
                                p.key.visit_with(c);
                                p.value.visit_with(c);
                            }
                        }
                    }
                    ClassMember::PrivateProp(p) => p.value.visit_with(c),
                    ClassMember::StaticBlock(b) => b.body.visit_with(c),
                    ClassMember::AutoAccessor(a) => a.value.visit_with(c),
                    _ => {}
                }
            }
        })
    }

    /// Binds every identifier a pattern declares as a plain (non-function) name.
    pub(super) fn bind_pat(&mut self, pat: &Pat, depth: u32) {
        if depth > 64 {
            return;
        }
        match pat {
            Pat::Ident(i) => self.bind(i.id.sym.clone(), Binding::Other),
            Pat::Array(a) => {
                for p in a.elems.iter().flatten() {
                    self.bind_pat(p, depth + 1);
                }
            }
            Pat::Object(o) => {
                for p in &o.props {
                    match p {
                        ObjectPatProp::KeyValue(kv) => self.bind_pat(&kv.value, depth + 1),
                        ObjectPatProp::Assign(a) => self.bind(a.key.id.sym.clone(), Binding::Other),
                        ObjectPatProp::Rest(r) => self.bind_pat(&r.arg, depth + 1),
                    }
                }
            }
            Pat::Rest(r) => self.bind_pat(&r.arg, depth + 1),
            Pat::Assign(a) => self.bind_pat(&a.left, depth + 1),
            _ => {}
        }
    }

    pub(super) fn var_declarator(&mut self, kind: VarDeclKind, name: &Pat, init: Option<&Expr>) {
        let (Pat::Ident(id), Some(init)) = (name, init) else {
            self.bind_pat(name, 0);
            name.visit_with(self);
            if let Some(init) = init {
                self.work(1.0);
                init.visit_with(self);
            }
            return;
        };
        let sym = id.id.sym.clone();
        match unparen(init) {
            Expr::Fn(_) | Expr::Arrow(_) => {
                if let Some(b) = self.function_value(init, Some(sym.to_string())) {
                    self.bind(sym, Binding::Function(b));
                }
            }
            Expr::Class(c) => {
                let b = self.class(Some(sym.to_string()), &c.class);
                self.bind(sym, Binding::Class(b));
            }
            other => {
                // An element looked up once is almost always kept, even in a `let` or `var`,
                // so those name their element too (for the handler targets of paths).
                let num = if kind == VarDeclKind::Const {
                    self.num_expr(other, 0)
                } else {
                    None
                };
                let binding = match (num, element_selector(other)) {
                    (Some(n), _) => Binding::Const(n),
                    (None, Some(sel)) => Binding::Element(sel),
                    (None, None) => Binding::Other,
                };
                self.bind(sym, binding);
                self.work(1.0);
                other.visit_with(self);
            }
        }
    }
}

pub(super) fn for_head(c: &mut Collector<'_, '_>, head: &ForHead) {
    match head {
        ForHead::VarDecl(d) => {
            for decl in &d.decls {
                c.bind_pat(&decl.name, 0);
            }
        }
        ForHead::Pat(p) => p.visit_with(c),
        ForHead::UsingDecl(u) => u.visit_with(c),
    }
}
