//! Expressions that are neither calls nor functions: assignments (including method and HTML
//! sink stores), operator and member chains (walked in loops, not recursion), object literals
//! and array allocations.

use swc_ecma_ast::{
    AssignExpr, AssignOp, AssignTarget, BinExpr, BinaryOp, Expr, ExprOrSpread, MemberExpr,
    MemberProp, ObjectLit, Prop, PropOrSpread, SimpleAssignTarget,
};
use swc_ecma_visit::VisitWith;

use super::syntax::{is_function_value, member_prop, prop_name, receiver_name, stringish, unparen};
use super::{Collector, DIVISION_UNITS, ELEMENT_BYTES, OBJECT_BYTES, POWER_UNITS, PROPERTY_BYTES};
use crate::builtins;
use crate::ir::{Atom, Binding, BodyKind, Item, NumExpr};
use crate::weights::Class;

impl Collector<'_, '_> {
    /// `new Float64Array(n)`, `new Array(n)`, `Array(n)`: an allocation of known or unknown size.
    pub(super) fn array_alloc(&mut self, ctor: &str, args: &[ExprOrSpread]) {
        let elem_bytes = builtins::array_element_bytes(ctor).unwrap_or(ELEMENT_BYTES);
        let count = match args {
            [] => self.out.num(NumExpr::Lit(0.0)),
            [one] => match unparen(&one.expr) {
                Expr::Array(a) => self.out.num(NumExpr::Lit(a.elems.len() as f64)),
                e => self.num_or_unknown(e),
            },
            // `new Array(a, b, c)` lists its elements.
            many => self.out.num(NumExpr::Lit(many.len() as f64)),
        };
        self.item(Item::Alloc { count, elem_bytes });
        for a in args {
            a.expr.visit_with(self);
        }
    }

    pub(super) fn assign(&mut self, a: &AssignExpr) {
        self.work(1.0);
        if a.op == AssignOp::Assign {
            match &a.left {
                AssignTarget::Simple(SimpleAssignTarget::Member(m)) => {
                    if let Some(prop) = member_prop(m)
                        && self.member_store(m, &prop, &a.right)
                    {
                        return;
                    }
                }
                AssignTarget::Simple(SimpleAssignTarget::Ident(i)) => {
                    let name = &i.id.sym;
                    if self.global_handler_store(name, &a.right) {
                        return;
                    }
                    if is_function_value(&a.right) {
                        if let Some(id) = self.function_value(&a.right, Some(name.to_string())) {
                            self.out
                                .assigned_functions
                                .push((self.scope, name.clone(), id));
                        }
                        return;
                    }
                }
                _ => {}
            }
        }
        // `html += '<li>...'` grows `html` by one piece per trip of the enclosing loops.
        if a.op == AssignOp::AddAssign
            && let AssignTarget::Simple(SimpleAssignTarget::Ident(i)) = &a.left
        {
            self.grow(i.id.sym.clone());
        }
        match a.op {
            AssignOp::DivAssign | AssignOp::ModAssign => {
                self.work_as(Class::Division, DIVISION_UNITS - 1.0)
            }
            AssignOp::ExpAssign => self.work_as(Class::Power, POWER_UNITS - 1.0),
            _ => {}
        }
        if a.op == AssignOp::AddAssign && self.loop_depth > 0 && stringish(&a.right) {
            self.item(Item::Builtin(&builtins::STRING_CONCAT));
        }
        a.left.visit_with(self);
        a.right.visit_with(self);
    }

    /// `target.prop = value`: handler registrations, HTML sinks and method definitions.
    /// Returns whether it handled the whole assignment.
    pub(super) fn member_store(&mut self, m: &MemberExpr, prop: &Atom, value: &Expr) -> bool {
        if self.handler_store(m, prop, value) {
            return true;
        }
        if builtins::html_sink(prop) {
            match markup_name(value, 0) {
                // `el.innerHTML = html` (or `'<ul>' + html + '</ul>'`): as costly as the
                // markup `html` holds is long.
                Some(name) => self.item(Item::Sized {
                    builtin: &builtins::HTML_PARSE,
                    scope: self.scope,
                    name,
                }),
                None => self.item(Item::Builtin(&builtins::HTML_PARSE)),
            }
        }
        if is_function_value(value) {
            if let Some(id) = self.function_value(value, Some(prop.to_string())) {
                self.add_method(prop.clone(), id);
                if receiver_name(&m.obj)
                    .as_deref()
                    .is_some_and(builtins::is_global_alias)
                {
                    self.out
                        .bind(self.realm, prop.clone(), Binding::Function(id));
                }
            }
            m.obj.visit_with(self);
            return true;
        }
        false
    }

