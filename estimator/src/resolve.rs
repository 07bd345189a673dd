//! The resolve pass: settles every name the collect pass left symbolic, now that the whole
//! page has been seen.
//!
//! Calls resolve through lexical scopes, then the realm's global scope (which every classic
//! script of the page shares, so a function declared in one script is callable from another),
//! then the builtin table. Method calls (`x.render()`) resolve by property name to the methods
//! defined anywhere in the realm, since the receiver's type is unknown; a name defined by more
//! than [`MAX_CANDIDATES`] methods is treated as not resolvable rather than as a mixture of
//! unrelated code. Numeric expressions (loop bounds, array sizes) evaluate through `const`
//! bindings with JS arithmetic.

use std::collections::{BTreeMap, HashSet};
use std::hash::BuildHasherDefault;

use foresight_shared::protocol::demand::{PageSources, ScriptKind};

use crate::builtins::{self, Builtin};
use crate::ir::{
    Atom, AtomHasher, Binding, BodyId, CallKind, CalleeRef, Collected, LibId, LoopId, LoopSpec,
    NumExpr, NumId, NumOp, ScopeId, WorkerUrl,
};
use crate::libraries::EntryProfile;
use crate::url;

/// Most methods of one name a member call may resolve to. More means the name is generic
/// (`get`, `update`) and matching by name alone says little about which one runs.
pub const MAX_CANDIDATES: usize = 4;

/// Deepest chain of `const`s referring to `const`s followed when evaluating a number.
const MAX_NUM_DEPTH: u32 = 64;

/// What a call site calls.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Page code; several bodies when a method name matches several definitions.
    Bodies(Vec<BodyId>),
    Builtin(&'static Builtin),
    /// A recognised library (`Collected.libraries`), at a measured entry point when it has
    /// one.
    Library {
        lib: LibId,
        entry: Option<&'static EntryProfile>,
    },
    /// A call whose callee could not be identified (counted, priced as an unknown call).
    Unresolved,
    /// A callback argument that does not name a function: not a call at all.
    Ignored,
}

#[derive(Debug, Default)]
pub struct Resolution {
    /// Per call site.
    pub sites: Vec<Target>,
    /// Per registration: the handler's body, when it names page code.
    pub callbacks: Vec<Option<BodyId>>,
    /// Per numeric expression: its value, when constants determine it.
    pub nums: Vec<Option<f64>>,
    /// Per loop: its trip count, when constants determine it.
    pub trips: Vec<Option<f64>>,
    pub unresolved_calls: u32,
    /// Items of the values that grow in loops, by (declaring scope, name); NaN if unknown.
    pub sizes: BTreeMap<(ScopeId, Atom), f64>,
    /// Per body, its loops over its own parameters and the parameters' positions: their
    /// trips come from each call's arguments.
    pub param_loops: BTreeMap<BodyId, Vec<(LoopId, usize)>>,
    /// The names in `sizes`, whatever their scope: most names the cost pass asks about have
    /// no size, and an atom's hash is precomputed, so this answers them without walking
    /// scopes or comparing strings.
    pub sized_names: HashSet<Atom, BuildHasherDefault<AtomHasher>>,
}

