//! The collect pass: one walk over a script's AST that records bodies, scopes, call sites,
//! registrations, workers, network requests and the cost-relevant shape of each body.
//!
//! It decides nothing that needs the whole page: a call records the name it calls (resolved
//! later, since the callee may be declared in a later script), a loop records its bound as a
//! symbolic expression (the `const` it names may come further down). What it does decide is
//! local: how many operations an expression performs, which loop or branch a piece of code
//! sits in, and which syntactic patterns are registrations (`addEventListener`, `on*` stores,
//! timers) rather than calls.
//!
//! The walk is guarded against deep ASTs even though `parse.rs` refuses the worst input:
//! left-deep operator and member chains are followed in loops instead of recursion, `else if`
//! chains become one flat branch, and anything nested deeper than [`MAX_AST_DEPTH`] is skipped
//! with a warning, so the walk's stack use is bounded whatever swc accepted.

use swc_common::Spanned;
use swc_ecma_ast::{
    ArrowExpr, ArrowFunctionBody, AssignExpr, AssignOp, AssignTarget, BinExpr, BinaryOp, Callee,
    Class, ClassDecl, ClassMember, Expr, ExprOrSpread, FnDecl, FnExpr, ForHead, ForStmt, Function,
    IfStmt, ImportDecl, ImportSpecifier, Lit, MemberExpr, MemberProp, MetaPropKind, ObjectLit,
    ObjectPatProp, OptChainBase, ParamOrTsParamProp, Pat, Program, Prop, PropName, PropOrSpread,
    SimpleAssignTarget, Stmt, UnaryOp, UpdateOp, VarDecl, VarDeclKind, VarDeclOrExpr,
};
use swc_ecma_visit::{Visit, VisitWith};

use crate::builtins;
use crate::ir::{
    Atom, Binding, Block, Body, BodyId, BodyKind, CallKind, CallSite, CalleeRef, Collected, Item,
    LoopSpec, NetRequest, NumExpr, NumId, NumOp, RegKind, Registration, ScopeId, SiteId, Spawn,
    WorkerUrl,
};

/// Deepest expression/statement nesting the walk descends into. Past this, code is skipped
/// (and the script gets a warning). The prescan already refuses more than 400 brackets, so
/// this only bites on exotic input; it bounds the walk's stack use at roughly this many times
/// a few hundred bytes.
pub const MAX_AST_DEPTH: u32 = 1_000;

/// Work units per statement (dispatch, the statement's own bookkeeping).
const STMT_UNITS: f64 = 1.0;
/// Work units of a call's own overhead (frame setup and return), beyond its arguments.
const CALL_UNITS: f64 = 2.0;
/// Work units per loop iteration beyond its test and update (the back edge).
const LOOP_UNITS: f64 = 1.0;
/// Creating a closure or class: allocation plus context setup.
const CLOSURE_UNITS: f64 = 2.0;
const CLOSURE_BYTES: f64 = 64.0;
/// A regex literal is compiled lazily on first use; this is that first compile, amortised.
const REGEX_LITERAL_UNITS: f64 = 20.0;
/// V8 object header plus in-object property slots, and an array's header plus elements.
const OBJECT_BYTES: f64 = 48.0;
const PROPERTY_BYTES: f64 = 16.0;
const ARRAY_BYTES: f64 = 32.0;
const ELEMENT_BYTES: f64 = 8.0;
/// A string built inside a loop (template literal or concatenation).
const STRING_BYTES: f64 = 32.0;

/// Where a script's code is collected into.
pub struct Target<'a> {
    /// Index into `PageSources.scripts`, or `None` for an inline handler.
    pub script: Option<usize>,
    pub src: &'a str,
    /// The global scope the code runs in (the page's, or a worker's own).
    pub realm: ScopeId,
    pub kind: BodyKind,
    pub name: Option<String>,
    /// How warnings refer to the script (its URL, or `inline script #n`).
    pub label: &'a str,
    /// Whether the realm is a worker's (bare `onmessage = ...` is then the worker's handler).
    pub worker: bool,
}

