//! The cost pass: what running each body costs, including everything it calls.
//!
//! Costs are in abstract work units (one unit is about one simple JS operation: an arithmetic
//! operator, a property access, a comparison) and converted to milliseconds only at the end,
//! with the device's calibration. A body's cost is its own counted work plus its loops (body
//! cost times trip count), branches (a mixture of the arms), calls (the callee's total cost,
//! a builtin's table cost, or a wide guess for an unresolved callee), allocations and network
//! requests.
//!
//! Calls are evaluated bottom-up over the strongly connected components of the call graph
//! (petgraph's Tarjan components, which come callees first), so no body is priced before its
//! callees and nothing recurses along call chains, however long. Only the components some
//! path reaches are priced, when a path first asks for one of their bodies: on a page of
//! libraries that is a small share of them, and the answers are those of pricing them all.
//!
//! A component with a cycle (recursion, direct or mutual) is priced as a number of
//! activations of a typical member (the mixture of the members' own costs): counted from the
//! constant a self-recursion is started with when its recursive calls visibly shrink it
//! (`crate::recursion`: `fib(27)`), else the unknown loop's trip count (wider when activations
//! branch). For the large cycles that name-based method resolution creates in libraries it
//! avoids charging every member to every caller.
//!
//! Totals are per body, whatever the caller, with one exception: a body that loops over one of
//! its parameters (`function render(rows) { for (const r of rows) ... }`) is priced again at a
//! call site that hands it a value of known size (`render(items)`), with those loops' trip
//! counts set to that size. Only the callee's own loops are re-priced; what it passes on to
//! its own callees keeps their context-free totals.

use std::cell::Cell;
use std::collections::BTreeMap;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::builtins::Builtin;
use crate::dist::{Dist, MixtureMemo};
use crate::graph::{Edge, ExecGraph, Node};
use crate::ir::{Block, BodyId, Collected, Item, LoopId, NumExpr, SiteId};
use crate::libraries;
use crate::recursion;
use crate::resolve::{Resolution, Target};
use crate::weights::Class;

/// Parse and compile cost per source byte. V8 pre-parses lazily compiled functions at roughly
/// 100 MB/s on a mid-range laptop and fully parses and compiles top-level code several times
/// slower; ~10 ms per MB (1 ms per 100 KB) overall matches what DevTools shows as "Compile
/// Script" for typical bundles. At 1e6 units per ms that is 10 units per byte.
pub const PARSE_UNITS_PER_BYTE: f64 = 10.0;

/// Execution cost per byte of a script the estimator could not analyse (no source, refused,
/// unparseable): most top-level code only defines functions (p10), some runs real work.
pub const BY_SIZE_EXEC_UNITS_PER_BYTE: Dist = Dist::new(1.0, 10.0, 100.0);

/// Iterations of a loop whose trip count the syntax does not give (also the depth of an
/// unknown recursion).
pub const UNKNOWN_TRIPS: Dist = Dist::new(1.0, 10.0, 100.0);

/// Activations of a recursion that calls itself from two or more places per activation: it
/// grows exponentially with a depth the syntax does not give (fib(25) is 250,000 calls).
pub const BRANCHING_RECURSION_TRIPS: Dist = Dist::new(10.0, 1_000.0, 1_000_000.0);

/// A call to code the estimator could not identify: usually a small library function, now
/// and then something heavy.
pub const UNRESOLVED_CALL_UNITS: Dist = Dist::new(5.0, 50.0, 5_000.0);

/// An allocation whose size the syntax does not give (`new Float64Array(n)` with `n` unknown).
pub const UNKNOWN_ALLOC_BYTES: Dist = Dist::new(1_024.0, 65_536.0, 4_194_304.0);

/// Zero-filling fresh memory runs at ~10 GB/s: 0.1 units per byte at 1e6 units/ms.
pub const ALLOC_UNITS_PER_BYTE: f64 = 0.1;

/// Element count assumed when the capture does not report one (a small page).
pub const DEFAULT_DOM_NODES: f64 = 1_000.0;

/// Bytes a request of unknown size transfers, by API.
pub fn network_bytes(api: &str) -> Dist {
    match api {
        "import()" | "importScripts" => Dist::new(5_000.0, 50_000.0, 500_000.0),
        "WebSocket" | "EventSource" => Dist::new(1_000.0, 10_000.0, 1_000_000.0),
        _ => Dist::new(2_000.0, 20_000.0, 500_000.0),
    }
}