/// Resolves everything in `c`. Binds `name = function () {}` assignments first, so calls see
/// them.
pub fn resolve(c: &mut Collected) -> Resolution {
    bind_assigned_functions(c);
    let c = &*c;
    let mut memo: Vec<Option<Option<f64>>> = vec![None; c.nums.len()];
    let nums: Vec<Option<f64>> = (0..c.nums.len())
        .map(|id| eval(c, id, 0, &mut memo))
        .collect();
    // Loops over named values (`for (const x of xs)`) run as many times as the values have
    // items, which counted loops grow; the growth of a value inside such a loop is then known
    // in turn. Two rounds settle the common nestings.
    let mut trips = trip_counts(c, &nums, None);
    let mut sizes = sizes(c, &trips);
    if c.loops.iter().any(|l| matches!(l, LoopSpec::Each { .. })) {
        for _ in 0..2 {
            trips = trip_counts(c, &nums, Some(&sizes));
            sizes = self::sizes(c, &trips);
        }
    }
    let param_loops = param_loops(c);
    let mut unresolved_calls = 0u32;
    let mut sites: Vec<Target> = Vec::with_capacity(c.sites.len());
    for s in &c.sites {
        // A function handed to page code runs only if that code calls the parameter; handed
        // to a builtin or to unknown code, it is assumed to run once.
        let handed_to_page_code_that_ignores_it =
            s.host
                .is_some_and(|(host, position)| match sites.get(host) {
                    Some(Target::Bodies(callees)) => !callees.iter().any(|b| {
                        c.bodies
                            .get(*b)
                            .is_some_and(|body| body.param_calls.binary_search(&position).is_ok())
                    }),
                    _ => false,
                });
        let t = if handed_to_page_code_that_ignores_it {
            Target::Ignored
        } else {
            let realm = c.realms.get(s.body).copied().unwrap_or(0);
            resolve_ref(c, s.scope, realm, &s.callee, s.kind)
        };
        if t == Target::Unresolved {
            unresolved_calls = unresolved_calls.saturating_add(1);
        }
        sites.push(t);
    }
    let callbacks = c
        .registrations
        .iter()
        .map(|r| {
            let realm = r.body.and_then(|b| c.realms.get(b)).copied().unwrap_or(0);
            match r
                .callback
                .as_ref()
                .map(|cb| resolve_ref(c, r.scope, realm, cb, CallKind::Callback))
            {
                Some(Target::Bodies(b)) => b.first().copied(),
                _ => None,
            }
        })
        .collect();
    let sized_names = sizes.keys().map(|(_, name)| name.clone()).collect();
    Resolution {
        sites,
        callbacks,
        nums,
        trips,
        unresolved_calls,
        sizes,
        param_loops,
        sized_names,
    }
}

/// The trip count of every loop that constants (and, given `sizes`, the sizes of grown
/// values) determine.
fn trip_counts(
    c: &Collected,
    nums: &[Option<f64>],
    sizes: Option<&BTreeMap<(ScopeId, Atom), f64>>,
) -> Vec<Option<f64>> {
    c.loops
        .iter()
        .map(|spec| match spec {
            LoopSpec::Counted {
                start,
                bound,
                step,
                inclusive,
            } => {
                let start = nums.get(*start).copied().flatten()?;
                let bound = nums.get(*bound).copied().flatten()?;
                trip_count(start, bound, *step, *inclusive)
            }
            LoopSpec::Each { scope, name } => sizes?
                .get(&(declaring_scope(c, *scope, name), name.clone()))
                .copied()
                .filter(|n| n.is_finite() && *n >= 0.0),
            LoopSpec::Unknown => None,
        })
        .collect()
}

/// Per body, its loops over one of its own parameters (`function render(rows) { for (const r
/// of rows) ... }`), with the parameter's position.
fn param_loops(c: &Collected) -> BTreeMap<BodyId, Vec<(LoopId, usize)>> {
    let mut out: BTreeMap<BodyId, Vec<(LoopId, usize)>> = BTreeMap::new();
    let mut body_of_scope: Option<BTreeMap<ScopeId, BodyId>> = None;
    for (id, spec) in c.loops.iter().enumerate() {
        let LoopSpec::Each { scope, name } = spec else {
            continue;
        };
        let declared = declaring_scope(c, *scope, name);
        let map = body_of_scope.get_or_insert_with(|| {
            c.bodies
                .iter()
                .enumerate()
                .filter(|(_, b)| !b.params.is_empty())
                .map(|(i, b)| (b.scope, i))
                .collect()
        });
        let Some(&body) = map.get(&declared) else {
            continue;
        };
        let position = c
            .bodies
            .get(body)
            .and_then(|b| b.params.iter().position(|p| p.as_ref() == Some(name)));
        if let Some(p) = position {
            out.entry(body).or_default().push((id, p));
        }
    }
    out
}

