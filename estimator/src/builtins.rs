//! The table of browser and language builtins the estimator knows by name, with their costs.
//!
//! A call the estimator cannot resolve to page code is either a known builtin (priced here,
//! not counted as unresolved) or unresolved. Costs are in work units (one unit is about one
//! simple JS operation, see `cost.rs`). Builtins whose cost depends on data the estimator
//! cannot see (array lengths, string sizes, DOM shape) carry a wide distribution; the DOM
//! queries also scale with the page's element count when the capture reports it.
//!
//! The numbers are order-of-magnitude guesses from how these operations behave in V8 and
//! Blink (a `sort` of a few hundred elements, a `JSON.parse` of a few KB, a forced layout of
//! a small page); the later cost-model issue is where they get measured.

use crate::dist::Dist;
use crate::weights::Class;

/// What one call (or property access) of a builtin costs beyond the call itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Builtin {
    pub name: &'static str,
    /// Work units.
    pub cpu: Dist,
    /// Extra units per DOM element of the page (selector matching walks the tree).
    pub per_dom_node: f64,
    /// Bytes allocated.
    pub mem: Dist,
    /// Extra units per item of the value the call works on, when its size is known (an array
    /// pushed in counted loops, a string appended to in them); see [`Builtin::sized`].
    pub per_item: f64,
    /// Whether the per-item work grows as `n log n` (sorting) rather than `n`.
    pub sorts: bool,
    /// Extra bytes allocated per item (copies and results).
    pub bytes_per_item: f64,
    /// The operation class whose fitted weight scales this builtin's CPU cost.
    pub class: Class,
}

impl Builtin {
    /// The same builtin with a per-item cost.
    const fn sized(self, per_item: f64, bytes_per_item: f64, sorts: bool) -> Builtin {
        Builtin {
            per_item,
            bytes_per_item,
            sorts,
            ..self
        }
    }

    /// The same builtin in operation class `class`.
    const fn class(self, class: Class) -> Builtin {
        Builtin { class, ..self }
    }

    /// Work units and bytes the items add for a value of `n` items.
    pub fn item_cost(&self, n: f64) -> (f64, f64) {
        if !(n.is_finite() && n > 0.0) {
            return (0.0, 0.0);
        }
        let work = if self.sorts { n * n.max(2.0).log2() } else { n };
        (self.per_item * work, self.bytes_per_item * n)
    }
}

const fn b(name: &'static str, cpu: Dist) -> Builtin {
    Builtin {
        name,
        cpu,
        per_dom_node: 0.0,
        mem: Dist::ZERO,
        per_item: 0.0,
        sorts: false,
        bytes_per_item: 0.0,
        class: Class::OtherBuiltin,
    }
}

const fn b_mem(name: &'static str, cpu: Dist, mem: Dist) -> Builtin {
    Builtin {
        name,
        cpu,
        per_dom_node: 0.0,
        mem,
        per_item: 0.0,
        sorts: false,
        bytes_per_item: 0.0,
        class: Class::OtherBuiltin,
    }
}

const fn b_dom(name: &'static str, cpu: Dist, per_dom_node: f64) -> Builtin {
    Builtin {
        name,
        cpu,
        per_dom_node,
        mem: Dist::ZERO,
        per_item: 0.0,
        sorts: false,
        bytes_per_item: 0.0,
        class: Class::OtherBuiltin,
    }
}

/// A builtin that is cheap and bounded (Math.floor, push, classList.add...).
pub static CHEAP: Builtin = b("cheap builtin", Dist::new(2.0, 5.0, 20.0)).class(Class::Cheap);
/// Per item: a comparison with a JS comparator is a call, a few tens of units, `n log n` of
/// them.
pub static SORT: Builtin = b("sort", Dist::new(30.0, 1_000.0, 50_000.0))
    .sized(40.0, 0.0, true)
    .class(Class::Sort);
/// Per item: an object of a few fields serialised or parsed, a few hundred units and about
/// its text again in memory.
pub static JSON: Builtin = b_mem(
    "JSON",
    Dist::new(100.0, 5_000.0, 500_000.0),
    Dist::new(256.0, 16_384.0, 1_048_576.0),
)
.sized(400.0, 64.0, false)
.class(Class::Json);
pub static REGEX_OP: Builtin =
    b("regex match", Dist::new(20.0, 200.0, 5_000.0)).class(Class::Regex);