/// Deepest loop/branch nesting evaluated; the collect pass's depth guard keeps real input far
/// below it, this only bounds the recursion.
const MAX_BLOCK_DEPTH: u32 = 2_000;

/// CPU (work units), memory (bytes) and network (bytes) of running something once.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Cost {
    pub cpu: Dist,
    pub mem: Dist,
    pub net: Dist,
}

impl Cost {
    pub const ZERO: Cost = Cost {
        cpu: Dist::ZERO,
        mem: Dist::ZERO,
        net: Dist::ZERO,
    };

    pub fn cpu(units: Dist) -> Cost {
        Cost {
            cpu: units,
            ..Cost::ZERO
        }
    }

    pub fn add(&mut self, o: Cost) {
        self.cpu += o.cpu;
        self.mem += o.mem;
        self.net += o.net;
    }

    pub fn times(self, n: Dist) -> Cost {
        Cost {
            cpu: self.cpu.times(n),
            mem: self.mem.times(n),
            net: self.net.times(n),
        }
    }

    pub fn mixture(arms: &[Cost], memo: &MixtureMemo) -> Cost {
        match arms {
            [one] => return *one,
            [a, b] => {
                return Cost {
                    cpu: memo.mixture(&[a.cpu, b.cpu]),
                    mem: memo.mixture(&[a.mem, b.mem]),
                    net: memo.mixture(&[a.net, b.net]),
                };
            }
            _ => {}
        }
        // Mixed at every branch: no allocation for the usual few arms.
        let pick = |f: fn(&Cost) -> Dist| {
            let mut inline = [Dist::ZERO; 8];
            if arms.len() <= inline.len() {
                for (slot, a) in inline.iter_mut().zip(arms) {
                    *slot = f(a);
                }
                memo.mixture(inline.get(..arms.len()).unwrap_or(&[]))
            } else {
                memo.mixture(&arms.iter().map(f).collect::<Vec<_>>())
            }
        };
        Cost {
            cpu: pick(|c| c.cpu),
            mem: pick(|c| c.mem),
            net: pick(|c| c.net),
        }
    }
}

/// Each body's call sites as one flat list grouped by body (a counting sort), with where
/// each body's group starts; see [`CostModel::sites_of`].
fn sites_by_body(c: &Collected) -> (Vec<usize>, Vec<SiteId>) {
    let n = c.bodies.len();
    let mut start = vec![0usize; n + 1];
    for s in &c.sites {
        if let Some(slot) = start.get_mut(s.body + 1) {
            *slot += 1;
        }
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut next = start.clone();
    let mut list = vec![0; start[n]];
    for (i, s) in c.sites.iter().enumerate() {
        if let Some(at) = next.get_mut(s.body) {
            if let Some(slot) = list.get_mut(*at) {
                *slot = i;
            }
            *at += 1;
        }
    }
    (start, list)
}

/// Branch arms priced without allocating (`switch`es with more cases allocate).
const INLINE_ARMS: usize = 8;

/// Prices bodies; built once per estimate.
pub struct CostModel<'a> {
    c: &'a Collected,
    r: &'a Resolution,
    dom_nodes: f64,
    /// Total cost of each body (own work plus callees), once computed.
    totals: Vec<Cell<Option<Cost>>>,
    /// CPU of each body's straight-line part (outside its loops, callees' included): the
    /// code that runs as often as the body does, and so as cold as its caller's code.
    straights: Vec<Cell<Dist>>,
    /// The call sites in each body, read through [`CostModel::sites_of`]: body `b`'s are
    /// `site_list[site_start[b]..site_start[b + 1]]` (one flat list, not a `Vec` per body:
    /// only recursive bodies ever read it).
    site_start: Vec<usize>,
    site_list: Vec<SiteId>,
    /// Whether each body is part of a recursion (priced as a whole, never per call site).
    cyclic: Vec<Cell<bool>>,
    memo: MixtureMemo,
    order: CallOrder,
    /// Whether each component has been priced, or is queued to be by the request under way
    /// ([`CostModel::price_reachable`]).
    priced: Vec<Cell<bool>>,
}