/// The scope that declares `name` as seen from `scope` (the outermost scope of the chain for
/// an undeclared, implicitly global name).
fn declaring_scope(c: &Collected, scope: ScopeId, name: &Atom) -> ScopeId {
    let mut s = scope;
    for _ in 0..=c.scopes.len() {
        let Some(sc) = c.scopes.get(s) else { break };
        if sc.bindings.contains_key(name) {
            return s;
        }
        match sc.parent {
            Some(p) => s = p,
            None => return s,
        }
    }
    s
}

/// Items each grown value ends up with: the sum over its growth sites of the product of the
/// trip counts of their loops; NaN when a loop's trip count is unknown.
fn sizes(c: &Collected, trips: &[Option<f64>]) -> BTreeMap<(ScopeId, Atom), f64> {
    let mut out: BTreeMap<(ScopeId, Atom), f64> = BTreeMap::new();
    for g in &c.growths {
        let n = g.loops.iter().fold(1.0, |acc, l| {
            acc * trips.get(*l).copied().flatten().unwrap_or(f64::NAN)
        });
        *out.entry((declaring_scope(c, g.scope, &g.name), g.name.clone()))
            .or_insert(0.0) += n;
    }
    out
}

impl Resolution {
    /// How many items the value `name` (as seen from `scope`) has, when its growth is known.
    pub fn size(&self, c: &Collected, scope: ScopeId, name: &Atom) -> Option<f64> {
        if !self.sized_names.contains(name) {
            return None;
        }
        self.sizes
            .get(&(declaring_scope(c, scope, name), name.clone()))
            .copied()
            .filter(|n| n.is_finite() && *n >= 0.0)
    }

    /// The items call site `site` works on: its receiver's, else its first argument's, else
    /// the largest known size among the names nested in its arguments.
    pub fn site_items(&self, c: &Collected, site: usize) -> Option<f64> {
        let s = c.sites.get(site)?;
        let of = |n: &Option<Atom>| n.as_ref().and_then(|n| self.size(c, s.scope, n));
        of(&s.sizes.receiver)
            .or_else(|| of(&s.sizes.arg))
            .or_else(|| {
                s.sizes
                    .nested
                    .iter()
                    .filter_map(|n| self.size(c, s.scope, n))
                    .reduce(f64::max)
            })
    }
}

/// `f = function () {}`: rebinds `f` where it is declared, or makes it a global when it is
/// not declared anywhere (sloppy-mode implicit global).
fn bind_assigned_functions(c: &mut Collected) {
    let assigned = std::mem::take(&mut c.assigned_functions);
    for (scope, name, body) in &assigned {
        let mut declared_in = None;
        let mut s = Some(*scope);
        for _ in 0..=c.scopes.len() {
            let Some(id) = s else { break };
            let Some(sc) = c.scopes.get(id) else { break };
            if sc.bindings.contains_key(name) {
                declared_in = Some(id);
                break;
            }
            s = sc.parent;
        }
        let target = match declared_in {
            Some(id) => id,
            None => c.realms.get(*body).copied().unwrap_or(0),
        };
        if let Some(sc) = c.scopes.get_mut(target) {
            match sc.bindings.get(name) {
                Some(Binding::Const(_) | Binding::Element(_)) => {}
                _ => {
                    sc.bindings.insert(name.clone(), Binding::Function(*body));
                    c.bound_names.insert(name);
                }
            }
        }
    }
    c.assigned_functions = assigned;
}

fn trip_count(start: f64, bound: f64, step: f64, inclusive: bool) -> Option<f64> {
    if step == 0.0 || !step.is_finite() {
        return None;
    }
    let span = if step > 0.0 {
        bound - start
    } else {
        start - bound
    };
    let per = step.abs();
    let n = if inclusive {
        (span / per).floor() + 1.0
    } else {
        (span / per).ceil()
    };
    n.is_finite().then_some(n.max(0.0))
}

fn to_int32(x: f64) -> i32 {
    if !x.is_finite() {
        return 0;
    }
    x.trunc().rem_euclid(4_294_967_296.0) as u32 as i32
}

fn to_uint32(x: f64) -> u32 {
    to_int32(x) as u32
}