pub static REGEX_COMPILE: Builtin =
    b("RegExp compile", Dist::new(100.0, 500.0, 5_000.0)).class(Class::Regex);
pub static QUERY_ALL: Builtin =
    b_dom("querySelectorAll", Dist::new(20.0, 100.0, 1_000.0), 1.0).class(Class::Query);
pub static QUERY_ONE: Builtin =
    b_dom("querySelector", Dist::new(20.0, 50.0, 500.0), 0.5).class(Class::Query);
pub static GET_BY_ID: Builtin =
    b("getElementById", Dist::new(10.0, 20.0, 50.0)).class(Class::Query);
/// Per item (a piece appended to the markup, typically one element): parsing it, then the
/// style, layout and paint of the element, like [`DOM_INSERT`] and then some.
pub static HTML_PARSE: Builtin = b_mem(
    "HTML parse (innerHTML)",
    Dist::new(500.0, 5_000.0, 100_000.0),
    Dist::new(1_024.0, 10_240.0, 524_288.0),
)
.sized(30_000.0, 256.0, false)
.class(Class::HtmlParse);
pub static LAYOUT: Builtin =
    b("forced layout", Dist::new(10.0, 500.0, 20_000.0)).class(Class::Layout);
pub static DOM_MUTATION: Builtin = b_mem(
    "DOM mutation",
    Dist::new(20.0, 50.0, 500.0),
    Dist::new(0.0, 128.0, 1_024.0),
)
.class(Class::DomMutation);
/// Inserting a node into the document: the call is cheap, but the browser then styles, lays
/// out and paints what was inserted on the same main thread. Measured by `cargo xtask
/// accuracy` (page `dom-create`): 5,000 inserted `div`s with text cost ~100 ms of main-thread
/// CPU in headless Chromium, ~20 µs each, tens of thousands of units.
pub static DOM_INSERT: Builtin = b_mem(
    "DOM insertion (style, layout, paint)",
    Dist::new(2_000.0, 20_000.0, 100_000.0),
    Dist::new(64.0, 512.0, 4_096.0),
)
.class(Class::DomInsert);
pub static LINEAR: Builtin = b_mem(
    "linear array/string operation",
    Dist::new(10.0, 100.0, 5_000.0),
    Dist::new(0.0, 256.0, 65_536.0),
)
.sized(3.0, 8.0, false)
.class(Class::Linear);
pub static STRING_OP: Builtin =
    b("string operation", Dist::new(5.0, 20.0, 500.0)).class(Class::StringOp);
pub static CONSOLE: Builtin = b("console", Dist::new(50.0, 200.0, 2_000.0));
pub static STORAGE: Builtin = b("storage", Dist::new(50.0, 200.0, 2_000.0));
pub static POST_MESSAGE: Builtin = b("postMessage", Dist::new(100.0, 500.0, 50_000.0));
pub static CANVAS_PIXELS: Builtin = b_mem(
    "canvas pixels",
    Dist::new(1_000.0, 20_000.0, 500_000.0),
    Dist::new(0.0, 65_536.0, 4_194_304.0),
);
pub static CANVAS_DRAW: Builtin = b("canvas draw", Dist::new(20.0, 100.0, 2_000.0));
pub static EVAL: Builtin = b("eval", Dist::new(1_000.0, 10_000.0, 1_000_000.0));
pub static NETWORK_CALL: Builtin = b("network request setup", Dist::new(100.0, 300.0, 2_000.0));
pub static ALLOC_OBJECT: Builtin = b_mem(
    "object creation",
    Dist::new(5.0, 10.0, 50.0),
    Dist::exact(64.0),
)
.class(Class::AllocObject);
/// `s += "..."` inside a loop: V8 builds ropes, so each step is a small allocation rather than
/// a copy, but flattening later costs about as much again, and the pieces appended are
/// usually numbers turned into text first. `cargo xtask accuracy` (page `string-build`)
/// measures ~100 ns per `s += 'x' + i` in headless Chromium: hundreds of units.
pub static STRING_CONCAT: Builtin = b_mem(
    "string concatenation",
    Dist::new(30.0, 100.0, 400.0),
    Dist::exact(32.0),
)
.class(Class::StringConcat);
/// `a.push(x)`: amortised growth of the backing store (copies on each doubling) and the new
/// element's slot; `cargo xtask accuracy` (page `array-push`) measures ~15 ns and ~15 bytes
/// per push of a number.
pub static PUSH: Builtin = b_mem(
    "array push",
    Dist::new(10.0, 40.0, 150.0),
    Dist::new(8.0, 16.0, 32.0),
)
.class(Class::Push);

