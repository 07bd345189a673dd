//! The page model the collect pass builds from the ASTs and the later passes read.
//!
//! Everything here is plain data indexed by small integers, with no reference into any AST:
//! each script's AST is dropped as soon as it has been collected, so peak memory is one AST,
//! not all of them. Names that need the whole page to mean something (a call to a function
//! declared in a later script, a loop bound that is a `const` declared further down) are kept
//! symbolic here and settled by `resolve.rs`.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use crate::budget::Spend;
use crate::builtins::Builtin;
use crate::libraries::{LibraryProfile, Recognised};
use crate::weights::Weights;

/// swc's interned string (`swc_atoms::Atom`). swc_ecma_ast does not re-export it and the
/// workspace does not depend on swc_atoms directly, so it is named through `swc_ecma_ast::Id`,
/// which is `(Atom, SyntaxContext)`. Cloning one is a reference-count increment.
pub type Atom = <swc_ecma_ast::Id as First>::T;

pub trait First {
    type T;
}

impl<A, B> First for (A, B) {
    type T = A;
}

pub type BodyId = usize;
pub type ScopeId = usize;
pub type SiteId = usize;
pub type NumId = usize;
pub type LoopId = usize;
pub type RegId = usize;
pub type SpawnId = usize;
pub type NetId = usize;
pub type LibId = usize;

/// What kind of code a [`Body`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// A script's top-level code.
    Script,
    Function,
    Arrow,
    Method,
    /// A class: constructor plus field initialisers.
    Class,
    /// An inline `on*` attribute's code.
    InlineHandler,
}

/// A piece of code that runs as a unit when called: a script's top level or a function.
#[derive(Debug, Clone)]
pub struct Body {
    pub kind: BodyKind,
    pub name: Option<String>,
    /// Index into `PageSources.scripts`, or `None` for inline handlers.
    pub script: Option<usize>,
    /// The body's own scope (parameters, locals).
    pub scope: ScopeId,
    /// The body whose code creates this one.
    pub parent: Option<BodyId>,
    pub block: Block,
    /// Positions of the parameters this body calls itself (`function each(xs, cb) { cb() }`),
    /// sorted: a function passed in such a position is a callback that really runs.
    pub param_calls: Vec<usize>,
    /// Parameter names by position (`None` for a destructuring pattern): what a recursive
    /// call's arguments are compared with to see how the recursion shrinks its input.
    pub params: Vec<Option<Atom>>,
}

/// The cost-relevant content of straight-line code: work that is counted directly, plus the
/// items whose cost is only known after resolution.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Block {
    /// Work units counted from the syntax (operators, statements, calls' own overhead).
    pub work: f64,
    /// Bytes allocated with a size known from the syntax (object and array literals).
    pub alloc: f64,
    /// Its items, in [`Collected::items`] (read them with [`Collected::items_of`]).
    pub items: Span,
}

/// A run of consecutive entries in one of the page model's flat tables ([`Collected::items`]
/// or [`Collected::arms`]). Blocks nest, but their contents live in those tables rather than
/// in a `Vec` each: a page has tens of thousands of blocks, and one allocation (and one free)
/// per block was a visible share of the estimate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub len: u32,
}

impl Span {
    fn range(self) -> std::ops::Range<usize> {
        let start = self.start as usize;
        start..start + self.len as usize
    }
}