/// Collects one parsed program into `out` and returns the body of its top-level code.
pub fn collect(out: &mut Collected, program: &Program, target: Target<'_>) -> BodyId {
    // Classic scripts declare straight into the global scope (shared by every classic script
    // of the page); modules and inline handlers get their own scope inside it.
    let scope = match (program, target.kind) {
        (_, BodyKind::InlineHandler) => {
            let s = out.new_scope(Some(target.realm));
            out.bind(s, Atom::from("event"), Binding::Other);
            s
        }
        (Program::Module(_), _) => out.new_scope(Some(target.realm)),
        (Program::Script(_), _) => target.realm,
    };
    let body = push_body(
        out,
        target.kind,
        target.name.clone(),
        target.script,
        scope,
        None,
        target.realm,
    );
    let mut c = Collector {
        out,
        src: target.src,
        script: target.script,
        realm: target.realm,
        worker: target.worker,
        body,
        scope,
        params: Vec::new(),
        current: Block::default(),
        loop_depth: 0,
        depth: 0,
        truncated: false,
    };
    program.visit_with(&mut c);
    let block = std::mem::take(&mut c.current);
    let truncated = c.truncated;
    if let Some(b) = out.bodies.get_mut(body) {
        b.block = block;
    }
    if truncated {
        out.warnings.push(format!(
            "{}: code nested deeper than {MAX_AST_DEPTH} levels was not analysed; its cost is underestimated",
            target.label
        ));
    }
    body
}

fn push_body(
    out: &mut Collected,
    kind: BodyKind,
    name: Option<String>,
    script: Option<usize>,
    scope: ScopeId,
    parent: Option<BodyId>,
    realm: ScopeId,
) -> BodyId {
    out.bodies.push(Body {
        kind,
        name,
        script,
        scope,
        parent,
        block: Block::default(),
        param_calls: Vec::new(),
    });
    out.realms.push(realm);
    out.bodies.len() - 1
}

struct Collector<'o, 's> {
    out: &'o mut Collected,
    src: &'s str,
    script: Option<usize>,
    realm: ScopeId,
    worker: bool,
    /// The body being collected and its scope.
    body: BodyId,
    scope: ScopeId,
    /// The current body's parameter names by position (`None` for destructuring patterns).
    params: Vec<Option<Atom>>,
    /// The innermost block under construction (loop bodies and branch arms nest).
    current: Block,
    loop_depth: u32,
    depth: u32,
    truncated: bool,
}