/// Global objects and namespaces whose methods are builtins, unless page code shadows them.
pub fn is_global_object(name: &str) -> bool {
    matches!(
        name,
        "Math"
            | "JSON"
            | "console"
            | "document"
            | "window"
            | "self"
            | "globalThis"
            | "Object"
            | "Array"
            | "Number"
            | "String"
            | "Boolean"
            | "Promise"
            | "Reflect"
            | "Intl"
            | "localStorage"
            | "sessionStorage"
            | "navigator"
            | "performance"
            | "location"
            | "history"
            | "crypto"
            | "Date"
            | "Symbol"
            | "URL"
            | "Atomics"
            | "BigInt"
            | "screen"
            | "caches"
            | "indexedDB"
            | "customElements"
    )
}

/// Names that refer to the global object itself (`window.foo()` calls the global `foo`).
pub fn is_global_alias(name: &str) -> bool {
    matches!(name, "window" | "self" | "globalThis")
}

/// A call of a global function by plain name (`parseInt(x)`).
pub fn global_function(name: &str) -> Option<&'static Builtin> {
    Some(match name {
        "structuredClone" => &JSON,
        "postMessage" => &POST_MESSAGE,
        "eval" | "Function" => &EVAL,
        "getComputedStyle" => &LAYOUT,
        "parseInt"
        | "parseFloat"
        | "isNaN"
        | "isFinite"
        | "Number"
        | "String"
        | "Boolean"
        | "Symbol"
        | "BigInt"
        | "clearTimeout"
        | "clearInterval"
        | "cancelAnimationFrame"
        | "cancelIdleCallback"
        | "queueMicrotask"
        | "Object"
        | "Array"
        | "Date"
        | "reportError"
        | "matchMedia"
        | "alert"
        | "confirm"
        | "prompt"
        | "require"
        | "define" => &CHEAP,
        "encodeURIComponent" | "decodeURIComponent" | "encodeURI" | "decodeURI" | "escape"
        | "unescape" | "atob" | "btoa" => &STRING_OP,
        "RegExp" => &REGEX_COMPILE,
        _ => return None,
    })
}

/// A method call on a known global object (`JSON.parse`, `document.querySelectorAll`).
pub fn global_member(object: &str, method: &str) -> &'static Builtin {
    match (object, method) {
        ("JSON", _) => &JSON,
        ("console", _) => &CONSOLE,
        ("localStorage" | "sessionStorage", _) => &STORAGE,
        ("Array", "from")
        | ("Object", "keys" | "values" | "entries" | "assign" | "fromEntries") => &LINEAR,
        _ => method_by_name(method).unwrap_or(&CHEAP),
    }
}

