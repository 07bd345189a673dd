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
//! The walk is guarded against deep ASTs even though `parse/prescan.rs` refuses the worst input:
//! left-deep operator and member chains are followed in loops instead of recursion, `else if`
//! chains become one flat branch, and anything nested deeper than [`MAX_AST_DEPTH`] is skipped
//! with a warning, so the walk's stack use is bounded whatever swc accepted.
//!
//! One concern per file, all of them methods of the one [`Collector`] walking the AST:
//!
//! * `walk.rs`: the `Visit` entry points, statements and expression dispatch;
//! * `scopes.rs`: functions, arrows, classes, declarations and the scopes they bind into;
//! * `calls.rs`: call and `new` sites, callback arguments;
//! * `handlers.rs`: event handler and timer registrations, and how their targets read;
//! * `requests.rs`: network requests and worker creation;
//! * `loops.rs`: loops, trip-count specs and the numeric expressions behind them;
//! * `exprs.rs`: operators, member chains, literals, assignments and allocations;
//! * `syntax.rs`: context-free helpers that read a piece of syntax.

mod calls;
mod exprs;
mod handlers;
mod loops;
mod requests;
mod scopes;
mod syntax;
mod walk;

use swc_ecma_ast::Program;
use swc_ecma_visit::VisitWith;

use crate::ir::{Atom, Binding, Block, Body, BodyId, BodyKind, Collected, Item, ScopeId, Span};
use crate::weights::Class;

/// Deepest expression/statement nesting the walk descends into. Past this, code is skipped
/// (and the script gets a warning). The prescan already refuses more than 400 brackets, so
/// this only bites on exotic input; it bounds the walk's stack use at roughly this many times
/// a few hundred bytes.
pub const MAX_AST_DEPTH: u32 = 1_000;

/// Work units per statement (dispatch, the statement's own bookkeeping).
const STMT_UNITS: f64 = 1.0;
/// Work units of `/`, `%` (and their assignments): integer division takes 20-40 cycles where
/// an addition takes one, and a loop doing one of them spends most of its time there.
const DIVISION_UNITS: f64 = 10.0;
/// Work units of `**`: a call into the math library.
const POWER_UNITS: f64 = 20.0;
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
        current: Open::default(),
        open_items: Vec::new(),
        open_arms: Vec::new(),
        loop_depth: 0,
        loop_ids: Vec::new(),
        top_level: target.kind == BodyKind::Script,
        depth: 0,
        truncated: false,
        out_of_budget: false,
        unseen_from: 0,
    };
    program.visit_with(&mut c);
    let block = c.close(Open::default());
    let truncated = c.truncated;
    let out_of_budget = c.out_of_budget;
    let unseen_from = c.unseen_from;
    if let Some(b) = out.bodies.get_mut(body) {
        b.block = block;
    }
    if out_of_budget && let Some(spent) = out.budget.nodes_spent() {
        // The walk goes in source order, so what follows the first node refused is what it
        // did not see; that part is priced by its size.
        let rest = (target.src.len() as u64).saturating_sub(u64::from(unseen_from));
        if let Some(script) = target.script {
            out.unanalysed_bytes.insert(script, rest);
        }
        out.warnings.push(format!(
            "{}: {spent}; the last {rest} bytes were not analysed and are priced by their size",
            target.label
        ));
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
        params: Vec::new(),
    });
    out.realms.push(realm);
    out.bodies.len() - 1
}

/// The block being collected: its counted work so far, and where its items start in
/// `Collector::open_items`.
#[derive(Default)]
struct Open {
    work: f64,
    alloc: f64,
    items: usize,
}

/// The span of table entries `start..end`. A page's tables stay far below `u32::MAX`
/// entries (the work budget bounds the nodes walked); saturating keeps it total.
fn span(start: usize, end: usize) -> Span {
    let start = u32::try_from(start).unwrap_or(u32::MAX);
    let end = u32::try_from(end).unwrap_or(u32::MAX);
    Span {
        start,
        len: end.saturating_sub(start),
    }
}

