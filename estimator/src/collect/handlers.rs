//! Event handler and timer registrations (`addEventListener`, `on*` stores, jQuery `.on`,
//! `setTimeout` and friends), and how a handler's target reads in a path: a CSS selector when
//! the syntax gives one.

use swc_common::Spanned;
use swc_ecma_ast::{Callee, Expr, ExprOrSpread, MemberExpr};
use swc_ecma_visit::VisitWith;

use super::Collector;
use super::syntax::{
    document_element, element_selector, handler_event, is_function_value, member_prop, str_lit,
    unparen,
};
use crate::ir::{Atom, Binding, CalleeRef, RegKind, Registration};

impl Collector<'_, '_> {
    /// Source text of a node, whitespace collapsed and shortened, for path names.
    pub(super) fn snippet(&self, e: &Expr) -> String {
        let span = e.span();
        let lo = (span.lo.0 as usize).saturating_sub(1);
        let hi = (span.hi.0 as usize).saturating_sub(1);
        let text = self.src.get(lo..hi).unwrap_or("?");
        let collapsed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if collapsed.chars().count() > 48 {
            let mut s: String = collapsed.chars().take(45).collect();
            s.push_str("...");
            s
        } else {
            collapsed
        }
    }

    /// How a handler's target reads in a path: a CSS selector when the syntax gives one
    /// (`#go` for `getElementById('go')`, the selector of `querySelector`/`$`, `body` for
    /// `document.body`), `document` or `window` for the page itself (where delegated handlers
    /// are registered), else the expression as written.
    pub(super) fn describe_target(&self, e: &Expr) -> String {
        if let Some(sel) = element_selector(e) {
            return sel;
        }
        match unparen(e) {
            Expr::Ident(i) => match self.out.lookup(self.scope, &i.sym) {
                Some(Binding::Element(sel)) => sel.clone(),
                _ => i.sym.to_string(),
            },
            Expr::This(_) => "this".to_string(),
            // `document.body` and friends: the element has a tag-name selector.
            Expr::Member(m) if matches!(unparen(&m.obj), Expr::Ident(d) if d.sym == "document") => {
                match member_prop(m).as_deref().and_then(document_element) {
                    Some(tag) => tag.to_string(),
                    None => self.snippet(e),
                }
            }
            // `$(this)`, `$(document)`, `jQuery(el)`: the wrapped object.
            Expr::Call(c)
                if c.args.len() == 1
                    && matches!(&c.callee, Callee::Expr(f)
                        if matches!(unparen(f), Expr::Ident(i) if matches!(i.sym.as_str(), "$" | "jQuery")))
                    && matches!(
                        unparen(&c.args[0].expr),
                        Expr::Ident(_) | Expr::This(_) | Expr::Member(_)
                    ) =>
            {
                self.describe_target(&c.args[0].expr)
            }
            other => self.snippet(other),
        }
    }

    pub(super) fn register(&mut self, kind: RegKind, callback: Option<CalleeRef>) {
        self.out.registrations.push(Registration {
            body: Some(self.body),
            scope: self.scope,
            kind,
            callback,
        });
    }

    /// `target.addEventListener(event, callback, options)`.
    pub(super) fn add_event_listener(&mut self, target: String, args: &[ExprOrSpread]) {
        let event = match args.first() {
            Some(a) => match str_lit(&a.expr) {
                Some(s) => s,
                None => {
                    a.expr.visit_with(self);
                    "?".to_string()
                }
            },
            None => "?".to_string(),
        };
        let callback = match args.get(1) {
            Some(a) => {
                let r = self.callback_ref(&a.expr);
                if r.is_none() {
                    a.expr.visit_with(self);
                }
                r
            }
            None => None,
        };
        for a in args.iter().skip(2) {
            a.expr.visit_with(self);
        }
        self.register(RegKind::Event { event, target }, callback);
    }

    /// `setTimeout(f, ms)` and the other timer APIs: a registration of `f`.
    pub(super) fn timer(&mut self, api: &'static str, args: &[ExprOrSpread]) {
        let callback = match args.first() {
            Some(a) => {
                let r = self.callback_ref(&a.expr);
                if r.is_none() {
                    a.expr.visit_with(self);
                }
                r
            }
            None => None,
        };
        // `setTimeout(f, ms)` and `setInterval(f, ms)`; the other timer APIs take options.
        let delay = match (api, args.get(1)) {
            ("setTimeout" | "setInterval", Some(d)) if d.spread.is_none() => {
                self.num_expr(&d.expr, 0)
            }
            _ => None,
        };
        for a in args.iter().skip(1) {
            a.expr.visit_with(self);
        }
        self.register(RegKind::Timer { api, delay }, callback);
    }

    /// A bare `onmessage = ...` / `onload = ...` (not a declared variable) sets the global
    /// object's handler. Returns whether it was one.
    pub(super) fn global_handler_store(&mut self, name: &Atom, value: &Expr) -> bool {
        let declared = self.out.lookup(self.scope, name).is_some();
        if let Some(event) = handler_event(name).filter(|_| !declared)
            && let Some(cb) = self.callback_ref(value)
        {
            let target = self.global_name().to_string();
            self.register(
                RegKind::Event {
                    event: event.to_string(),
                    target,
                },
                Some(cb),
            );
            return true;
        }
        false
    }

    /// `target.onclick = fn`. Returns whether it was a handler store.
    pub(super) fn handler_store(&mut self, m: &MemberExpr, prop: &Atom, value: &Expr) -> bool {
        if let Some(event) = handler_event(prop)
            && let Some(cb) = self.callback_ref(value)
        {
            let target = self.describe_target(&m.obj);
            self.register(
                RegKind::Event {
                    event: event.to_string(),
                    target,
                },
                Some(cb),
            );
            m.obj.visit_with(self);
            return true;
        }
        false
    }

    /// jQuery-style `$(sel).on('click', fn)` (see [`is_jquery_on`]).
    pub(super) fn jquery_on(&mut self, m: &MemberExpr, args: &[ExprOrSpread]) {
        let target = self.describe_target(&m.obj);
        m.obj.visit_with(self);
        let event = args
            .first()
            .and_then(|a| str_lit(&a.expr))
            .unwrap_or_default();
        let mut callback = None;
        for a in args.iter().skip(1) {
            if callback.is_none() && is_function_value(&a.expr) {
                callback = self.callback_ref(&a.expr);
            } else {
                a.expr.visit_with(self);
            }
        }
        self.register(RegKind::Event { event, target }, callback);
    }
}

/// Whether `.on(...)`/`.one(...)` arguments look like jQuery's: a literal event name and a
/// function. (`emitter.on(name, fn)` with a variable name is left as a call.)
pub(super) fn is_jquery_on(args: &[ExprOrSpread]) -> bool {
    args.first().and_then(|a| str_lit(&a.expr)).is_some()
        && args.iter().skip(1).any(|a| is_function_value(&a.expr))
}
