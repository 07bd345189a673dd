//! Call sites: plain, member and `new` calls, with the patterns that are not ordinary calls
//! (registrations, requests, workers, allocations) routed to their own collectors, and
//! function arguments recorded as callbacks.

use swc_ecma_ast::{Callee, Expr, ExprOrSpread, MemberExpr, MemberProp};
use swc_ecma_visit::VisitWith;

use super::handlers::is_jquery_on;
use super::requests::is_xhr_open;
use super::syntax::{is_function_value, member_prop, receiver_name, unparen};
use super::{CALL_UNITS, Collector, OBJECT_BYTES};
use crate::builtins;
use crate::ir::{Atom, CallKind, CallSite, CalleeRef, Growth, Item, SiteId, SizeRefs};

/// Leading arguments of a call kept as numeric expressions.
const MAX_NUMERIC_ARGS: usize = 4;
/// How deep into an argument, and how many identifiers, a call's size is looked for.
const MAX_NESTED_DEPTH: u32 = 3;
const MAX_NESTED_NAMES: usize = 4;

/// The identifiers `e` hands over inside calls, `new`, object and array literals, up to
/// [`MAX_NESTED_NAMES`], not looking through functions or into operators.
fn nested_names(e: &Expr, depth: u32, out: &mut Vec<Atom>) {
    if depth > MAX_NESTED_DEPTH || out.len() >= MAX_NESTED_NAMES {
        return;
    }
    let args: &[ExprOrSpread] = match unparen(e) {
        Expr::Ident(i) => {
            if depth > 0 {
                out.push(i.sym.clone());
            }
            return;
        }
        Expr::Call(c) => &c.args,
        Expr::New(n) => n.args.as_deref().unwrap_or(&[]),
        Expr::Array(a) => {
            for el in a.elems.iter().flatten() {
                nested_names(&el.expr, depth + 1, out);
            }
            return;
        }
        Expr::Object(o) => {
            for p in &o.props {
                if let swc_ecma_ast::PropOrSpread::Prop(p) = p
                    && let swc_ecma_ast::Prop::KeyValue(kv) = &**p
                {
                    nested_names(&kv.value, depth + 1, out);
                }
            }
            return;
        }
        _ => return,
    };
    for a in args {
        nested_names(&a.expr, depth + 1, out);
    }
}
use crate::weights::Class;

impl Collector<'_, '_> {
    pub(super) fn site(&mut self, callee: CalleeRef, kind: CallKind) -> SiteId {
        self.site_in(callee, kind, None)
    }

    pub(super) fn site_in(
        &mut self,
        callee: CalleeRef,
        kind: CallKind,
        host: Option<(SiteId, usize)>,
    ) -> SiteId {
        // A call of one of the body's own parameters (`cb()`): remembered so resolution knows
        // which callbacks passed to this body really run.
        if let (CallKind::Direct, CalleeRef::Name(n)) = (kind, &callee)
            && let Some(i) = self.params.iter().position(|p| p.as_ref() == Some(n))
            && let Some(b) = self.out.bodies.get_mut(self.body)
            && let Err(at) = b.param_calls.binary_search(&i)
        {
            b.param_calls.insert(at, i);
        }
        self.out.sites.push(CallSite {
            body: self.body,
            scope: self.scope,
            callee,
            kind,
            host,
            sizes: SizeRefs::default(),
            args: Vec::new(),
        });
        let id = self.out.sites.len() - 1;
        self.item(Item::Call(id));
        id
    }

    /// Records what call site `site`'s cost may scale with: its receiver and its first
    /// argument, when they are plain identifiers; otherwise the identifiers its arguments
    /// hand over inside calls, `new`, object and array literals (a React element made of
    /// `items` is as big as `items`; a chart configured with `labels: nums` draws `nums`).
    pub(super) fn sized_by(&mut self, site: SiteId, receiver: Option<Atom>, args: &[ExprOrSpread]) {
        let arg = args.first().and_then(|a| match unparen(&a.expr) {
            Expr::Ident(i) if a.spread.is_none() => Some(i.sym.clone()),
            _ => None,
        });
        let mut nested = Vec::new();
        if receiver.is_none() && arg.is_none() {
            for a in args {
                nested_names(&a.expr, 0, &mut nested);
            }
        }
        if let Some(s) = self.out.sites.get_mut(site) {
            s.sizes = SizeRefs {
                receiver,
                arg,
                nested,
            };
        }
    }