struct Collector<'o, 's> {
    out: &'o mut Collected,
    src: &'s str,
    script: Option<usize>,
    realm: ScopeId,
    worker: bool,
    /// The body being collected and its scope.
    body: BodyId,
    /// Whether the code being collected is a script's or module's top level, where variables
    /// live in the script context (or on the global object), not in registers.
    top_level: bool,
    scope: ScopeId,
    /// The current body's parameter names by position (`None` for destructuring patterns).
    params: Vec<Option<Atom>>,
    /// The innermost block under construction (loop bodies and branch arms nest); its items
    /// so far are `open_items[current.items..]`.
    current: Open,
    /// The items of the blocks open from the body's top down to `current`, each block's
    /// after its parent's: a block's items move to `Collected::items` when it closes.
    open_items: Vec<Item>,
    /// Arms of branches being collected, likewise moved to `Collected::arms` as a whole.
    open_arms: Vec<Block>,
    loop_depth: u32,
    /// The loops (by spec id) enclosing the current point of the current body, outermost first.
    loop_ids: Vec<crate::ir::LoopId>,
    depth: u32,
    truncated: bool,
    /// Whether the page's node budget ran out during this walk.
    out_of_budget: bool,
    /// Byte offset of the first node the exhausted budget refused (what follows was not seen).
    unseen_from: u32,
}

impl Collector<'_, '_> {
    /// Enters a node, unless it is too deep or the page's node budget is spent. `lo` gives the
    /// node's swc start position; it is asked for only when the budget runs out here (finding
    /// a node's span is a match over its kinds, once per node of the page otherwise).
    fn enter(&mut self, lo: impl FnOnce() -> u32) -> bool {
        if self.depth >= MAX_AST_DEPTH {
            self.truncated = true;
            return false;
        }
        if !self.out.budget.visit() {
            if !self.out_of_budget {
                // swc positions start at 1.
                self.unseen_from = lo().saturating_sub(1);
            }
            self.out_of_budget = true;
            return false;
        }
        self.depth += 1;
        true
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Counts `units` of plain operations (of top-level code, when at a script's top level).
    fn work(&mut self, units: f64) {
        let class = if self.top_level {
            Class::TopLevelOp
        } else {
            Class::Op
        };
        self.work_as(class, units);
    }

    /// Counts `units` of work of operation class `class`, at that class's fitted weight.
    fn work_as(&mut self, class: Class, units: f64) {
        self.current.work += units * self.out.weights.get(class);
    }

    fn alloc(&mut self, bytes: f64) {
        self.current.alloc += bytes;
    }

    fn item(&mut self, item: Item) {
        self.open_items.push(item);
    }

    /// Collects what `f` walks as a block of its own (a loop body, a branch arm, a function).
    fn nested(&mut self, f: impl FnOnce(&mut Self)) -> Block {
        let outer = std::mem::replace(
            &mut self.current,
            Open {
                items: self.open_items.len(),
                ..Open::default()
            },
        );
        f(self);
        self.close(outer)
    }

    /// Ends the current block, moving its items to the page model, and makes `outer` current.
    fn close(&mut self, outer: Open) -> Block {
        let done = std::mem::replace(&mut self.current, outer);
        let start = self.out.items.len();
        let from = done.items.min(self.open_items.len());
        self.out.items.extend(self.open_items.drain(from..));
        Block {
            work: done.work,
            alloc: done.alloc,
            items: span(start, self.out.items.len()),
        }
    }

    /// Where the next branch's arms start in `open_arms`; pass it to [`Collector::branch`].
    fn arms_start(&self) -> usize {
        self.open_arms.len()
    }

    fn arm(&mut self, block: Block) {
        self.open_arms.push(block);
    }

    /// Records a branch whose arms were added with [`Collector::arm`] since `start`.
    fn branch(&mut self, start: usize) {
        let first = self.out.arms.len();
        let from = start.min(self.open_arms.len());
        self.out.arms.extend(self.open_arms.drain(from..));
        let arms = span(first, self.out.arms.len());
        self.item(Item::Branch(arms));
    }

    /// A branch of `arm` against nothing (`a && b()`, `try`/`catch`).
    fn maybe(&mut self, arm: Block) {
        let start = self.arms_start();
        self.arm(arm);
        self.arm(Block::default());
        self.branch(start);
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
}