#[derive(Debug, Clone)]
pub enum Item {
    /// A loop: its body runs the loop's trip count times.
    Loop { spec: LoopId, body: Block },
    /// Exactly one of the arms runs (if/else, switch, `?:`, `&&`). An arm may be empty. The
    /// arms are in [`Collected::arms`] (read them with [`Collected::arms_of`]).
    Branch(Span),
    /// A call site; what it costs depends on what it resolves to.
    Call(SiteId),
    /// A builtin known from the syntax alone (an `innerHTML` store, a layout read).
    Builtin(&'static Builtin),
    /// A builtin whose cost scales with the size of a named value (`el.innerHTML = html`).
    Sized {
        builtin: &'static Builtin,
        scope: ScopeId,
        name: Atom,
    },
    /// An allocation of `count` elements of `elem_bytes` each (typed arrays, `new Array(n)`).
    Alloc { count: NumId, elem_bytes: f64 },
    /// A network request.
    Net(NetId),
}

/// A binding of a name in a scope, as far as the cost model cares.
#[derive(Debug, Clone, PartialEq)]
pub enum Binding {
    Function(BodyId),
    Class(BodyId),
    /// A `const` bound to a numeric expression.
    Const(NumId),
    /// A `const` bound to a DOM element looked up by a literal selector (for path names).
    Element(String),
    /// A global a recognised library defines (`$`, `_`), by index into
    /// `Collected.libraries`.
    Library(LibId),
    /// Anything else (a parameter, a `let`, an import).
    Other,
}

#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub parent: Option<ScopeId>,
    /// Looked up once per name per enclosing scope for every reference the walk resolves: a
    /// hash map on the hash swc's atoms carry, not an ordered map comparing their text.
    /// Never iterated, so its order cannot make output differ between runs.
    pub bindings: HashMap<Atom, Binding, BuildHasherDefault<AtomHasher>>,
}

/// Hashes an [`Atom`] as the hash it already carries (`Atom::hash` writes one `u64`).
#[derive(Default)]
pub struct AtomHasher(u64);

impl Hasher for AtomHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not how atoms hash; kept correct for anything else (FNV-1a).
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
}

/// How a call site names its callee.
#[derive(Debug, Clone, PartialEq)]
pub enum CalleeRef {
    /// A plain identifier, looked up through the lexical scopes.
    Name(Atom),
    /// `window.f()` and friends: looked up in the global scope only.
    GlobalName(Atom),
    /// `receiver.prop()`, where `receiver` is the root identifier when it is one.
    Member { receiver: Option<Atom>, prop: Atom },
    /// A function written at the call site (an IIFE or an inline callback).
    Body(BodyId),
    /// Anything the syntax does not name (`f()()`, `a[b]()`).
    Dynamic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// An ordinary call or `new`: unresolved ones are counted.
    Direct,
    /// A function passed as an argument that the callee is assumed to call: if it does not
    /// name a function, it is simply not a callback and is ignored.
    Callback,
}

#[derive(Debug, Clone)]
pub struct CallSite {
    pub body: BodyId,
    pub scope: ScopeId,
    pub callee: CalleeRef,
    pub kind: CallKind,
    /// For a callback: the call it is an argument of, and its position there.
    pub host: Option<(SiteId, usize)>,
    /// What the call's cost may scale with.
    pub sizes: SizeRefs,
    /// The leading arguments of a call by plain name (`fib(n - 1)`, `fib(27)`) as numeric
    /// expressions, when they look numeric: the depth of a recursion comes from them.
    pub args: Vec<Option<NumId>>,
}

/// The named values a call's cost may scale with: its receiver (`rows.sort()`) and its first
/// argument (`JSON.stringify(rows)`, `_.sortBy(rows)`), when they are plain identifiers; else
/// the identifiers nested in its arguments (`render(h('ul', null, items))`,
/// `new Chart(el, { data: { labels: nums } })`), of which the largest known one counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SizeRefs {
    pub receiver: Option<Atom>,
    pub arg: Option<Atom>,
    pub nested: Vec<Atom>,
}

/// A named array or string that grows (`a.push(x)`, `s += x`) inside the given loops (none:
/// once): one item per trip of all of them.
#[derive(Debug, Clone)]
pub struct Growth {
    pub scope: ScopeId,
    pub name: Atom,
    pub loops: Vec<LoopId>,
}

/// A numeric expression kept symbolic until constants are known.
#[derive(Debug, Clone, PartialEq)]
pub enum NumExpr {
    Lit(f64),
    Name {
        scope: ScopeId,
        name: Atom,
    },
    Neg(NumId),
    Bin {
        op: NumOp,
        left: NumId,
        right: NumId,
    },
    /// `Math.floor(x)` and friends.
    Round(RoundOp, NumId),
    Unknown,
}

