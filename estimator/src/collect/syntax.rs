//! Context-free readers of syntax: what a piece of the AST says on its own (a string literal,
//! a property name, a DOM lookup's selector), with no state from the walk.

use swc_ecma_ast::{BinaryOp, Callee, Expr, Lit, MemberExpr, MemberProp, Pat, PropName};

use crate::ir::{Atom, NumOp};

pub(super) fn unparen(e: &Expr) -> &Expr {
    let mut e = e;
    // Parentheses nest as brackets, which the prescan bounds; the loop needs no guard.
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

pub(super) fn str_lit(e: &Expr) -> Option<String> {
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
pub(super) fn param_name(p: &Pat) -> Option<Atom> {
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
pub(super) fn stringish(e: &Expr) -> bool {
    matches!(unparen(e), Expr::Lit(Lit::Str(_)) | Expr::Tpl(_))
}

pub(super) fn prop_name(key: &PropName) -> Option<Atom> {
    match key {
        PropName::Ident(i) => Some(i.sym.clone()),
        PropName::Str(s) => Some(s.value.to_atom_lossy().into_owned()),
        PropName::Num(n) => Some(Atom::from(n.value.to_string())),
        _ => None,
    }
}

pub(super) fn member_prop(m: &MemberExpr) -> Option<Atom> {
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
pub(super) fn receiver_name(e: &Expr) -> Option<Atom> {
    match unparen(e) {
        Expr::Ident(i) => Some(i.sym.clone()),
        Expr::This(_) => Some(Atom::from("this")),
        _ => None,
    }
}

pub(super) fn is_function_value(e: &Expr) -> bool {
    matches!(unparen(e), Expr::Fn(_) | Expr::Arrow(_))
}

pub(super) fn num_op(op: BinaryOp) -> Option<NumOp> {
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
pub(super) fn element_selector(e: &Expr) -> Option<String> {
    let Expr::Call(call) = unparen(e) else {
        return None;
    };
    let Callee::Expr(callee) = &call.callee else {
        return None;
    };
    let arg = call.args.first().and_then(|a| str_lit(&a.expr))?;
    match unparen(callee) {
        Expr::Member(m) => match member_prop(m)?.as_str() {
            "getElementById" => Some(id_selector(&arg)),
            "querySelector" | "querySelectorAll" => Some(arg),
            _ => None,
        },
        Expr::Ident(i) if matches!(i.sym.as_str(), "$" | "jQuery") => Some(arg),
        _ => None,
    }
}

/// A CSS selector for the element with id `id`: `#id` when the id is a plain CSS identifier,
/// else an attribute selector (`[id="a.b"]`), which needs no escaping beyond quotes.
pub(super) fn id_selector(id: &str) -> String {
    let mut chars = id.chars();
    let plain_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '-');
    let plain_rest = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain_start && plain_rest && !id.starts_with("--") && !id.starts_with("-") {
        format!("#{id}")
    } else {
        format!("[id=\"{}\"]", id.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// The tag-name selector of an element `document` exposes as a property.
pub(super) fn document_element(prop: &str) -> Option<&'static str> {
    match prop {
        "body" => Some("body"),
        "documentElement" => Some("html"),
        "head" => Some("head"),
        _ => None,
    }
}

/// The event of an `on*` handler property (`onclick` -> `click`). Event handler properties
/// are all lower case, which tells them from callback names like `onSuccess`.
pub(super) fn handler_event(prop: &str) -> Option<&str> {
    let event = prop.strip_prefix("on")?;
    let lower = !event.is_empty() && event.bytes().all(|b| b.is_ascii_lowercase());
    (lower && !matches!(event, "ce" | "e" | "ly")).then_some(event)
}