fn eval(c: &Collected, id: NumId, depth: u32, memo: &mut Vec<Option<Option<f64>>>) -> Option<f64> {
    if depth > MAX_NUM_DEPTH {
        return None;
    }
    if let Some(Some(done)) = memo.get(id) {
        return *done;
    }
    let v = match c.nums.get(id)? {
        NumExpr::Lit(v) => Some(*v),
        NumExpr::Unknown => None,
        NumExpr::Neg(a) => eval(c, *a, depth + 1, memo).map(|v| -v),
        NumExpr::Round(op, a) => eval(c, *a, depth + 1, memo).map(|v| op.apply(v)),
        NumExpr::Name { scope, name } => match c.lookup(*scope, name) {
            Some(Binding::Const(n)) => eval(c, *n, depth + 1, memo),
            _ => None,
        },
        NumExpr::Bin { op, left, right } => {
            let l = eval(c, *left, depth + 1, memo)?;
            let r = eval(c, *right, depth + 1, memo)?;
            Some(match op {
                NumOp::Add => l + r,
                NumOp::Sub => l - r,
                NumOp::Mul => l * r,
                NumOp::Div => l / r,
                NumOp::Mod => l % r,
                NumOp::Exp => l.powf(r),
                NumOp::Shl => to_int32(l).wrapping_shl(to_uint32(r) & 31) as f64,
                NumOp::Shr => (to_int32(l) >> (to_uint32(r) & 31)) as f64,
                NumOp::UShr => (to_uint32(l) >> (to_uint32(r) & 31)) as f64,
                NumOp::BitOr => (to_int32(l) | to_int32(r)) as f64,
                NumOp::BitAnd => (to_int32(l) & to_int32(r)) as f64,
                NumOp::BitXor => (to_int32(l) ^ to_int32(r)) as f64,
            })
        }
    };
    let v = v.filter(|v| v.is_finite());
    if let Some(slot) = memo.get_mut(id) {
        *slot = Some(v);
    }
    v
}

fn miss(kind: CallKind) -> Target {
    match kind {
        CallKind::Direct => Target::Unresolved,
        CallKind::Callback => Target::Ignored,
    }
}

fn global_builtin(name: &str) -> Option<&'static Builtin> {
    builtins::global_function(name).or_else(|| builtins::known_constructor(name))
}

/// A call of library `lib` as `name`: the entry point of that name, or (for a global called
/// directly, like `jQuery(...)`) the library's main entry (named by its first global).
fn library_call(c: &Collected, lib: LibId, name: &str, direct: bool) -> Target {
    let entry = c.libraries.get(lib).and_then(|l| {
        l.profile.entry(name).or_else(|| {
            direct
                .then(|| l.profile.globals.first())
                .flatten()
                .and_then(|main| l.profile.entry(main))
        })
    });
    Target::Library { lib, entry }
}

/// A method of a recognised library called on something the syntax does not name (a
/// chained call, `$('.x').addClass(...)`): the first library in `realm` with an entry point
/// of that name.
fn library_method(c: &Collected, realm: ScopeId, prop: &Atom) -> Option<Target> {
    c.libraries.iter().enumerate().find_map(|(id, l)| {
        let in_realm = l.profile.globals.first().is_some_and(|g| {
            c.scopes
                .get(realm)
                .and_then(|s| s.bindings.get(&Atom::from(*g)))
                == Some(&Binding::Library(id))
        });
        let entry = l.profile.entry(prop)?;
        in_realm.then_some(Target::Library {
            lib: id,
            entry: Some(entry),
        })
    })
}

fn resolve_global(c: &Collected, realm: ScopeId, name: &crate::ir::Atom, kind: CallKind) -> Target {
    match c.scopes.get(realm).and_then(|s| s.bindings.get(name)) {
        Some(Binding::Function(b) | Binding::Class(b)) => Target::Bodies(vec![*b]),
        Some(Binding::Library(l)) => library_call(c, *l, name, true),
        _ => match global_builtin(name).or_else(|| builtins::method_by_name(name)) {
            Some(b) => Target::Builtin(b),
            None => miss(kind),
        },
    }
}