/// A method call on an unknown receiver, recognised by its name alone.
pub fn method_by_name(method: &str) -> Option<&'static Builtin> {
    Some(match method {
        "sort" | "toSorted" => &SORT,
        "test" | "exec" | "match" | "matchAll" | "replace" | "replaceAll" | "search" | "split" => {
            &REGEX_OP
        }
        "querySelectorAll"
        | "getElementsByClassName"
        | "getElementsByTagName"
        | "getElementsByName" => &QUERY_ALL,
        "querySelector" | "closest" | "matches" => &QUERY_ONE,
        "getElementById" => &GET_BY_ID,
        "insertAdjacentHTML"
        | "write"
        | "writeln"
        | "parseFromString"
        | "createContextualFragment"
        | "setHTMLUnsafe" => &HTML_PARSE,
        "getBoundingClientRect" | "getClientRects" | "scrollIntoView" | "focus" => &LAYOUT,
        "appendChild" | "insertBefore" | "append" | "prepend" | "replaceChildren"
        | "replaceWith" | "replaceChild" | "before" | "after" => &DOM_INSERT,
        "removeChild"
        | "remove"
        | "cloneNode"
        | "createElement"
        | "createElementNS"
        | "createTextNode"
        | "createDocumentFragment"
        | "setAttribute"
        | "removeAttribute"
        | "toggleAttribute"
        | "setProperty"
        | "attachShadow" => &DOM_MUTATION,
        "slice" | "concat" | "join" | "splice" | "indexOf" | "lastIndexOf" | "includes"
        | "fill" | "reverse" | "flat" | "copyWithin" | "toReversed" | "toSpliced" | "with" => {
            &LINEAR
        }
        "toLowerCase" | "toUpperCase" | "trim" | "trimStart" | "trimEnd" | "padStart"
        | "padEnd" | "repeat" | "normalize" | "localeCompare" | "substring" | "substr"
        | "toFixed" | "toPrecision" | "toLocaleString" | "toLocaleDateString"
        | "toLocaleTimeString" | "toISOString" | "startsWith" | "endsWith" => &STRING_OP,
        "getImageData" | "putImageData" | "drawImage" | "createImageData" | "toDataURL"
        | "toBlob" => &CANVAS_PIXELS,
        "fillRect" | "strokeRect" | "clearRect" | "fillText" | "strokeText" | "measureText"
        | "beginPath" | "closePath" | "moveTo" | "lineTo" | "arc" | "rect" | "stroke" | "save"
        | "restore" | "translate" | "rotate" | "scale" | "setTransform" | "getContext" => {
            &CANVAS_DRAW
        }
        "postMessage" => &POST_MESSAGE,
        "setItem" | "getItem" | "removeItem" => &STORAGE,
        "push" | "unshift" => &PUSH,
        "pop"
        | "shift"
        | "at"
        | "keys"
        | "values"
        | "entries"
        | "get"
        | "set"
        | "has"
        | "add"
        | "delete"
        | "clear"
        | "toString"
        | "valueOf"
        | "charAt"
        | "charCodeAt"
        | "codePointAt"
        | "fromCharCode"
        | "then"
        | "catch"
        | "finally"
        | "resolve"
        | "reject"
        | "all"
        | "allSettled"
        | "race"
        | "any"
        | "call"
        | "apply"
        | "bind"
        | "preventDefault"
        | "stopPropagation"
        | "stopImmediatePropagation"
        | "getAttribute"
        | "hasAttribute"
        | "contains"
        | "toggle"
        | "item"
        | "blur"
        | "click"
        | "dispatchEvent"
        | "removeEventListener"
        | "scrollTo"
        | "scrollBy"
        | "json"
        | "text"
        | "arrayBuffer"
        | "blob"
        | "formData"
        | "send"
        | "close"
        | "terminate"
        | "now"
        | "getTime"
        | "getFullYear"
        | "getMonth"
        | "getDate"
        | "getDay"
        | "getHours"
        | "getMinutes"
        | "getSeconds"
        | "getMilliseconds"
        | "getTimezoneOffset"
        | "random"
        | "floor"
        | "ceil"
        | "round"
        | "trunc"
        | "max"
        | "min"
        | "abs"
        | "sqrt"
        | "pow"
        | "sin"
        | "cos"
        | "tan"
        | "atan2"
        | "exp"
        | "log"
        | "sign"
        | "hypot"
        | "imul"
        | "freeze"
        | "create"
        | "defineProperty"
        | "defineProperties"
        | "getPrototypeOf"
        | "setPrototypeOf"
        | "hasOwnProperty"
        | "isArray"
        | "of"
        | "observe"
        | "unobserve"
        | "disconnect"
        | "abort"
        | "setRequestHeader"
        | "getRandomValues"
        | "randomUUID"
        | "requestSubmit"
        | "submit"
        | "reset"
        | "checkValidity"
        | "reportValidity"
        | "next"
        | "return"
        | "throw"
        | "warn"
        | "error"
        | "info"
        | "debug"
        | "mark"
        | "measure"
        | "pushState"
        | "replaceState"
        | "assign"
        | "reload"
        | "open"
        | "isInteger"
        | "isSafeInteger"
        | "from"
        | "fromEntries" => &CHEAP,
        // The per-element callback is priced as a loop where the call is collected.
        m if iteration_method(m) => &CHEAP,
        _ => return None,
    })
}

