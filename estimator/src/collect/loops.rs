//! Loops: their trip-count specs (`for (i = a; i < b; i += k)` with symbolic bounds settled
//! by `resolve.rs`), iteration methods (`forEach` and friends), and the numeric expressions
//! loop bounds and allocation sizes are kept as.

use swc_ecma_ast::{
    AssignOp, AssignTarget, BinaryOp, Callee, Expr, ExprOrSpread, ForStmt, Lit, Pat,
    SimpleAssignTarget, Stmt, UnaryOp, UpdateOp, VarDeclOrExpr,
};
use swc_ecma_visit::VisitWith;

use super::scopes::for_head;
use super::syntax::{member_prop, num_op, unparen};
use super::{Collector, LOOP_UNITS};
use crate::ir::{Atom, CallKind, Item, LoopSpec, NumExpr, NumId, RoundOp};

impl Collector<'_, '_> {
    /// A loop statement: its head runs once, its test, update and body once per trip.
    pub(super) fn loop_stmt(&mut self, s: &Stmt) {
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
                let spec = match unparen(&f.right) {
                    Expr::Ident(i) => LoopSpec::Each {
                        scope: self.scope,
                        name: i.sym.clone(),
                    },
                    _ => LoopSpec::Unknown,
                };
                self.looped(spec, |c| {
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
            _ => {}
        }
    }

    /// Runs `f` as the body of a loop with the given trip-count spec.
    pub(super) fn looped(&mut self, spec: LoopSpec, f: impl FnOnce(&mut Self)) {
        self.out.loops.push(spec);
        let spec = self.out.loops.len() - 1;
        self.loop_depth += 1;
        self.loop_ids.push(spec);
        let body = self.nested(f);
        self.loop_ids.pop();
        self.loop_depth -= 1;
        self.item(Item::Loop { spec, body });
    }

    /// A numeric expression as far as constants can make it one; `None` for anything that is
    /// visibly not arithmetic.
    pub(super) fn num_expr(&mut self, e: &Expr, depth: u32) -> Option<NumId> {
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
            // `Math.floor(n / 2)`
            Expr::Call(call) => {
                let Callee::Expr(callee) = &call.callee else {
                    return None;
                };
                let Expr::Member(m) = unparen(callee) else {
                    return None;
                };
                let op = match (unparen(&m.obj), member_prop(m)) {
                    (Expr::Ident(obj), Some(prop)) if obj.sym == "Math" => {
                        RoundOp::from_name(&prop)?
                    }
                    _ => return None,
                };
                let [arg] = call.args.as_slice() else {
                    return None;
                };
                if arg.spread.is_some() {
                    return None;
                }
                let a = self.num_expr(&arg.expr, depth + 1)?;
                Some(self.out.num(NumExpr::Round(op, a)))
            }
            _ => None,
        }
    }

    pub(super) fn num_or_unknown(&mut self, e: &Expr) -> NumId {
        match self.num_expr(e, 0) {
            Some(n) => n,
            None => self.out.num(NumExpr::Unknown),
        }
    }

    /// `for (let i = A; i < B; i++)` and its variants: the counter, start, bound and step.
    pub(super) fn for_spec(&mut self, f: &ForStmt) -> LoopSpec {
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

    /// `arr.forEach(fn)` and friends: the callback runs once per element of `receiver` (a loop
    /// of unknown length when the receiver is not a plain name).
    pub(super) fn iteration(&mut self, receiver: Option<Atom>, args: &[ExprOrSpread]) {
        let mut rest = args.iter();
        if let Some(first) = rest.next() {
            let spec = match receiver {
                Some(name) => LoopSpec::Each {
                    scope: self.scope,
                    name,
                },
                None => LoopSpec::Unknown,
            };
            match self.callback_ref(&first.expr) {
                Some(r) => self.looped(spec, |c| {
                    c.site(r, CallKind::Callback);
                }),
                None => first.expr.visit_with(self),
            }
        }
        for a in rest {
            a.expr.visit_with(self);
        }
    }
}
