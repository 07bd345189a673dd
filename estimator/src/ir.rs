//! The page model the collect pass builds from the ASTs and the later passes read.
//!
//! Everything here is plain data indexed by small integers, with no reference into any AST:
//! each script's AST is dropped as soon as it has been collected, so peak memory is one AST,
//! not all of them. Names that need the whole page to mean something (a call to a function
//! declared in a later script, a loop bound that is a `const` declared further down) are kept
//! symbolic here and settled by `resolve.rs`.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hash, Hasher};

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

/// The names bound anywhere on the page, as a Bloom filter over the hash each atom already
/// carries: two bits per name in 2^19 (64 KiB). "Not bound" answers are exact, which is all
/// [`Collected::lookup`] needs to skip a name bound nowhere; a false "maybe" (about 2% at
/// 40,000 names) only walks the scope chain. It replaced a set of atoms whose probe and insert,
/// a cache miss each on a table of tens of thousands, were 2% of an estimate.
#[derive(Clone)]
pub struct NameFilter {
    words: Box<[u64]>,
}

/// log2 of the filter's bits.
const FILTER_BITS: u32 = 19;

impl Default for NameFilter {
    fn default() -> Self {
        NameFilter {
            words: vec![0; 1 << (FILTER_BITS - 6)].into_boxed_slice(),
        }
    }
}

impl std::fmt::Debug for NameFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set: u32 = self.words.iter().map(|w| w.count_ones()).sum();
        write!(f, "NameFilter({set} of {} bits set)", 1u64 << FILTER_BITS)
    }
}

impl NameFilter {
    /// The two bit positions of `name`, from its mixed hash.
    fn bits(name: &Atom) -> [usize; 2] {
        let mut h = AtomHasher::default();
        name.hash(&mut h);
        let mixed = h.finish();
        let mask = (1u64 << FILTER_BITS) - 1;
        [
            (mixed >> (64 - FILTER_BITS)) as usize,
            ((mixed >> (64 - 2 * FILTER_BITS)) & mask) as usize,
        ]
    }

    pub fn insert(&mut self, name: &Atom) {
        for bit in Self::bits(name) {
            if let Some(word) = self.words.get_mut(bit / 64) {
                *word |= 1 << (bit % 64);
            }
        }
    }

    /// False only if `name` was never inserted.
    pub fn may_contain(&self, name: &Atom) -> bool {
        Self::bits(name).iter().all(|&bit| {
            self.words
                .get(bit / 64)
                .is_some_and(|w| w & (1 << (bit % 64)) != 0)
        })
    }
}

/// Hashes an [`Atom`] from the hash it already carries (`Atom::hash` writes one `u64`),
/// mixed: an atom of up to 7 bytes is stored inline and "hashes" to its raw bits, whose low
/// byte is a tag that only encodes the length, and whose top byte is zero. hashbrown picks
/// the bucket from the low bits and its tag from the top 7, so unmixed, every short name of a
/// scope (most names of minified code) started probing at the same group with the same tag.
#[derive(Default)]
pub struct AtomHasher(u64);

impl Hasher for AtomHasher {
    fn finish(&self) -> u64 {
        // MurmurHash3's 64-bit finaliser: every input bit reaches the low and the top bits.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
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
    pub bound_names: NameFilter,
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
        if !self.bound_names.may_contain(name) {
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
                self.bound_names.insert(slot.key());
                slot.insert(binding);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The filter never forgets a name (a forgotten one would resolve as a global), whatever
    /// store its atom came from, and rarely claims one it never saw.
    #[test]
    fn name_filter_has_no_false_negatives_and_few_false_positives() {
        let mut filter = NameFilter::default();
        for i in 0..40_000 {
            filter.insert(&Atom::from(format!("name{i}")));
        }
        // Short names are stored inline in the atom, long ones behind a pointer: both kinds,
        // built again from their text, are found.
        for i in 0..40_000 {
            assert!(
                filter.may_contain(&Atom::from(format!("name{i}"))),
                "name{i}"
            );
        }
        for short in ["a", "b", "$", "_x"] {
            filter.insert(&Atom::from(short));
            assert!(filter.may_contain(&Atom::from(short)), "{short}");
        }
        let strangers = (0..10_000)
            .filter(|i| filter.may_contain(&Atom::from(format!("other{i}"))))
            .count();
        // About 2% expected at this load.
        assert!(
            strangers < 500,
            "{strangers} of 10,000 unbound names look bound"
        );
    }
}
