//! Recursion depth from a constant argument: how many activations a self-recursive function
//! runs when it is started with a known number and each recursive call visibly shrinks it.
//!
//! The syntax of `function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }` and the
//! call `fib(27)` say everything about how often `fib` runs: each activation with `n` at or
//! above the base makes one call per recursive site, with `n` shrunk by that site's step.
//! Counting activations is then a recurrence over the steps: `n - 1` alone gives about n,
//! `n - 1` and `n - 2` about phi^n, `n / 2` about log2 n (and two `n / 2` calls, as in merge
//! sort, about 2n). The base case is not read from the condition: recursion stops where the
//! steps can no longer shrink the argument (below the largest subtracted constant, or below
//! the divisor), which is where hand-written base cases put it, give or take one activation
//! per leaf. Recursion the syntax does not describe this way keeps the cost model's wide
//! unknown-depth distribution.

use std::collections::BTreeMap;

use crate::ir::{Atom, Block, Collected, Item, NumExpr, NumId, NumOp, ScopeId, SiteId};

/// How a recursive call's argument shrinks the parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// `n - d` (d > 0).
    Sub(f64),
    /// `n / d`, `n >> k`, `Math.floor(n / d)` (d > 1).
    Div(f64),
}

/// Most activations counted; beyond it the count saturates (a page cannot run more anyway).
pub const MAX_ACTIVATIONS: f64 = 1e12;

/// Largest starting value counted by the linear recurrence for subtracting steps.
const MAX_LINEAR_START: f64 = 1e7;

/// The step of argument `arg` with respect to parameter `param` of the body whose scope is
/// `scope`; `None` if `arg` is not the parameter shrunk by a constant.
pub fn step(c: &Collected, arg: NumId, param: &Atom, scope: ScopeId) -> Option<Step> {
    let is_param = |id: NumId| {
        matches!(c.nums.get(id), Some(NumExpr::Name { scope: s, name })
            if name == param && declares(c, *s, name) == Some(scope))
    };
    let lit = |id: NumId| match c.nums.get(id) {
        Some(NumExpr::Lit(v)) => Some(*v),
        Some(NumExpr::Neg(a)) => match c.nums.get(*a) {
            Some(NumExpr::Lit(v)) => Some(-*v),
            _ => None,
        },
        _ => None,
    };
    let e = c.nums.get(arg)?;
    let (op, left, right) = match e {
        NumExpr::Bin { op, left, right } => (*op, *left, *right),
        // `Math.floor(n / 2)` shrinks like `n / 2`.
        NumExpr::Round(_, inner) => return step(c, *inner, param, scope),
        _ => return None,
    };
    if !is_param(left) {
        return None;
    }
    let k = lit(right)?;
    let s = match op {
        NumOp::Sub if k > 0.0 => Step::Sub(k),
        NumOp::Add if k < 0.0 => Step::Sub(-k),
        NumOp::Div if k > 1.0 => Step::Div(k),
        NumOp::Shr | NumOp::UShr if (1.0..31.0).contains(&k) => Step::Div(2f64.powf(k.trunc())),
        NumOp::Mul if k > 0.0 && k < 1.0 => Step::Div(1.0 / k),
        _ => return None,
    };
    Some(s)
}

/// The scope that declares `name`, looking outwards from `scope`.
fn declares(c: &Collected, mut scope: ScopeId, name: &Atom) -> Option<ScopeId> {
    for _ in 0..=c.scopes.len() {
        let s = c.scopes.get(scope)?;
        if s.bindings.contains_key(name) {
            return Some(scope);
        }
        scope = s.parent?;
    }
    None
}

/// Whether any of `sites` is called inside a loop of `block` (each activation would then
/// make an unknown number of recursive calls).
pub fn calls_in_loops(c: &Collected, block: &Block, sites: &[SiteId]) -> bool {
    fn walk(c: &Collected, b: &Block, sites: &[SiteId], in_loop: bool, depth: u32) -> bool {
        if depth > 2_000 {
            return true;
        }
        c.items_of(b).iter().any(|item| match item {
            Item::Loop { body, .. } => walk(c, body, sites, true, depth + 1),
            Item::Branch(arms) => c
                .arms_of(*arms)
                .iter()
                .any(|a| walk(c, a, sites, in_loop, depth + 1)),
            Item::Call(s) => in_loop && sites.contains(s),
            _ => false,
        })
    }
    walk(c, block, sites, false, 0)
}