/// The `Math` rounding functions a numeric expression may go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundOp {
    Floor,
    Ceil,
    Round,
    Trunc,
}

impl RoundOp {
    pub fn from_name(name: &str) -> Option<RoundOp> {
        match name {
            "floor" => Some(RoundOp::Floor),
            "ceil" => Some(RoundOp::Ceil),
            "round" => Some(RoundOp::Round),
            "trunc" => Some(RoundOp::Trunc),
            _ => None,
        }
    }

    pub fn apply(self, x: f64) -> f64 {
        match self {
            RoundOp::Floor => x.floor(),
            RoundOp::Ceil => x.ceil(),
            // JS rounds halves up, Rust away from zero.
            RoundOp::Round => (x + 0.5).floor(),
            RoundOp::Trunc => x.trunc(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Exp,
    Shl,
    Shr,
    UShr,
    BitOr,
    BitAnd,
    BitXor,
}

/// What the syntax says about how often a loop runs.
#[derive(Debug, Clone, PartialEq)]
pub enum LoopSpec {
    /// `for (i = start; i < bound; i += step)` (or `<=`, or counting down with `>`/`>=`).
    Counted {
        start: NumId,
        bound: NumId,
        step: f64,
        inclusive: bool,
    },
    /// One trip per item of a named value: `for (const x of xs)`, `xs.forEach(f)`. Known when
    /// the page grows `xs` in counted loops, or, for a parameter, from what each call hands
    /// over (`render(items)`).
    Each { scope: ScopeId, name: Atom },
    /// A loop whose trip count the syntax does not give (while, for-in, recursion).
    Unknown,
}

/// A handler or timer registration.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The body whose code registers it; `None` for an inline attribute (the document).
    pub body: Option<BodyId>,
    pub scope: ScopeId,
    pub kind: RegKind,
    pub callback: Option<CalleeRef>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RegKind {
    /// An event handler: the event name (`click`) and a description of the target.
    Event { event: String, target: String },
    /// A timer API (`setTimeout`, ...), with its delay argument when it has one.
    Timer {
        api: &'static str,
        delay: Option<NumId>,
    },
}

/// Where a worker's script URL comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerUrl {
    /// A string literal, relative to the document's URL (for a page) or the worker's own URL.
    Literal(String),
    /// `new URL(lit, import.meta.url)`: relative to the creating script's URL.
    ScriptRelative(String),
    /// Computed at run time.
    Unknown,
}

/// A `new Worker(url)` or `new SharedWorker(url)` site.
#[derive(Debug, Clone)]
pub struct Spawn {
    pub body: BodyId,
    pub shared: bool,
    pub url: WorkerUrl,
}

/// A network request site.
#[derive(Debug, Clone)]
pub struct NetRequest {
    pub body: BodyId,
    pub api: &'static str,
    pub url: Option<String>,
}

/// How a script was analysed, for the graph and the load path.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptStatus {
    /// Collected; its top-level code is this body.
    Parsed(BodyId),
    /// Not analysed (no source, refused, or unparseable): priced by size.
    BySize,
    /// A recognised library, priced from its measured profile (`Collected.libraries`).
    Library(LibId),
}

/// A script recognised as a library with a measured profile.
#[derive(Debug, Clone)]
pub struct LoadedLibrary {
    pub profile: &'static LibraryProfile,
    pub how: Recognised,
    /// Index into `PageSources.scripts`.
    pub script: usize,
    pub bytes: u64,
}

/// Everything the collect pass found on the page.
#[derive(Debug, Default)]
pub struct Collected {
    pub bodies: Vec<Body>,
    /// Every block's items, each block's together (see [`Span`]).
    pub items: Vec<Item>,
    /// Every branch's arms, each branch's together.
    pub arms: Vec<Block>,
    pub scopes: Vec<Scope>,
    /// Every name bound in some scope: a name outside it (`document`, `Math`, most globals
    /// a page calls) is bound nowhere, which [`Collected::lookup`] then knows without
    /// probing each scope of the chain. Kept by [`Collected::bind`].
    pub bound_names: HashSet<Atom, BuildHasherDefault<AtomHasher>>,
    pub sites: Vec<CallSite>,
    pub nums: Vec<NumExpr>,
    pub loops: Vec<LoopSpec>,
    pub registrations: Vec<Registration>,
    pub spawns: Vec<Spawn>,
    pub nets: Vec<NetRequest>,
    /// Per script, in `PageSources.scripts` order.
    pub scripts: Vec<ScriptStatus>,
    /// Methods by (global scope of their realm, property name), each list in discovery
    /// order. Hashed, not ordered: comparing atoms compares their text.
    pub methods: HashMap<(ScopeId, Atom), Vec<BodyId>, BuildHasherDefault<AtomHasher>>,
    /// `name = function () {}` assignments, bound during resolution (the name may be
    /// declared anywhere in the scope chain, even later in the page).
    pub assigned_functions: Vec<(ScopeId, Atom, BodyId)>,
    /// The realm (global scope) of each body, by body id.
    pub realms: Vec<ScopeId>,
    pub parse_errors: u32,
    pub warnings: Vec<String>,
    /// Values that grow in loops, for the sizes of what calls are handed.
    pub growths: Vec<Growth>,
    /// Recognised library scripts, in page order.
    pub libraries: Vec<LoadedLibrary>,
    /// The page's work budget, spent as scripts are parsed and walked.
    pub budget: Spend,
    /// Per script index: trailing bytes the walk did not reach because the budget ran out.
    pub unanalysed_bytes: BTreeMap<usize, u64>,
    /// The unit weights work is counted with.
    pub weights: Weights,
}

impl Collected {
    pub fn new_scope(&mut self, parent: Option<ScopeId>) -> ScopeId {
        self.scopes.push(Scope {
            parent,
            bindings: HashMap::default(),
        });
        self.scopes.len() - 1
    }