    /// Follows a left-deep operator chain (`a + b + c + ...`) in a loop: swc builds it
    /// iteratively, so its depth is not bounded by the bracket prescan.
    pub(super) fn bin(&mut self, b: &BinExpr) {
        let mut cur = b;
        loop {
            let (class, units) = operator_units(cur.op);
            self.work_as(class, units);
            if cur.op == BinaryOp::Add
                && self.loop_depth > 0
                && (stringish(&cur.left) || stringish(&cur.right))
            {
                self.item(Item::Builtin(&builtins::STRING_CONCAT));
            }
            match cur.op {
                BinaryOp::LogicalAnd | BinaryOp::LogicalOr | BinaryOp::NullishCoalescing => {
                    let arm = self.nested(|c| cur.right.visit_with(c));
                    self.maybe(arm);
                }
                _ => cur.right.visit_with(self),
            }
            match &*cur.left {
                Expr::Bin(left) => cur = left,
                other => {
                    other.visit_with(self);
                    break;
                }
            }
        }
    }

    /// Follows a member chain (`a.b.c.d`) in a loop, like [`Collector::bin`].
    pub(super) fn member(&mut self, m: &MemberExpr) {
        let mut cur = m;
        loop {
            self.work(1.0);
            match &cur.prop {
                MemberProp::Ident(p) if builtins::layout_property(&p.sym) => {
                    self.item(Item::Builtin(&builtins::LAYOUT));
                }
                MemberProp::Computed(c) => c.expr.visit_with(self),
                _ => {}
            }
            match &*cur.obj {
                Expr::Member(inner) => cur = inner,
                other => {
                    other.visit_with(self);
                    break;
                }
            }
        }
    }

    pub(super) fn object(&mut self, o: &ObjectLit) {
        let n = o.props.len() as f64;
        self.work(1.0 + n);
        self.alloc(OBJECT_BYTES + PROPERTY_BYTES * n);
        for p in &o.props {
            let PropOrSpread::Prop(p) = p else {
                p.visit_with(self);
                continue;
            };
            match &**p {
                Prop::Method(swc_ecma_ast::MethodProp { key, function })
                | Prop::Getter(swc_ecma_ast::GetterProp { key, function, .. })
                | Prop::Setter(swc_ecma_ast::SetterProp { key, function, .. }) => {
                    key.visit_with(self);
                    let name = prop_name(key);
                    let id = self.function(
                        BodyKind::Method,
                        name.as_ref().map(|k| k.to_string()),
                        None,
                        function,
                    );
                    if let Some(k) = name {
                        self.add_method(k, id);
                    }
                }
                Prop::KeyValue(kv) if is_function_value(&kv.value) => {
                    kv.key.visit_with(self);
                    let key = prop_name(&kv.key);
                    if let Some(id) =
                        self.function_value(&kv.value, key.as_ref().map(|k| k.to_string()))
                        && let Some(k) = key
                    {
                        self.add_method(k, id);
                    }
                }
                other => other.visit_with(self),
            }
        }
    }
}

/// The variable that holds the bulk of a markup expression: the value itself, or the first
/// variable in a `+` chain or template literal around it (`'<ul>' + rows + '</ul>'`).
fn markup_name(e: &Expr, depth: u32) -> Option<Atom> {
    if depth > 16 {
        return None;
    }
    match unparen(e) {
        Expr::Ident(i) => Some(i.sym.clone()),
        Expr::Bin(b) if b.op == BinaryOp::Add => {
            markup_name(&b.left, depth + 1).or_else(|| markup_name(&b.right, depth + 1))
        }
        Expr::Tpl(t) => t.exprs.iter().find_map(|x| markup_name(x, depth + 1)),
        _ => None,
    }
}

/// Work units of one binary operator.
fn operator_units(op: BinaryOp) -> (Class, f64) {
    match op {
        BinaryOp::Div | BinaryOp::Mod => (Class::Division, DIVISION_UNITS),
        BinaryOp::Exp => (Class::Power, POWER_UNITS),
        _ => (Class::Op, 1.0),
    }
}