    /// Records the leading arguments of call site `site` as numeric expressions: recursion
    /// depth comes from them (`fib(27)`, `fib(n - 1)`), and a name among them (`render(items)`)
    /// is what the callee's loops over that parameter run over.
    pub(super) fn numeric_args(&mut self, site: SiteId, args: &[ExprOrSpread]) {
        // On the stack first: most calls have no numeric argument and need no `Vec`.
        let mut nums = [None; MAX_NUMERIC_ARGS];
        for (slot, a) in nums.iter_mut().zip(args) {
            *slot = match (a.spread.is_none(), unparen(&a.expr)) {
                (true, Expr::Lit(_) | Expr::Ident(_) | Expr::Bin(_) | Expr::Unary(_)) => {
                    self.num_expr(&a.expr, 0)
                }
                (true, Expr::Call(_)) => self.num_expr(&a.expr, 0),
                _ => None,
            };
        }
        let n = args.len().min(MAX_NUMERIC_ARGS);
        if nums.iter().any(Option::is_some)
            && let Some(s) = self.out.sites.get_mut(site)
        {
            s.args = nums.get(..n).unwrap_or(&[]).to_vec();
        }
    }

    /// `name` gains one item per trip of the loops around this point.
    pub(super) fn grow(&mut self, name: Atom) {
        self.out.growths.push(Growth {
            scope: self.scope,
            name,
            loops: self.loop_ids.clone(),
        });
    }