fn unparen(e: &Expr) -> &Expr {
    let mut e = e;
    // Parentheses nest as brackets, which the prescan bounds; the loop needs no guard.
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

fn str_lit(e: &Expr) -> Option<String> {
    match unparen(e) {
        Expr::Lit(Lit::Str(s)) => Some(s.value.to_atom_lossy().to_string()),
        Expr::Tpl(t) if t.exprs.is_empty() => t
            .quasis
            .first()
            .and_then(|q| q.cooked.as_ref())
            .map(|c| c.to_atom_lossy().to_string()),
        _ => None,
    }
}

/// A parameter's name, when it is a plain identifier.
fn param_name(p: &Pat) -> Option<Atom> {
    match p {
        Pat::Ident(i) => Some(i.id.sym.clone()),
        Pat::Assign(a) => match &*a.left {
            Pat::Ident(i) => Some(i.id.sym.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Whether an operand of `+` is visibly a string (so the `+` concatenates).
fn stringish(e: &Expr) -> bool {
    matches!(unparen(e), Expr::Lit(Lit::Str(_)) | Expr::Tpl(_))
}

fn prop_name(key: &PropName) -> Option<Atom> {
    match key {
        PropName::Ident(i) => Some(i.sym.clone()),
        PropName::Str(s) => Some(s.value.to_atom_lossy().into_owned()),
        PropName::Num(n) => Some(Atom::from(n.value.to_string())),
        _ => None,
    }
}

fn member_prop(m: &MemberExpr) -> Option<Atom> {
    match &m.prop {
        MemberProp::Ident(i) => Some(i.sym.clone()),
        MemberProp::PrivateName(p) => Some(Atom::from(format!("#{}", p.name))),
        MemberProp::Computed(c) => match unparen(&c.expr) {
            Expr::Lit(Lit::Str(s)) => Some(s.value.to_atom_lossy().into_owned()),
            _ => None,
        },
    }
}

/// The identifier at the root of a receiver (`a` in `a.b.c`), `this`, or nothing.
fn receiver_name(e: &Expr) -> Option<Atom> {
    match unparen(e) {
        Expr::Ident(i) => Some(i.sym.clone()),
        Expr::This(_) => Some(Atom::from("this")),
        _ => None,
    }
}

fn is_function_value(e: &Expr) -> bool {
    matches!(unparen(e), Expr::Fn(_) | Expr::Arrow(_))
}

fn num_op(op: BinaryOp) -> Option<NumOp> {
    Some(match op {
        BinaryOp::Add => NumOp::Add,
        BinaryOp::Sub => NumOp::Sub,
        BinaryOp::Mul => NumOp::Mul,
        BinaryOp::Div => NumOp::Div,
        BinaryOp::Mod => NumOp::Mod,
        BinaryOp::Exp => NumOp::Exp,
        BinaryOp::LShift => NumOp::Shl,
        BinaryOp::RShift => NumOp::Shr,
        BinaryOp::ZeroFillRShift => NumOp::UShr,
        BinaryOp::BitOr => NumOp::BitOr,
        BinaryOp::BitAnd => NumOp::BitAnd,
        BinaryOp::BitXor => NumOp::BitXor,
        _ => return None,
    })
}

/// The selector a DOM lookup with a literal argument uses: `#go` for `getElementById('go')`,
/// the selector itself for `querySelector`, `$` and `jQuery`.
fn element_selector(e: &Expr) -> Option<String> {
    let Expr::Call(call) = unparen(e) else {
        return None;
    };
    let Callee::Expr(callee) = &call.callee else {
        return None;
    };
    let arg = call.args.first().and_then(|a| str_lit(&a.expr))?;
    match unparen(callee) {
        Expr::Member(m) => match member_prop(m)?.as_str() {
            "getElementById" => Some(format!("#{arg}")),
            "querySelector" | "querySelectorAll" => Some(arg),
            _ => None,
        },
        Expr::Ident(i) if matches!(i.sym.as_str(), "$" | "jQuery") => Some(arg),
        _ => None,
    }
}

impl Collector<'_, '_> {
    fn enter(&mut self) -> bool {
        if self.depth >= MAX_AST_DEPTH {
            self.truncated = true;
            return false;
        }
        self.depth += 1;
        true
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn work(&mut self, units: f64) {
        self.current.work += units;
    }

    fn alloc(&mut self, bytes: f64) {
        self.current.alloc += bytes;
    }

    fn item(&mut self, item: Item) {
        self.current.items.push(item);
    }

    /// Runs `f` collecting into a fresh block, and returns that block.
    fn nested(&mut self, f: impl FnOnce(&mut Self)) -> Block {
        let saved = std::mem::take(&mut self.current);
        f(self);
        std::mem::replace(&mut self.current, saved)
    }

    /// Runs `f` as the body of a loop with the given trip-count spec.
    fn looped(&mut self, spec: LoopSpec, f: impl FnOnce(&mut Self)) {
        self.out.loops.push(spec);
        let spec = self.out.loops.len() - 1;
        self.loop_depth += 1;
        let body = self.nested(f);
        self.loop_depth -= 1;
        self.item(Item::Loop { spec, body });
    }

    fn site(&mut self, callee: CalleeRef, kind: CallKind) -> SiteId {
        self.site_in(callee, kind, None)
    }

    fn site_in(
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
        });
        let id = self.out.sites.len() - 1;
        self.item(Item::Call(id));
        id
    }

    fn net(&mut self, api: &'static str, url: Option<String>) {
        self.out.nets.push(NetRequest {
            body: self.body,
            api,
            url,
        });
        let id = self.out.nets.len() - 1;
        self.item(Item::Net(id));
        self.item(Item::Builtin(&builtins::NETWORK_CALL));
    }

    fn bind(&mut self, name: Atom, binding: Binding) {
        self.out.bind(self.scope, name, binding);
    }

    fn add_method(&mut self, name: Atom, body: BodyId) {
        self.out
            .methods
            .entry((self.realm, name))
            .or_default()
            .push(body);
    }

    /// The global object's name in this realm, for handlers registered on it implicitly.
    fn global_name(&self) -> &'static str {
        if self.worker { "self" } else { "window" }
    }

    /// Source text of a node, whitespace collapsed and shortened, for path names.
    fn snippet(&self, e: &Expr) -> String {
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

    /// How a handler's target reads in a path name: a selector when the syntax gives one.
    fn describe_target(&self, e: &Expr) -> String {
        if let Some(sel) = element_selector(e) {
            return sel;
        }
        match unparen(e) {
            Expr::Ident(i) => match self.out.lookup(self.scope, &i.sym) {
                Some(Binding::Element(sel)) => sel.clone(),
                _ => i.sym.to_string(),
            },
            Expr::This(_) => "this".to_string(),
            other => self.snippet(other),
        }
    }

    // ---- numbers and loops -------------------------------------------------------------

    /// A numeric expression as far as constants can make it one; `None` for anything that is
    /// visibly not arithmetic.
    fn num_expr(&mut self, e: &Expr, depth: u32) -> Option<NumId> {
        if depth > 32 {
            return None;
        }
        match unparen(e) {
            Expr::Lit(Lit::Num(n)) => Some(self.out.num(NumExpr::Lit(n.value))),
            Expr::Unary(u) if u.op == UnaryOp::Minus => {
                let a = self.num_expr(&u.arg, depth + 1)?;
                Some(self.out.num(NumExpr::Neg(a)))
            }
            Expr::Unary(u) if u.op == UnaryOp::Plus => self.num_expr(&u.arg, depth + 1),
            Expr::Ident(i) => Some(self.out.num(NumExpr::Name {
                scope: self.scope,
                name: i.sym.clone(),
            })),
            Expr::Bin(b) => {
                let op = num_op(b.op)?;
                let left = self.num_expr(&b.left, depth + 1)?;
                let right = self.num_expr(&b.right, depth + 1)?;
                Some(self.out.num(NumExpr::Bin { op, left, right }))
            }
            _ => None,
        }
    }

    fn num_or_unknown(&mut self, e: &Expr) -> NumId {
        match self.num_expr(e, 0) {
            Some(n) => n,
            None => self.out.num(NumExpr::Unknown),
        }
    }

    /// `for (let i = A; i < B; i++)` and its variants: the counter, start, bound and step.
    fn for_spec(&mut self, f: &ForStmt) -> LoopSpec {
        let Some((var, start)) = (match &f.init {
            Some(VarDeclOrExpr::VarDecl(d)) => match d.decls.as_slice() {
                [one] => match (&one.name, one.init.as_deref()) {
                    (Pat::Ident(i), Some(init)) => Some((i.id.sym.clone(), init)),
                    _ => None,
                },
                _ => None,
            },
            Some(VarDeclOrExpr::Expr(e)) => match unparen(e) {
                Expr::Assign(a) if a.op == AssignOp::Assign => match &a.left {
                    AssignTarget::Simple(SimpleAssignTarget::Ident(i)) => {
                        Some((i.id.sym.clone(), &*a.right))
                    }
                    _ => None,
                },
                _ => None,
            },
            None => None,
        }) else {
            return LoopSpec::Unknown;
        };
        let is_var = |e: &Expr| matches!(unparen(e), Expr::Ident(i) if i.sym == var);
        let Some(Expr::Bin(test)) = f.test.as_deref().map(unparen) else {
            return LoopSpec::Unknown;
        };
        // Normalise `B > i` to `i < B`.
        let (op, bound) = if is_var(&test.left) {
            (test.op, &*test.right)
        } else if is_var(&test.right) {
            let flipped = match test.op {
                BinaryOp::Lt => BinaryOp::Gt,
                BinaryOp::LtEq => BinaryOp::GtEq,
                BinaryOp::Gt => BinaryOp::Lt,
                BinaryOp::GtEq => BinaryOp::LtEq,
                other => other,
            };
            (flipped, &*test.left)
        } else {
            return LoopSpec::Unknown;
        };
        let literal = |e: &Expr| match unparen(e) {
            Expr::Lit(Lit::Num(n)) => Some(n.value),
            _ => None,
        };
        let step = match f.update.as_deref().map(unparen) {
            Some(Expr::Update(u)) if is_var(&u.arg) => match u.op {
                UpdateOp::PlusPlus => Some(1.0),
                UpdateOp::MinusMinus => Some(-1.0),
            },
            Some(Expr::Assign(a)) => {
                let target_is_var = matches!(&a.left,
                    AssignTarget::Simple(SimpleAssignTarget::Ident(i)) if i.id.sym == var);
                match (target_is_var, a.op) {
                    (true, AssignOp::AddAssign) => literal(&a.right),
                    (true, AssignOp::SubAssign) => literal(&a.right).map(|k| -k),
                    (true, AssignOp::Assign) => match unparen(&a.right) {
                        Expr::Bin(b) if b.op == BinaryOp::Add && is_var(&b.left) => {
                            literal(&b.right)
                        }
                        Expr::Bin(b) if b.op == BinaryOp::Sub && is_var(&b.left) => {
                            literal(&b.right).map(|k| -k)
                        }
                        _ => None,
                    },
                    _ => None,
                }
            }
            _ => None,
        };
        let Some(step) = step.filter(|s| s.is_finite() && *s != 0.0) else {
            return LoopSpec::Unknown;
        };
        let inclusive = match (op, step > 0.0) {
            (BinaryOp::Lt, true) | (BinaryOp::Gt, false) => false,
            (BinaryOp::LtEq, true) | (BinaryOp::GtEq, false) => true,
            _ => return LoopSpec::Unknown,
        };
        let (Some(start), Some(bound)) = (self.num_expr(start, 0), self.num_expr(bound, 0)) else {
            return LoopSpec::Unknown;
        };
        LoopSpec::Counted {
            start,
            bound,
            step,
            inclusive,
        }
    }

    // ---- functions and classes ---------------------------------------------------------

    /// Creates a body (with its own scope) and collects `f` into it. The creation cost goes
    /// to the enclosing code.
    fn enter_function(
        &mut self,
        kind: BodyKind,
        name: Option<String>,
        own_name: Option<&Atom>,
        f: impl FnOnce(&mut Self),
    ) -> BodyId {
        self.work(CLOSURE_UNITS);
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
        let saved_params = std::mem::take(&mut self.params);
        let block = self.nested(f);
        self.body = saved_body;
        self.scope = saved_scope;
        self.loop_depth = saved_loops;
        self.params = saved_params;
        if let Some(b) = self.out.bodies.get_mut(id) {
            b.block = block;
        }
        id
    }

    fn function(
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

    fn arrow(&mut self, name: Option<String>, a: &ArrowExpr) -> BodyId {
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
    fn function_value(&mut self, e: &Expr, name: Option<String>) -> Option<BodyId> {
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

    fn class(&mut self, name: Option<String>, class: &Class) -> BodyId {
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
    fn bind_pat(&mut self, pat: &Pat, depth: u32) {
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

    // ---- calls -------------------------------------------------------------------------

    /// What a function-valued argument refers to; inline functions become bodies here. `None`
    /// when the expression is not visibly a function (the caller then visits it as code).
    fn callback_ref(&mut self, e: &Expr) -> Option<CalleeRef> {
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
    fn args(&mut self, args: &[ExprOrSpread], host: Option<SiteId>) {
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

    fn register(&mut self, kind: RegKind, callback: Option<CalleeRef>) {
        self.out.registrations.push(Registration {
            body: Some(self.body),
            scope: self.scope,
            kind,
            callback,
        });
    }

    /// `target.addEventListener(event, callback, options)`.
    fn add_event_listener(&mut self, target: String, args: &[ExprOrSpread]) {
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

    fn timer(&mut self, api: &'static str, args: &[ExprOrSpread]) {
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
        for a in args.iter().skip(1) {
            a.expr.visit_with(self);
        }
        self.register(RegKind::Timer { api }, callback);
    }

    /// `arr.forEach(fn)` and friends: the callback runs once per element, a loop of unknown
    /// length.
    fn iteration(&mut self, args: &[ExprOrSpread]) {
        let mut rest = args.iter();
        if let Some(first) = rest.next() {
            match self.callback_ref(&first.expr) {
                Some(r) => self.looped(LoopSpec::Unknown, |c| {
                    c.site(r, CallKind::Callback);
                }),
                None => first.expr.visit_with(self),
            }
        }
        for a in rest {
            a.expr.visit_with(self);
        }
    }

    fn call(&mut self, callee: &Expr, args: &[ExprOrSpread]) {
        self.work(CALL_UNITS);
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

    fn call_name(&mut self, name: &Atom, args: &[ExprOrSpread]) {
        if let Some(api) = builtins::timer(name) {
            return self.timer(api, args);
        }
        match name.as_str() {
            "fetch" => {
                let url = args.first().and_then(|a| str_lit(&a.expr));
                self.net("fetch", url);
                for a in args {
                    a.expr.visit_with(self);
                }
                return;
            }
            "importScripts" => {
                for a in args {
                    self.net("importScripts", str_lit(&a.expr));
                    a.expr.visit_with(self);
                }
                return;
            }
            "addEventListener" => {
                let target = self.global_name().to_string();
                return self.add_event_listener(target, args);
            }
            "Array" => return self.array_alloc("Array", args),
            _ => {}
        }
        let host = self.site(CalleeRef::Name(name.clone()), CallKind::Direct);
        self.args(args, Some(host));
    }

    fn call_member(&mut self, m: &MemberExpr, args: &[ExprOrSpread]) {
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
            // jQuery-style `$(sel).on('click', fn)`.
            "on" | "one"
                if args.first().and_then(|a| str_lit(&a.expr)).is_some()
                    && args.iter().skip(1).any(|a| is_function_value(&a.expr)) =>
            {
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
                return self.register(RegKind::Event { event, target }, callback);
            }
            "fetch" if global_receiver => {
                let url = args.first().and_then(|a| str_lit(&a.expr));
                self.net("fetch", url);
                for a in args {
                    a.expr.visit_with(self);
                }
                return;
            }
            // `xhr.open('GET', url)`; `window.open(url)` has no method argument.
            "open"
                if args.len() >= 2
                    && args
                        .first()
                        .and_then(|a| str_lit(&a.expr))
                        .is_some_and(|method| {
                            method.chars().all(|c| c.is_ascii_alphabetic()) && !method.is_empty()
                        }) =>
            {
                m.obj.visit_with(self);
                let url = args.get(1).and_then(|a| str_lit(&a.expr));
                self.net("XMLHttpRequest", url);
                for a in args {
                    a.expr.visit_with(self);
                }
                return;
            }
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
        let callee = if global_receiver {
            CalleeRef::GlobalName(prop.clone())
        } else {
            CalleeRef::Member {
                receiver,
                prop: prop.clone(),
            }
        };
        let host = self.site(callee, CallKind::Direct);
        if builtins::iteration_method(&prop) {
            self.iteration(args);
        } else {
            self.args(args, Some(host));
        }
    }

    /// `new Float64Array(n)`, `new Array(n)`, `Array(n)`: an allocation of known or unknown size.
    fn array_alloc(&mut self, ctor: &str, args: &[ExprOrSpread]) {
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

    fn new_expr(&mut self, callee: &Expr, args: &[ExprOrSpread]) {
        self.work(CALL_UNITS);
        self.alloc(OBJECT_BYTES);
        match unparen(callee) {
            Expr::Ident(i) => {
                let name = i.sym.as_str();
                match name {
                    "Worker" | "SharedWorker" => {
                        let url = args
                            .first()
                            .map_or(WorkerUrl::Unknown, |a| worker_url(&a.expr));
                        self.out.spawns.push(Spawn {
                            body: self.body,
                            shared: name == "SharedWorker",
                            url,
                        });
                        for a in args {
                            a.expr.visit_with(self);
                        }
                    }
                    "WebSocket" | "EventSource" => {
                        let url = args.first().and_then(|a| str_lit(&a.expr));
                        self.net(
                            if name == "WebSocket" {
                                "WebSocket"
                            } else {
                                "EventSource"
                            },
                            url,
                        );
                        for a in args {
                            a.expr.visit_with(self);
                        }
                    }
                    _ if builtins::array_element_bytes(name).is_some() => {
                        self.array_alloc(name, args)
                    }
                    _ => {
                        let host = self.site(CalleeRef::Name(i.sym.clone()), CallKind::Direct);
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

    // ---- expressions -------------------------------------------------------------------

    fn assign(&mut self, a: &AssignExpr) {
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
                    // A bare `onmessage = ...` / `onload = ...` sets the global object's handler.
                    let declared = self.out.lookup(self.scope, name).is_some();
                    if let Some(event) = handler_event(name).filter(|_| !declared)
                        && let Some(cb) = self.callback_ref(&a.right)
                    {
                        let target = self.global_name().to_string();
                        self.register(
                            RegKind::Event {
                                event: event.to_string(),
                                target,
                            },
                            Some(cb),
                        );
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
        if a.op == AssignOp::AddAssign && self.loop_depth > 0 && stringish(&a.right) {
            self.item(Item::Builtin(&builtins::STRING_CONCAT));
        }
        a.left.visit_with(self);
        a.right.visit_with(self);
    }

    /// `target.prop = value`: handler registrations, HTML sinks and method definitions.
    /// Returns whether it handled the whole assignment.
    fn member_store(&mut self, m: &MemberExpr, prop: &Atom, value: &Expr) -> bool {
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
        if builtins::html_sink(prop) {
            self.item(Item::Builtin(&builtins::HTML_PARSE));
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
    fn bin(&mut self, b: &BinExpr) {
        let mut cur = b;
        loop {
            self.work(1.0);
            if cur.op == BinaryOp::Add
                && self.loop_depth > 0
                && (stringish(&cur.left) || stringish(&cur.right))
            {
                self.item(Item::Builtin(&builtins::STRING_CONCAT));
            }
            match cur.op {
                BinaryOp::LogicalAnd | BinaryOp::LogicalOr | BinaryOp::NullishCoalescing => {
                    let arm = self.nested(|c| cur.right.visit_with(c));
                    self.item(Item::Branch(vec![arm, Block::default()]));
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
    fn member(&mut self, m: &MemberExpr) {
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

    fn object(&mut self, o: &ObjectLit) {
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

    /// An `if` with its `else if` chain, as one flat branch: the chain is as deep in the AST
    /// as it is long, and a flat branch keeps both this walk and the cost pass shallow.
    fn if_chain(&mut self, first: &IfStmt) {
        let mut arms = Vec::new();
        let mut cur = first;
        loop {
            cur.test.visit_with(self);
            let cons = &cur.cons;
            arms.push(self.nested(|c| cons.visit_with(c)));
            match cur.alt.as_deref() {
                Some(Stmt::If(next)) => {
                    self.work(STMT_UNITS);
                    cur = next;
                }
                Some(alt) => {
                    arms.push(self.nested(|c| alt.visit_with(c)));
                    break;
                }
                None => {
                    arms.push(Block::default());
                    break;
                }
            }
        }
        self.item(Item::Branch(arms));
    }

    fn var_declarator(&mut self, kind: VarDeclKind, name: &Pat, init: Option<&Expr>) {
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
                let binding = if kind == VarDeclKind::Const {
                    match (self.num_expr(other, 0), element_selector(other)) {
                        (Some(n), _) => Binding::Const(n),
                        (None, Some(sel)) => Binding::Element(sel),
                        (None, None) => Binding::Other,
                    }
                } else {
                    Binding::Other
                };
                self.bind(sym, binding);
                self.work(1.0);
                other.visit_with(self);
            }
        }
    }
}

/// The event of an `on*` handler property (`onclick` -> `click`). Event handler properties
/// are all lower case, which tells them from callback names like `onSuccess`.
fn handler_event(prop: &str) -> Option<&str> {
    let event = prop.strip_prefix("on")?;
    let lower = !event.is_empty() && event.bytes().all(|b| b.is_ascii_lowercase());
    (lower && !matches!(event, "ce" | "e" | "ly")).then_some(event)
}

/// The URL argument of `new Worker(...)`.
fn worker_url(e: &Expr) -> WorkerUrl {
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

impl Visit for Collector<'_, '_> {
    fn visit_stmt(&mut self, s: &Stmt) {
        if !self.enter() {
            return;
        }
        if !matches!(s, Stmt::Block(_) | Stmt::Empty(_) | Stmt::Decl(_)) {
            self.work(STMT_UNITS);
        }
        match s {
            Stmt::For(f) => {
                f.init.visit_with(self);
                let spec = self.for_spec(f);
                self.looped(spec, |c| {
                    f.test.visit_with(c);
                    f.update.visit_with(c);
                    f.body.visit_with(c);
                    c.work(LOOP_UNITS);
                });
            }
            Stmt::ForIn(f) => {
                f.right.visit_with(self);
                self.looped(LoopSpec::Unknown, |c| {
                    for_head(c, &f.left);
                    f.body.visit_with(c);
                    c.work(LOOP_UNITS + 1.0);
                });
            }
            Stmt::ForOf(f) => {
                f.right.visit_with(self);
                self.looped(LoopSpec::Unknown, |c| {
                    for_head(c, &f.left);
                    f.body.visit_with(c);
                    c.work(LOOP_UNITS + 1.0);
                });
            }
            Stmt::While(w) => self.looped(LoopSpec::Unknown, |c| {
                w.test.visit_with(c);
                w.body.visit_with(c);
                c.work(LOOP_UNITS);
            }),
            Stmt::DoWhile(w) => self.looped(LoopSpec::Unknown, |c| {
                w.body.visit_with(c);
                w.test.visit_with(c);
                c.work(LOOP_UNITS);
            }),
            Stmt::If(i) => self.if_chain(i),
            Stmt::Switch(sw) => {
                sw.discriminant.visit_with(self);
                let mut arms = Vec::with_capacity(sw.cases.len() + 1);
                for case in &sw.cases {
                    arms.push(self.nested(|c| {
                        case.test.visit_with(c);
                        case.cons.visit_with(c);
                    }));
                }
                if !sw.cases.iter().any(|c| c.test.is_none()) {
                    arms.push(Block::default());
                }
                self.item(Item::Branch(arms));
            }
            Stmt::Try(t) => {
                t.block.visit_with(self);
                if let Some(h) = &t.handler {
                    let arm = self.nested(|c| h.visit_with(c));
                    self.item(Item::Branch(vec![arm, Block::default()]));
                }
                t.finalizer.visit_with(self);
            }
            _ => s.visit_children_with(self),
        }
        self.leave();
    }

    fn visit_expr(&mut self, e: &Expr) {
        if !self.enter() {
            return;
        }
        match e {
            Expr::Call(c) => match &c.callee {
                Callee::Expr(callee) => self.call(callee, &c.args),
                Callee::Import(_) => {
                    self.work(CALL_UNITS);
                    let url = c.args.first().and_then(|a| str_lit(&a.expr));
                    self.net("import()", url);
                    for a in &c.args {
                        a.expr.visit_with(self);
                    }
                }
                Callee::Super(_) => {
                    self.work(CALL_UNITS);
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
                self.item(Item::Branch(vec![cons, alt]));
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
                    self.alloc(STRING_BYTES);
                }
                t.visit_children_with(self);
            }
            Expr::TaggedTpl(t) => {
                self.work(CALL_UNITS + t.tpl.exprs.len() as f64);
                match unparen(&t.tag) {
                    Expr::Ident(i) => {
                        self.site(CalleeRef::Name(i.sym.clone()), CallKind::Direct);
                    }
                    other => other.visit_with(self),
                }
                t.tpl.visit_with(self);
            }
            Expr::Lit(Lit::Regex(_)) => self.work(REGEX_LITERAL_UNITS),
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

fn for_head(c: &mut Collector<'_, '_>, head: &ForHead) {
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