/// The call graph as the cost pass walks it: its components in pricing order.
struct CallOrder {
    /// The strongly connected components, callees first, as body ids.
    components: Vec<Vec<BodyId>>,
    /// Each body's component.
    component: Vec<usize>,
    /// Each component's callee components (calls within a component left out).
    callee_components: Vec<Vec<usize>>,
    self_recursive: Vec<bool>,
    /// The call sites into each self-recursive body from elsewhere: where a recursion's
    /// starting argument comes from.
    callers: BTreeMap<BodyId, Vec<SiteId>>,
}

impl CallOrder {
    /// The call graph's components in pricing order, and what each calls.
    fn new(c: &Collected, r: &Resolution, g: &ExecGraph) -> Self {
        let n = c.bodies.len();
        // The call graph alone, one node per body (node index == body id).
        let mut calls: DiGraph<BodyId, ()> = DiGraph::with_capacity(n, 0);
        for b in 0..n {
            calls.add_node(b);
        }
        let mut self_recursive = vec![false; n];
        for e in g.graph.raw_edges() {
            if e.weight != Edge::Calls {
                continue;
            }
            let (Some(Node::Body(from)), Some(Node::Body(to))) = (
                g.graph.node_weight(e.source()),
                g.graph.node_weight(e.target()),
            ) else {
                continue;
            };
            if from == to {
                if let Some(flag) = self_recursive.get_mut(*from) {
                    *flag = true;
                }
            } else {
                calls.add_edge(NodeIndex::new(*from), NodeIndex::new(*to), ());
            }
        }
        let mut callers: BTreeMap<BodyId, Vec<SiteId>> = BTreeMap::new();
        if self_recursive.iter().any(|r| *r) {
            for (i, t) in r.sites.iter().enumerate() {
                let Target::Bodies(bodies) = t else { continue };
                let from = c.sites.get(i).map(|s| s.body);
                for &b in bodies {
                    if self_recursive.get(b).copied().unwrap_or(false) && from != Some(b) {
                        callers.entry(b).or_default().push(i);
                    }
                }
            }
        }
        // Tarjan's algorithm yields the components callees first (reverse topological order),
        // which is the order they must be priced in.
        let sccs = tarjan_scc(&calls);
        let mut component = vec![usize::MAX; n];
        for (ci, members) in sccs.iter().enumerate() {
            for m in members {
                if let Some(slot) = component.get_mut(m.index()) {
                    *slot = ci;
                }
            }
        }
        let mut callee_components = vec![Vec::new(); sccs.len()];
        for e in calls.raw_edges() {
            let (from, to) = (
                component.get(e.source().index()).copied(),
                component.get(e.target().index()).copied(),
            );
            if let (Some(from), Some(to)) = (from, to)
                && from != to
                && let Some(list) = callee_components.get_mut(from)
            {
                list.push(to);
            }
        }
        CallOrder {
            components: sccs
                .into_iter()
                .map(|members| members.into_iter().map(|m| m.index()).collect())
                .collect(),
            component,
            callee_components,
            self_recursive,
            callers,
        }
    }
}

impl<'a> CostModel<'a> {
    /// The model of a page. Bodies are priced when first asked for ([`CostModel::body`]),
    /// each after the bodies it calls: a page's paths reach only some of its bodies (a library
    /// defines hundreds of functions its page never calls), and pricing is the pass's work.
    /// `dom_nodes` is the page's element count (0 when unknown).
    pub fn new(c: &'a Collected, r: &'a Resolution, g: &ExecGraph, dom_nodes: u32) -> Self {
        let dom_nodes = if dom_nodes == 0 {
            DEFAULT_DOM_NODES
        } else {
            f64::from(dom_nodes)
        };
        let n = c.bodies.len();
        let (site_start, site_list) = sites_by_body(c);
        let order = CallOrder::new(c, r, g);
        CostModel {
            c,
            r,
            dom_nodes,
            totals: (0..n).map(|_| Cell::new(None)).collect(),
            straights: (0..n).map(|_| Cell::new(Dist::ZERO)).collect(),
            cyclic: (0..n).map(|_| Cell::new(false)).collect(),
            site_start,
            site_list,
            memo: MixtureMemo::default(),
            priced: (0..order.components.len())
                .map(|_| Cell::new(false))
                .collect(),
            order,
        }
    }