    /// What a function-valued argument refers to; inline functions become bodies here. `None`
    /// when the expression is not visibly a function (the caller then visits it as code).
    pub(super) fn callback_ref(&mut self, e: &Expr) -> Option<CalleeRef> {
        match unparen(e) {
            Expr::Fn(_) | Expr::Arrow(_) => self.function_value(e, None).map(CalleeRef::Body),
            Expr::Ident(i) => Some(CalleeRef::Name(i.sym.clone())),
            Expr::Member(m) => member_prop(m).map(|prop| CalleeRef::Member {
                receiver: receiver_name(&m.obj),
                prop,
            }),
            // `this.onClick.bind(this)`
            Expr::Call(c) => match &c.callee {
                Callee::Expr(callee) => match unparen(callee) {
                    Expr::Member(m) if member_prop(m).as_deref() == Some("bind") => {
                        self.callback_ref(&m.obj)
                    }
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        }
    }

    /// Visits the arguments of call site `host`. Inline functions among them become callback
    /// sites, which resolution counts as called once when the callee is not page code, or is
    /// page code that calls that parameter.
    pub(super) fn args(&mut self, args: &[ExprOrSpread], host: Option<SiteId>) {
        for (i, a) in args.iter().enumerate() {
            if a.spread.is_none() && is_function_value(&a.expr) {
                if let Some(id) = self.function_value(&a.expr, None) {
                    self.site_in(
                        CalleeRef::Body(id),
                        CallKind::Callback,
                        host.map(|h| (h, i)),
                    );
                }
            } else {
                a.expr.visit_with(self);
            }
        }
    }

    pub(super) fn call(&mut self, callee: &Expr, args: &[ExprOrSpread]) {
        self.work_as(Class::Call, CALL_UNITS);
        match unparen(callee) {
            Expr::Fn(_) | Expr::Arrow(_) => {
                let host = self
                    .function_value(callee, None)
                    .map(|id| self.site(CalleeRef::Body(id), CallKind::Direct));
                self.args(args, host);
            }
            Expr::Ident(i) => self.call_name(&i.sym, args),
            Expr::Member(m) => self.call_member(m, args),
            Expr::SuperProp(sp) => {
                let host = match &sp.prop {
                    swc_ecma_ast::SuperProp::Ident(p) => self.site(
                        CalleeRef::Member {
                            receiver: None,
                            prop: p.sym.clone(),
                        },
                        CallKind::Direct,
                    ),
                    swc_ecma_ast::SuperProp::Computed(c) => {
                        c.expr.visit_with(self);
                        self.site(CalleeRef::Dynamic, CallKind::Direct)
                    }
                };
                self.args(args, Some(host));
            }
            other => {
                other.visit_with(self);
                let host = self.site(CalleeRef::Dynamic, CallKind::Direct);
                self.args(args, Some(host));
            }
        }
    }

    pub(super) fn call_name(&mut self, name: &Atom, args: &[ExprOrSpread]) {
        if let Some(api) = builtins::timer(name) {
            return self.timer(api, args);
        }
        match name.as_str() {
            "fetch" => return self.fetch(args),
            "importScripts" => return self.import_scripts(args),
            "addEventListener" => {
                let target = self.global_name().to_string();
                return self.add_event_listener(target, args);
            }
            "Array" => return self.array_alloc("Array", args),
            _ => {}
        }
        let host = self.site(CalleeRef::Name(name.clone()), CallKind::Direct);
        self.sized_by(host, None, args);
        self.numeric_args(host, args);
        self.args(args, Some(host));
    }

    pub(super) fn call_member(&mut self, m: &MemberExpr, args: &[ExprOrSpread]) {
        let prop = member_prop(m);
        let receiver = receiver_name(&m.obj);
        let global_receiver = receiver.as_deref().is_some_and(builtins::is_global_alias);
        // `(function () {}).call(this)` is an IIFE.
        if matches!(prop.as_deref(), Some("call" | "apply")) && is_function_value(&m.obj) {
            if let Some(id) = self.function_value(&m.obj, None) {
                self.site(CalleeRef::Body(id), CallKind::Direct);
            }
            // Argument positions are shifted by `thisArg`; callbacks count as called once.
            return self.args(args, None);
        }
        let Some(prop) = prop else {
            m.obj.visit_with(self);
            if let MemberProp::Computed(c) = &m.prop {
                c.expr.visit_with(self);
            }
            let host = self.site(CalleeRef::Dynamic, CallKind::Direct);
            return self.args(args, Some(host));
        };
        match prop.as_str() {
            "addEventListener" => {
                let target = self.describe_target(&m.obj);
                m.obj.visit_with(self);
                return self.add_event_listener(target, args);
            }
            "on" | "one" if is_jquery_on(args) => return self.jquery_on(m, args),
            "fetch" if global_receiver => return self.fetch(args),
            "open" if is_xhr_open(args) => return self.xhr_open(m, args),
            // `f.call(x, ...)` calls `f`.
            "call" | "apply" => {
                if let Some(r) = self.callback_ref(&m.obj) {
                    if let Expr::Member(inner) = unparen(&m.obj) {
                        inner.obj.visit_with(self);
                    }
                    self.site(r, CallKind::Direct);
                } else {
                    m.obj.visit_with(self);
                    self.site(CalleeRef::Dynamic, CallKind::Direct);
                }
                // Argument positions are shifted by `thisArg`; callbacks count as called once.
                return self.args(args, None);
            }
            _ => {}
        }
        if global_receiver {
            if let Some(api) = builtins::timer(&prop) {
                return self.timer(api, args);
            }
            if prop.as_str() == "addEventListener" {
                let target = self.global_name().to_string();
                return self.add_event_listener(target, args);
            }
        }
        m.obj.visit_with(self);
        // `rows.push(x)` grows `rows` by one item per trip of the enclosing loops.
        if matches!(prop.as_str(), "push" | "unshift")
            && let Expr::Ident(r) = unparen(&m.obj)
        {
            self.grow(r.sym.clone());
        }
        let receiver_ident = match unparen(&m.obj) {
            Expr::Ident(r) => Some(r.sym.clone()),
            _ => None,
        };
        let callee = if global_receiver {
            CalleeRef::GlobalName(prop.clone())
        } else {
            CalleeRef::Member {
                receiver,
                prop: prop.clone(),
            }
        };
        let host = self.site(callee, CallKind::Direct);
        self.sized_by(host, receiver_ident.clone(), args);
        if builtins::iteration_method(&prop) {
            self.iteration(receiver_ident, args);
        } else {
            // A method of page code may loop over what it is handed, like a function.
            self.numeric_args(host, args);
            self.args(args, Some(host));
        }
    }

    pub(super) fn new_expr(&mut self, callee: &Expr, args: &[ExprOrSpread]) {
        self.work_as(Class::Call, CALL_UNITS);
        self.alloc(OBJECT_BYTES);
        match unparen(callee) {
            Expr::Ident(i) => {
                let name = i.sym.as_str();
                match name {
                    "Worker" | "SharedWorker" => self.spawn(name == "SharedWorker", args),
                    "WebSocket" => self.socket("WebSocket", args),
                    "EventSource" => self.socket("EventSource", args),
                    _ if builtins::array_element_bytes(name).is_some() => {
                        self.array_alloc(name, args)
                    }
                    _ => {
                        let host = self.site(CalleeRef::Name(i.sym.clone()), CallKind::Direct);
                        self.sized_by(host, None, args);
                        self.args(args, Some(host));
                    }
                }
            }
            Expr::Member(m) => {
                m.obj.visit_with(self);
                let host = match member_prop(m) {
                    Some(prop) => self.site(
                        CalleeRef::Member {
                            receiver: receiver_name(&m.obj),
                            prop,
                        },
                        CallKind::Direct,
                    ),
                    None => self.site(CalleeRef::Dynamic, CallKind::Direct),
                };
                self.sized_by(host, None, args);
                self.args(args, Some(host));
            }
            Expr::Class(_) | Expr::Fn(_) => {
                callee.visit_with(self);
                self.args(args, None);
            }
            other => {
                other.visit_with(self);
                let host = self.site(CalleeRef::Dynamic, CallKind::Direct);
                self.args(args, Some(host));
            }
        }
    }
}
