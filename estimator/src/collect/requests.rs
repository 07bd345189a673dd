//! Network requests (`fetch`, XHR, dynamic `import()`, WebSocket, `importScripts`) and worker
//! creation (`new Worker(url)`), with their URLs when the syntax gives them.

use swc_ecma_ast::{Expr, ExprOrSpread, MemberExpr, MetaPropKind};
use swc_ecma_visit::VisitWith;

use super::Collector;
use super::syntax::{str_lit, unparen};
use crate::builtins;
use crate::ir::{Item, NetRequest, Spawn, WorkerUrl};

impl Collector<'_, '_> {
    pub(super) fn net(&mut self, api: &'static str, url: Option<String>) {
        self.out.nets.push(NetRequest {
            body: self.body,
            api,
            url,
        });
        let id = self.out.nets.len() - 1;
        self.item(Item::Net(id));
        self.item(Item::Builtin(&builtins::NETWORK_CALL));
    }

    /// `fetch(url, ...)` or `window.fetch(...)`.
    pub(super) fn fetch(&mut self, args: &[ExprOrSpread]) {
        let url = args.first().and_then(|a| str_lit(&a.expr));
        self.net("fetch", url);
        for a in args {
            a.expr.visit_with(self);
        }
    }

    /// `importScripts(a, b, ...)` in a worker: one request per argument.
    pub(super) fn import_scripts(&mut self, args: &[ExprOrSpread]) {
        for a in args {
            self.net("importScripts", str_lit(&a.expr));
            a.expr.visit_with(self);
        }
    }

    /// `xhr.open('GET', url)` (see [`is_xhr_open`]).
    pub(super) fn xhr_open(&mut self, m: &MemberExpr, args: &[ExprOrSpread]) {
        m.obj.visit_with(self);
        let url = args.get(1).and_then(|a| str_lit(&a.expr));
        self.net("XMLHttpRequest", url);
        for a in args {
            a.expr.visit_with(self);
        }
    }

    /// `new WebSocket(url)` or `new EventSource(url)`.
    pub(super) fn socket(&mut self, api: &'static str, args: &[ExprOrSpread]) {
        let url = args.first().and_then(|a| str_lit(&a.expr));
        self.net(api, url);
        for a in args {
            a.expr.visit_with(self);
        }
    }

    /// `new Worker(url)` or `new SharedWorker(url)`.
    pub(super) fn spawn(&mut self, shared: bool, args: &[ExprOrSpread]) {
        let url = args
            .first()
            .map_or(WorkerUrl::Unknown, |a| worker_url(&a.expr));
        self.out.spawns.push(Spawn {
            body: self.body,
            shared,
            url,
        });
        for a in args {
            a.expr.visit_with(self);
        }
    }
}

/// The URL argument of `new Worker(...)`.
pub(super) fn worker_url(e: &Expr) -> WorkerUrl {
    if let Some(s) = str_lit(e) {
        return WorkerUrl::Literal(s);
    }
    // `new URL('w.js', import.meta.url)` (what bundlers emit), or against the document.
    if let Expr::New(n) = unparen(e)
        && matches!(unparen(&n.callee), Expr::Ident(i) if i.sym == "URL")
    {
        let args = n.args.as_deref().unwrap_or(&[]);
        let rel = args.first().and_then(|a| str_lit(&a.expr));
        let base = args.get(1).map(|a| unparen(&a.expr));
        return match (rel, base) {
            (Some(rel), Some(Expr::Member(m))) if matches!(unparen(&m.obj), Expr::MetaProp(mp) if mp.kind == MetaPropKind::ImportMeta) => {
                WorkerUrl::ScriptRelative(rel)
            }
            (Some(rel), _) => WorkerUrl::Literal(rel),
            (None, _) => WorkerUrl::Unknown,
        };
    }
    WorkerUrl::Unknown
}

/// Whether `.open(...)` arguments are XHR's: an HTTP method word, then a URL (`window.open(url)`
/// has no method argument).
pub(super) fn is_xhr_open(args: &[ExprOrSpread]) -> bool {
    args.len() >= 2
        && args
            .first()
            .and_then(|a| str_lit(&a.expr))
            .is_some_and(|method| {
                method.chars().all(|c| c.is_ascii_alphabetic()) && !method.is_empty()
            })
}