fn resolve_ref(
    c: &Collected,
    scope: ScopeId,
    realm: ScopeId,
    callee: &CalleeRef,
    kind: CallKind,
) -> Target {
    match callee {
        CalleeRef::Body(b) => Target::Bodies(vec![*b]),
        CalleeRef::Name(name) => match c.lookup(scope, name) {
            Some(Binding::Function(b) | Binding::Class(b)) => Target::Bodies(vec![*b]),
            Some(Binding::Library(l)) => library_call(c, *l, name, true),
            // A variable that holds something the syntax does not show (a parameter, say).
            Some(_) => miss(kind),
            None => match global_builtin(name) {
                Some(b) => Target::Builtin(b),
                None => miss(kind),
            },
        },
        CalleeRef::GlobalName(name) => resolve_global(c, realm, name, kind),
        CalleeRef::Member { receiver, prop } => {
            if let Some(r) = receiver
                && let Some(Binding::Library(l)) = c.lookup(scope, r)
            {
                return library_call(c, *l, prop, false);
            }
            if let Some(r) = receiver
                && builtins::is_global_object(r)
                && c.lookup(scope, r).is_none()
            {
                if builtins::is_global_alias(r) {
                    return resolve_global(c, realm, prop, kind);
                }
                return Target::Builtin(builtins::global_member(r, prop));
            }
            if let Some(bodies) = c.methods.get(&(realm, prop.clone()))
                && !bodies.is_empty()
                && bodies.len() <= MAX_CANDIDATES
            {
                return Target::Bodies(bodies.clone());
            }
            match builtins::method_by_name(prop) {
                Some(b) => Target::Builtin(b),
                None => library_method(c, realm, prop).unwrap_or_else(|| miss(kind)),
            }
        }
        CalleeRef::Dynamic => miss(kind),
    }
}

/// The absolute URL of each worker site, when the syntax gives one. A string literal is
/// relative to the document (browsers resolve `new Worker(url)` against the document's base
/// URL, not the calling script's), except in a worker, where it is relative to the worker's
/// own script; `new URL(lit, import.meta.url)` is relative to the creating script.
pub fn worker_urls(c: &Collected, sources: &PageSources) -> Vec<Option<String>> {
    c.spawns
        .iter()
        .map(|spawn| {
            let script = c
                .bodies
                .get(spawn.body)
                .and_then(|b| b.script)
                .and_then(|i| sources.scripts.get(i));
            let script_url = script.and_then(|s| s.url.as_deref());
            let in_worker = script.is_some_and(|s| s.kind == ScriptKind::Worker);
            let literal_base = if in_worker {
                script_url.unwrap_or(&sources.url)
            } else {
                &sources.url
            };
            match &spawn.url {
                WorkerUrl::Literal(u) => url::resolve(literal_base, u),
                WorkerUrl::ScriptRelative(u) => url::resolve(script_url.unwrap_or(&sources.url), u),
                WorkerUrl::Unknown => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trip_counts() {
        assert_eq!(trip_count(0.0, 10.0, 1.0, false), Some(10.0));
        assert_eq!(trip_count(0.0, 10.0, 1.0, true), Some(11.0));
        assert_eq!(trip_count(10.0, 0.0, -1.0, false), Some(10.0));
        assert_eq!(trip_count(10.0, 0.0, -1.0, true), Some(11.0));
        assert_eq!(trip_count(0.0, 10.0, 3.0, false), Some(4.0));
        assert_eq!(trip_count(5.0, 0.0, 1.0, false), Some(0.0));
        assert_eq!(trip_count(0.0, f64::INFINITY, 1.0, false), None);
    }

    #[test]
    fn int32_semantics() {
        assert_eq!(to_int32(4_294_967_296.0 + 5.0), 5);
        assert_eq!(to_int32(-1.0), -1);
        assert_eq!(to_uint32(-1.0), u32::MAX);
        assert_eq!(to_int32(f64::NAN), 0);
        assert_eq!(to_int32(1.0).wrapping_shl(20), 1 << 20);
    }
}