    /// The call sites in body `b`, in source order.
    fn sites_of(&self, b: BodyId) -> &[SiteId] {
        match (self.site_start.get(b), self.site_start.get(b + 1)) {
            (Some(&from), Some(&to)) => self.site_list.get(from..to).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// The total cost of running body `b` once from outside (a script's top level, a
    /// handler): its code runs cold, so its straight-line part pays the warm-up (see
    /// [`CostModel::warm`]). Unresolved-call cost if `b` is unknown.
    pub fn body(&self, b: BodyId) -> Cost {
        self.price_reachable(b);
        let mut cost = self.callee(b);
        cost.cpu += self.warm(self.straight(b), 1.0);
        cost
    }

    /// Body `b`'s straight-line CPU (zero if unknown or not priced).
    fn straight(&self, b: BodyId) -> Dist {
        self.straights.get(b).map_or(Dist::ZERO, Cell::get)
    }

    /// The total cost of one call of `b` from page code, whose caller accounts for warm-up.
    fn callee(&self, b: BodyId) -> Cost {
        self.totals
            .get(b)
            .and_then(Cell::get)
            .unwrap_or(Cost::cpu(UNRESOLVED_CALL_UNITS))
    }

    /// What running `straight` (CPU of code outside loops) costs beyond its optimised speed
    /// when that code runs `runs` times: the first `warm_trips` runs of any code go through
    /// V8's interpreter and baseline tiers, `warm_factor` times slower than the optimised
    /// code the unit weights describe. Spread over the `runs`, since the caller multiplies
    /// by them again.
    fn warm(&self, straight: Dist, runs: f64) -> Dist {
        let w = &self.c.weights;
        if w.warm_factor <= 0.0 || runs.is_nan() || runs < 1.0 {
            return Dist::ZERO;
        }
        straight.scale(w.warm_factor * runs.min(w.warm_trips) / runs)
    }

    pub fn builtin(&self, b: &Builtin) -> Cost {
        Cost {
            cpu: (b.cpu + Dist::exact(b.per_dom_node * self.dom_nodes))
                .scale(self.c.weights.get(b.class)),
            mem: b.mem,
            net: Dist::ZERO,
        }
    }

    /// A builtin working on a value of `items` items, when that is known.
    fn sized(&self, b: &Builtin, items: Option<f64>) -> Cost {
        let mut cost = self.builtin(b);
        if let Some(n) = items {
            let (units, bytes) = b.item_cost(n);
            cost.cpu += Dist::exact(units * self.c.weights.get(b.class));
            cost.mem += Dist::exact(bytes);
        }
        cost
    }

    /// Prices body `b`'s component and every component it reaches that is not priced yet,
    /// callees first, as pricing them all in order would have.
    fn price_reachable(&self, b: BodyId) {
        let Some(&start) = self.order.component.get(b) else {
            return;
        };
        if self.priced.get(start).is_none_or(Cell::get) {
            return;
        }
        let mut todo = vec![start];
        let mut found = Vec::new();
        if let Some(p) = self.priced.get(start) {
            // Marked when found, so each component is queued once; priced below.
            p.set(true);
        }
        while let Some(ci) = todo.pop() {
            found.push(ci);
            for &callee in self
                .order
                .callee_components
                .get(ci)
                .map_or(&[][..], Vec::as_slice)
            {
                if let Some(p) = self.priced.get(callee)
                    && !p.get()
                {
                    p.set(true);
                    todo.push(callee);
                }
            }
        }
        // Components come callees first: ascending order prices every callee before its
        // callers.
        found.sort_unstable();
        for ci in found {
            self.price_component(ci);
        }
    }

    fn price_component(&self, ci: usize) {
        let Some(members) = self.order.components.get(ci) else {
            return;
        };
        let members = members.as_slice();
        let component = self.order.component.as_slice();
        let cyclic = members.len() > 1
            || members
                .iter()
                .any(|m| self.order.self_recursive.get(*m).copied().unwrap_or(false));
        if !cyclic {
            // A component without a cycle is a single body (two bodies calling each other
            // are a cycle), priced on its own: most components.
            for &m in members {
                let (c, st) = self.own(m, component, ci);
                if let Some(slot) = self.totals.get(m) {
                    slot.set(Some(c));
                }
                if let Some(slot) = self.straights.get(m) {
                    slot.set(st);
                }
            }
            return;
        }
        let (own, straight): (Vec<Cost>, Vec<Dist>) =
            members.iter().map(|&m| self.own(m, component, ci)).unzip();
        // As many activations as a constant argument makes the recursion run (see
        // `recursion`), else an unknown number, each of a typical member; many more when an
        // activation makes several recursive calls (fib, tree walks).
        let derived = match members {
            [m] => self.recursion_trips(*m, &self.order.callers),
            _ => None,
        };
        let trips = match derived {
            Some(t) => t,
            None if self.branching(members, component, ci) => BRANCHING_RECURSION_TRIPS,
            None => UNKNOWN_TRIPS,
        };
        let mut total = Cost::mixture(&own, &self.memo).times(trips);
        // Recursion runs like a loop: its activations warm up as its own.
        total.cpu += self
            .warm(self.memo.mixture(&straight), trips.p50)
            .times(trips);
        for &m in members {
            if let Some(slot) = self.cyclic.get(m) {
                slot.set(true);
            }
            if let Some(slot) = self.totals.get(m) {
                slot.set(Some(total));
            }
            if let Some(slot) = self.straights.get(m) {
                slot.set(Dist::ZERO);
            }
        }
    }

    /// One run of body `m` of component `current`, calls into the component counted zero.
    fn own(&self, m: BodyId, component: &[usize], current: usize) -> (Cost, Dist) {
        match self.c.bodies.get(m) {
            Some(body) => self.block(&body.block, component, current, 0, 1.0, &[]),
            None => (Cost::ZERO, Dist::ZERO),
        }
    }

    /// How many activations a self-recursive body `m` runs when every call into it from
    /// elsewhere (`callers`) passes a constant in the parameter its recursive calls shrink:
    /// `fib(n - 1) + fib(n - 2)` from `fib(27)` is ~phi^27 activations, `f(n - 1)` from `f(N)`
    /// is N, `f(n / 2)` log N (see [`crate::recursion`]). `None` when any of that is not
    /// visible in the syntax (the recursion's depth is then unknown).
    fn recursion_trips(&self, m: BodyId, callers: &BTreeMap<BodyId, Vec<SiteId>>) -> Option<Dist> {
        let body = self.c.bodies.get(m)?;
        let own: Vec<SiteId> = self
            .sites_of(m)
            .iter()
            .copied()
            .filter(|i| matches!(self.r.sites.get(*i), Some(Target::Bodies(b)) if b.contains(&m)))
            .collect();
        let recursive_in_loop = recursion::calls_in_loops(self.c, &body.block, &own);
        if own.is_empty() || recursive_in_loop {
            return None;
        }
        let (position, steps) = (0..body.params.len()).find_map(|p| {
            let name = body.params.get(p)?.as_ref()?;
            let steps: Option<Vec<recursion::Step>> = own
                .iter()
                .map(|i| {
                    let site = self.c.sites.get(*i)?;
                    let arg = site.args.get(p).copied().flatten()?;
                    recursion::step(self.c, arg, name, body.scope)
                })
                .collect();
            Some((p, steps?))
        })?;
        let starts: Option<Vec<f64>> = callers
            .get(&m)?
            .iter()
            .map(|i| {
                let arg = self
                    .c
                    .sites
                    .get(*i)?
                    .args
                    .get(position)
                    .copied()
                    .flatten()?;
                self.r.nums.get(arg).copied().flatten()
            })
            .collect();
        let counts: Option<Vec<Dist>> = starts?
            .into_iter()
            .map(|n| recursion::activations(n, &steps).map(Dist::exact))
            .collect();
        let counts = counts?;
        (!counts.is_empty()).then(|| self.memo.mixture(&counts))
    }

    /// One call of `callee` from call site `site` when the callee loops over parameters the
    /// site hands sized values to (`render(items)` with `items` grown to 3,000): the callee's
    /// own code priced again with those loops' trip counts. `None` when nothing is known
    /// beyond the callee's context-free total.
    fn sized_call(
        &self,
        site: SiteId,
        callee: BodyId,
        component: &[usize],
        current: usize,
        depth: u32,
    ) -> Option<(Cost, Dist)> {
        let loops = self.r.param_loops.get(&callee)?;
        if self.cyclic.get(callee).is_none_or(Cell::get) || depth > MAX_BLOCK_DEPTH {
            return None;
        }
        let s = self.c.sites.get(site)?;
        let given: Vec<(LoopId, f64)> = loops
            .iter()
            .filter_map(|(l, p)| {
                let arg = s.args.get(*p).copied().flatten()?;
                match self.c.nums.get(arg)? {
                    NumExpr::Name { scope, name } => {
                        self.r.size(self.c, *scope, name).map(|n| (*l, n))
                    }
                    _ => None,
                }
            })
            .collect();
        if given.is_empty() {
            return None;
        }
        let body = self.c.bodies.get(callee)?;
        Some(self.block(&body.block, component, current, depth + 1, 1.0, &given))
    }

    /// Whether some member of the cycle `members` (component `current`) calls into the cycle
    /// from two or more call sites, so that activations multiply with depth.
    fn branching(&self, members: &[BodyId], component: &[usize], current: usize) -> bool {
        members.iter().any(|&m| {
            let inward = self
                .sites_of(m)
                .iter()
                .filter(|i| match self.r.sites.get(**i) {
                    Some(Target::Bodies(bodies)) => {
                        bodies.iter().any(|b| component.get(*b) == Some(&current))
                    }
                    _ => false,
                })
                .count();
            inward >= 2
        })
    }

    /// The cost of a block that runs `runs` times per run of its body, and the CPU of its
    /// straight-line JS (its own operations and its callees' straight parts, not its loops,
    /// builtins or allocations, whose speed does not depend on V8's tiers). Calls into
    /// `current` (the component being priced) count zero, since the component's recursion is
    /// priced as a whole. `given` are trip counts known from outside, for loops over the
    /// parameters of the body being priced for one call site.
    fn block(
        &self,
        b: &Block,
        component: &[usize],
        current: usize,
        depth: u32,
        runs: f64,
        given: &[(LoopId, f64)],
    ) -> (Cost, Dist) {
        let mut cost = Cost {
            cpu: Dist::exact(b.work),
            mem: Dist::exact(b.alloc),
            net: Dist::ZERO,
        };
        let mut straight = Dist::exact(b.work);
        if depth > MAX_BLOCK_DEPTH {
            return (cost, straight);
        }
        for item in self.c.items_of(b) {
            let c = match item {
                Item::Loop { spec, body } => {
                    let known = given
                        .iter()
                        .find(|(l, _)| l == spec)
                        .map(|(_, n)| *n)
                        .or_else(|| self.r.trips.get(*spec).copied().flatten());
                    let trips = match known {
                        Some(n) => Dist::exact(n),
                        None => UNKNOWN_TRIPS,
                    };
                    let inner = runs * trips.p50.max(1.0);
                    let (body_cost, body_straight) =
                        self.block(body, component, current, depth + 1, inner, given);
                    let mut c = body_cost.times(trips);
                    // The body's first runs are cold, the rest optimised.
                    c.cpu += self.warm(body_straight, inner).times(trips);
                    c
                }
                Item::Branch(arms) if arms.len as usize <= INLINE_ARMS => {
                    let arms = self.c.arms_of(*arms);
                    // Every `if` and `?:` is a branch: price the usual few arms without
                    // allocating.
                    let mut costs = [Cost::ZERO; INLINE_ARMS];
                    let mut straights = [Dist::ZERO; INLINE_ARMS];
                    for ((a, c), st) in arms.iter().zip(&mut costs).zip(&mut straights) {
                        (*c, *st) = self.block(a, component, current, depth + 1, runs, given);
                    }
                    let n = arms.len();
                    straight += self.memo.mixture(straights.get(..n).unwrap_or(&[]));
                    Cost::mixture(costs.get(..n).unwrap_or(&[]), &self.memo)
                }
                Item::Branch(arms) => {
                    let (costs, straights): (Vec<Cost>, Vec<Dist>) = self
                        .c
                        .arms_of(*arms)
                        .iter()
                        .map(|a| self.block(a, component, current, depth + 1, runs, given))
                        .unzip();
                    straight += self.memo.mixture(&straights);
                    Cost::mixture(&costs, &self.memo)
                }
                Item::Call(site) => match self.r.sites.get(*site) {
                    // One callee, the common case: no mixture to build.
                    Some(Target::Bodies(bodies))
                        if bodies.len() == 1
                            && bodies.first().and_then(|b| component.get(*b)) != Some(&current) =>
                    {
                        let callee = bodies.first().copied().unwrap_or(usize::MAX);
                        let (c, st) = self
                            .sized_call(*site, callee, component, current, depth)
                            .unwrap_or_else(|| (self.callee(callee), self.straight(callee)));
                        straight += st;
                        c
                    }
                    Some(Target::Bodies(bodies)) => {
                        let (costs, straights): (Vec<Cost>, Vec<Dist>) = bodies
                            .iter()
                            .map(|&callee| {
                                if component.get(callee) == Some(&current) {
                                    (Cost::ZERO, Dist::ZERO)
                                } else if let Some(sized) =
                                    self.sized_call(*site, callee, component, current, depth)
                                {
                                    sized
                                } else {
                                    let st = self.straights.get(callee).map(Cell::get);
                                    (self.callee(callee), st.unwrap_or(Dist::ZERO))
                                }
                            })
                            .unzip();
                        straight += self.memo.mixture(&straights);
                        Cost::mixture(&costs, &self.memo)
                    }
                    // Only builtins priced per item look their argument's size up.
                    Some(Target::Builtin(b)) if b.per_item > 0.0 || b.bytes_per_item > 0.0 => {
                        self.sized(b, self.r.site_items(self.c, *site))
                    }
                    Some(Target::Builtin(b)) => self.builtin(b),
                    Some(Target::Library { entry, .. }) => Cost::cpu(match entry {
                        // The first call's extra (lazy compilation) once, however many
                        // times the loops around this site run it.
                        Some(e) => {
                            e.cost(
                                self.r
                                    .site_items(self.c, *site)
                                    .map_or(libraries::UNKNOWN_ITEMS, Dist::exact),
                            ) + e.first_call().scale(1.0 / runs.max(1.0))
                        }
                        None => libraries::UNPROFILED_CALL_UNITS,
                    }),
                    Some(Target::Unresolved) | None => Cost::cpu(UNRESOLVED_CALL_UNITS),
                    Some(Target::Ignored) => Cost::ZERO,
                },
                Item::Builtin(b) => self.builtin(b),
                Item::Sized {
                    builtin,
                    scope,
                    name,
                } => self.sized(builtin, self.r.size(self.c, *scope, name)),
                Item::Alloc { count, elem_bytes } => {
                    let bytes = match self.r.nums.get(*count).copied().flatten() {
                        Some(n) => Dist::exact(n.max(0.0) * elem_bytes),
                        None => UNKNOWN_ALLOC_BYTES,
                    };
                    Cost {
                        cpu: bytes.scale(ALLOC_UNITS_PER_BYTE * self.c.weights.get(Class::Alloc)),
                        mem: bytes,
                        net: Dist::ZERO,
                    }
                }
                Item::Net(id) => Cost {
                    net: self
                        .c
                        .nets
                        .get(*id)
                        .map_or(network_bytes(""), |n| network_bytes(n.api)),
                    ..Cost::ZERO
                },
            };
            cost.add(c);
        }
        (cost, straight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pricing on demand gives every body the total that pricing them all in order gives,
    /// whichever body is asked for first: recursion (direct and mutual), a body priced again
    /// for a sized call, and functions nothing calls.
    #[test]
    fn bodies_cost_the_same_whatever_order_they_are_asked_for() {
        let src = r#"
            function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
            function even(n) { return n === 0 ? true : odd(n - 1); }
            function odd(n) { return n === 0 ? false : even(n - 1); }
            function render(rows) { let s = ''; for (const r of rows) { s += r; } return s; }
            function unused(a) { for (let i = 0; i < a; i++) { helper(i); } }
            function helper(i) { return [i, i * 2].sort(); }
            const items = [];
            for (let i = 0; i < 500; i++) { items.push(i); }
            render(items);
            fib(20);
            even(10);
            document.getElementById('go').addEventListener('click', () => { unused(100); render(items); });
        "#;
        let sources = crate::one_script_page("http://127.0.0.1/", src.into());
        let a = crate::analyse(&sources);
        let n = a.collected.bodies.len();
        assert!(n >= 8, "{n} bodies");
        let forward = CostModel::new(&a.collected, &a.resolution, &a.graph, 0);
        let backward = CostModel::new(&a.collected, &a.resolution, &a.graph, 0);
        let ahead: Vec<Cost> = (0..n).map(|b| forward.body(b)).collect();
        let mut behind: Vec<Cost> = (0..n).rev().map(|b| backward.body(b)).collect();
        behind.reverse();
        assert_eq!(ahead, behind);
        // And a body asked for alone costs what it costs among the others.
        for (b, cost) in ahead.iter().enumerate() {
            let alone = CostModel::new(&a.collected, &a.resolution, &a.graph, 0);
            assert_eq!(alone.body(b), *cost, "body {b}");
        }
    }
}