/// Activations of a recursion started at `n` whose activations each make one call per step
/// in `steps`; `None` when it cannot be counted (a non-finite start).
pub fn activations(n: f64, steps: &[Step]) -> Option<f64> {
    if !n.is_finite() || steps.is_empty() {
        return None;
    }
    let base = steps
        .iter()
        .map(|s| match s {
            Step::Sub(d) | Step::Div(d) => *d,
        })
        .fold(0.0, f64::max);
    if steps.iter().all(|s| matches!(s, Step::Sub(_))) {
        return Some(linear(n, base, steps));
    }
    let mut memo = BTreeMap::new();
    Some(general(n, base, steps, 0, &mut memo).min(MAX_ACTIVATIONS))
}

/// Subtracting steps only: `count(v) = 1 + sum count(v - d)` for `v >= base`, else 1,
/// computed bottom-up over the values the recursion visits (integer offsets from `n`).
fn linear(n: f64, base: f64, steps: &[Step]) -> f64 {
    if n < base {
        return 1.0;
    }
    let all_integral = steps
        .iter()
        .all(|s| matches!(s, Step::Sub(d) if d.fract() == 0.0));
    if !all_integral || n > MAX_LINEAR_START {
        // Rare shapes and huge starts: one chain of n / d activations, or saturated when
        // the recursion branches.
        let d = steps
            .iter()
            .map(|s| match s {
                Step::Sub(d) | Step::Div(d) => *d,
            })
            .fold(f64::INFINITY, f64::min);
        return if steps.len() == 1 {
            ((n - base) / d).floor() + 2.0
        } else {
            MAX_ACTIVATIONS
        };
    }
    // count[i] is the count at value n - i, filled from the bottom (largest i) up.
    let span = (n - base).floor() as usize + 1;
    let longest = base as usize;
    let len = span + longest + 1;
    let mut count = vec![1.0f64; len];
    for i in (0..span).rev() {
        let mut c = 1.0;
        for s in steps {
            if let Step::Sub(d) = s {
                c += count.get(i + *d as usize).copied().unwrap_or(1.0);
            }
        }
        if let Some(slot) = count.get_mut(i) {
            *slot = c.min(MAX_ACTIVATIONS);
        }
    }
    count.first().copied().unwrap_or(1.0)
}

/// Any steps with a division among them: the values shrink geometrically, so a memoised
/// recursion is shallow (depth about log n).
fn general(n: f64, base: f64, steps: &[Step], depth: u32, memo: &mut BTreeMap<u64, f64>) -> f64 {
    if n < base || depth > 200 {
        return 1.0;
    }
    if let Some(c) = memo.get(&n.to_bits()) {
        return *c;
    }
    if memo.len() > 100_000 {
        return MAX_ACTIVATIONS;
    }
    let mut c = 1.0;
    for s in steps {
        let next = match s {
            Step::Sub(d) => n - d,
            Step::Div(d) => n / d,
        };
        c += general(next, base, steps, depth + 1, memo);
    }
    let c = c.min(MAX_ACTIVATIONS);
    memo.insert(n.to_bits(), c);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fib_activations_grow_like_phi_to_the_n() {
        // fib(27) with `n < 2` as its base makes 2 * F(28) - 1 calls.
        let fib = [Step::Sub(1.0), Step::Sub(2.0)];
        assert_eq!(activations(27.0, &fib), Some(635_621.0));
        assert_eq!(activations(1.0, &fib), Some(1.0));
        assert_eq!(activations(2.0, &fib), Some(3.0));
    }

    #[test]
    fn a_single_shrinking_call_is_a_chain() {
        let count = activations(100.0, &[Step::Sub(1.0)]).expect("counted");
        assert!((100.0..=102.0).contains(&count), "{count}");
        let halving = activations(1024.0, &[Step::Div(2.0)]).expect("counted");
        assert!((10.0..=12.0).contains(&halving), "{halving}");
        // Merge sort: two halves per call, about 2n activations.
        let merge = activations(1024.0, &[Step::Div(2.0), Step::Div(2.0)]).expect("counted");
        assert!((2_000.0..=2_100.0).contains(&merge), "{merge}");
    }

    #[test]
    fn huge_starts_saturate_instead_of_looping() {
        let fib = [Step::Sub(1.0), Step::Sub(2.0)];
        assert_eq!(activations(5_000.0, &fib), Some(MAX_ACTIVATIONS));
        assert_eq!(activations(1e9, &fib), Some(MAX_ACTIVATIONS));
        assert!(activations(f64::NAN, &fib).is_none());
        let chain = activations(1e9, &[Step::Sub(1.0)]).expect("counted");
        assert!(chain > 9.9e8 && chain < 1.1e9, "{chain}");
    }
}