    /// The items of `block`.
    pub fn items_of(&self, block: &Block) -> &[Item] {
        self.items.get(block.items.range()).unwrap_or(&[])
    }

    /// The arms of a branch.
    pub fn arms_of(&self, arms: Span) -> &[Block] {
        self.arms.get(arms.range()).unwrap_or(&[])
    }

    pub fn num(&mut self, e: NumExpr) -> NumId {
        self.nums.push(e);
        self.nums.len() - 1
    }

    /// Looks `name` up from `scope` outwards.
    pub fn lookup(&self, mut scope: ScopeId, name: &Atom) -> Option<&Binding> {
        if !self.bound_names.contains(name) {
            return None;
        }
        // The scope chain is a tree built parent-first, so it ends; the bound is defensive.
        for _ in 0..=self.scopes.len() {
            let s = self.scopes.get(scope)?;
            if let Some(b) = s.bindings.get(name) {
                return Some(b);
            }
            scope = s.parent?;
        }
        None
    }

    /// Binds `name` in `scope`. A function binding wins over a plain one (function
    /// declarations are hoisted over `var`s of the same name), and a later function
    /// declaration replaces an earlier one, as in the browser.
    pub fn bind(&mut self, scope: ScopeId, name: Atom, binding: Binding) {
        let Some(s) = self.scopes.get_mut(scope) else {
            return;
        };
        // One probe of the scope's table; the page-wide set only hears of a name the first
        // time some scope binds it here.
        match s.bindings.entry(name) {
            Entry::Occupied(mut held) => {
                if !(binding == Binding::Other
                    && matches!(held.get(), Binding::Function(_) | Binding::Class(_)))
                {
                    held.insert(binding);
                }
            }
            Entry::Vacant(slot) => {
                if !self.bound_names.contains(slot.key()) {
                    self.bound_names.insert(slot.key().clone());
                }
                slot.insert(binding);
            }
        }
    }
}