/// A property read that forces style and layout (`el.offsetWidth`).
pub fn layout_property(prop: &str) -> bool {
    matches!(
        prop,
        "offsetWidth"
            | "offsetHeight"
            | "offsetTop"
            | "offsetLeft"
            | "clientWidth"
            | "clientHeight"
            | "clientTop"
            | "clientLeft"
            | "scrollWidth"
            | "scrollHeight"
            | "innerText"
    )
}

/// A property whose assignment parses HTML.
pub fn html_sink(prop: &str) -> bool {
    matches!(prop, "innerHTML" | "outerHTML")
}

/// Array methods that call their callback once per element.
pub fn iteration_method(name: &str) -> bool {
    matches!(
        name,
        "forEach"
            | "map"
            | "filter"
            | "reduce"
            | "reduceRight"
            | "some"
            | "every"
            | "find"
            | "findIndex"
            | "findLast"
            | "findLastIndex"
            | "flatMap"
            | "sort"
            | "toSorted"
    )
}

/// Timer APIs: the callback runs later, not as part of the call.
pub fn timer(name: &str) -> Option<&'static str> {
    match name {
        "setTimeout" => Some("setTimeout"),
        "setInterval" => Some("setInterval"),
        "requestAnimationFrame" => Some("requestAnimationFrame"),
        "requestIdleCallback" => Some("requestIdleCallback"),
        _ => None,
    }
}

/// Bytes per element of the array constructors whose size argument allocates.
pub fn array_element_bytes(ctor: &str) -> Option<f64> {
    Some(match ctor {
        "Int8Array" | "Uint8Array" | "Uint8ClampedArray" | "ArrayBuffer" | "SharedArrayBuffer" => {
            1.0
        }
        "Int16Array" | "Uint16Array" | "Float16Array" => 2.0,
        "Int32Array" | "Uint32Array" | "Float32Array" => 4.0,
        "Float64Array" | "BigInt64Array" | "BigUint64Array" => 8.0,
        // V8 stores a holey array of small integers or pointers in 8-byte slots.
        "Array" => 8.0,
        _ => return None,
    })
}

/// Constructors of the platform that are not page code (so `new X()` is not unresolved).
pub fn known_constructor(name: &str) -> Option<&'static Builtin> {
    Some(match name {
        "RegExp" => &REGEX_COMPILE,
        "Function" => &EVAL,
        "DOMParser"
        | "Date"
        | "Map"
        | "Set"
        | "WeakMap"
        | "WeakSet"
        | "WeakRef"
        | "Error"
        | "TypeError"
        | "RangeError"
        | "SyntaxError"
        | "ReferenceError"
        | "URL"
        | "URLSearchParams"
        | "Image"
        | "Audio"
        | "Option"
        | "Blob"
        | "File"
        | "FileReader"
        | "FormData"
        | "Headers"
        | "Request"
        | "Response"
        | "AbortController"
        | "TextEncoder"
        | "TextDecoder"
        | "CustomEvent"
        | "Event"
        | "KeyboardEvent"
        | "MouseEvent"
        | "MutationObserver"
        | "IntersectionObserver"
        | "ResizeObserver"
        | "PerformanceObserver"
        | "MessageChannel"
        | "BroadcastChannel"
        | "Promise"
        | "Proxy"
        | "XMLHttpRequest"
        | "DataView"
        | "FinalizationRegistry"
        | "Object"
        | "Number"
        | "String"
        | "Boolean"
        | "Notification"
        | "AudioContext"
        | "OffscreenCanvas"
        | "ImageData"
        | "Path2D"
        | "DOMMatrix"
        | "Intl" => &ALLOC_OBJECT,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserting_nodes_costs_their_rendering_not_just_the_call() {
        let insert = method_by_name("appendChild").expect("known");
        let attribute = method_by_name("setAttribute").expect("known");
        assert_eq!(insert.name, DOM_INSERT.name);
        assert_eq!(attribute.name, DOM_MUTATION.name);
        // Style, layout and paint of an inserted node dwarf the DOM call itself.
        assert!(insert.cpu.p50 >= 100.0 * attribute.cpu.p50);
        for m in [
            "append",
            "prepend",
            "insertBefore",
            "replaceChildren",
            "before",
            "after",
        ] {
            assert_eq!(
                method_by_name(m).map(|b| b.name),
                Some(DOM_INSERT.name),
                "{m}"
            );
        }
    }
}
