//! The cost model's unit weights, one multiplier per operation class, fitted by regression on
//! a micro-benchmark set measured in headless Chromium (`cargo xtask accuracy --fit`, see
//! `tests/src/accuracy/fit.rs`), never on the accuracy corpus, which stays held out for
//! scoring.
//!
//! Every cost the syntax counts belongs to a [`Class`] (plain operations, divisions, calls,
//! closures, each family of builtins...). The hand-set unit costs in `collect/` and
//! `builtins.rs` stay as the shape of each class (a division is ten operations, a sort is
//! `n log n` per item); a class's weight scales all of it. A weight of 1 is the hand-set
//! model. Because the estimate is linear in the weights for code whose loop bounds are known,
//! the fit can read each class's share of a benchmark by pricing it with one class switched
//! on at a time ([`Weights::only`]).
//!
//! The fitted weights are normalised so that the calibration kernel costs as many units as
//! with the hand-set ones: the device calibration and the library profiles (stored in units,
//! converted with that kernel) keep their meaning.

use crate::fitted;

/// An operation class: all costs of one kind share one fitted weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Statements, operators, property accesses, literals, assignments, loop back edges.
    Op,
    /// The same at a script's top level, where every variable is a script-context slot or a
    /// global property (a double stored there is a fresh heap number), not a register.
    TopLevelOp,
    /// `/`, `%` and their assignments.
    Division,
    /// `**`.
    Power,
    /// A call's own overhead (frame setup and return).
    Call,
    /// Creating a closure or class.
    Closure,
    /// A regex literal's first compile.
    RegexLiteral,
    /// Zero-filling allocated memory, per byte (typed arrays, `new Array(n)`).
    Alloc,
    /// Parsing and compiling page scripts, per source byte.
    Parse,
    /// Cheap builtins (`Math.*`, getters, `Number()`...).
    Cheap,
    Sort,
    Json,
    /// Regex matching and `RegExp` compiles.
    Regex,
    /// DOM queries (`getElementById`, `querySelector(All)`).
    Query,
    /// HTML parsing (`innerHTML` and friends).
    HtmlParse,
    /// Forced layout.
    Layout,
    /// DOM creation and attribute changes (`createElement`, `setAttribute`).
    DomMutation,
    /// Inserting into the document (`appendChild`...), with style and layout to follow.
    DomInsert,
    /// Linear array and string operations (`slice`, `join`, `indexOf`...).
    Linear,
    /// String methods (`toUpperCase`, `padStart`...).
    StringOp,
    /// Building strings by concatenation in loops.
    StringConcat,
    /// `push`/`unshift`.
    Push,
    /// Object creation (`new C()` of page classes and object literals in loops).
    AllocObject,
    /// Everything else the builtin table prices (console, storage, canvas, eval...).
    OtherBuiltin,
}

impl Class {
    pub const COUNT: usize = 24;

    pub const ALL: [Class; Class::COUNT] = [
        Class::Op,
        Class::TopLevelOp,
        Class::Division,
        Class::Power,
        Class::Call,
        Class::Closure,
        Class::RegexLiteral,
        Class::Alloc,
        Class::Parse,
        Class::Cheap,
        Class::Sort,
        Class::Json,
        Class::Regex,
        Class::Query,
        Class::HtmlParse,
        Class::Layout,
        Class::DomMutation,
        Class::DomInsert,
        Class::Linear,
        Class::StringOp,
        Class::StringConcat,
        Class::Push,
        Class::AllocObject,
        Class::OtherBuiltin,
    ];

    /// The name the fit tool and the generated table use.
    pub fn name(self) -> &'static str {
        match self {
            Class::Op => "op",
            Class::TopLevelOp => "top_level_op",
            Class::Division => "division",
            Class::Power => "power",
            Class::Call => "call",
            Class::Closure => "closure",
            Class::RegexLiteral => "regex_literal",
            Class::Alloc => "alloc",
            Class::Parse => "parse",
            Class::Cheap => "cheap",
            Class::Sort => "sort",
            Class::Json => "json",
            Class::Regex => "regex",
            Class::Query => "query",
            Class::HtmlParse => "html_parse",
            Class::Layout => "layout",
            Class::DomMutation => "dom_mutation",
            Class::DomInsert => "dom_insert",
            Class::Linear => "linear",
            Class::StringOp => "string_op",
            Class::StringConcat => "string_concat",
            Class::Push => "push",
            Class::AllocObject => "alloc_object",
            Class::OtherBuiltin => "other_builtin",
        }
    }

    pub fn from_name(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One multiplier per [`Class`], and the JIT warm-up model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub classes: [f64; Class::COUNT],
    /// How much more than optimised code the cold runs of straight-line JS cost (0: no
    /// warm-up). The weights describe V8's optimised code; the first runs of any code go
    /// through its interpreter and baseline tiers.
    pub warm_factor: f64,
    /// How many runs of a piece of code are cold.
    pub warm_trips: f64,
}

impl Default for Weights {
    /// The fitted weights (`fitted.rs`).
    fn default() -> Self {
        let mut w = Weights::hand_set();
        for (name, value) in fitted::WEIGHTS {
            if let Some(c) = Class::from_name(name)
                && value.is_finite()
                && *value >= 0.0
            {
                w.classes[c.index()] = *value;
            }
        }
        (w.warm_factor, w.warm_trips) = fitted::WARM_UP;
        w
    }
}

impl Weights {
    /// Every class at its hand-set cost, no warm-up.
    pub const fn hand_set() -> Weights {
        Weights {
            classes: [1.0; Class::COUNT],
            warm_factor: 0.0,
            warm_trips: 0.0,
        }
    }

    /// Only `class` counts, at its hand-set cost, with the given warm-up: what the fit
    /// prices each benchmark with.
    pub fn only(class: Class, warm_factor: f64, warm_trips: f64) -> Weights {
        let mut w = Weights::none();
        w.classes[class.index()] = 1.0;
        w.warm_factor = warm_factor;
        w.warm_trips = warm_trips;
        w
    }

    /// Nothing counted: what is left is the part of an estimate no weight scales.
    pub const fn none() -> Weights {
        Weights {
            classes: [0.0; Class::COUNT],
            warm_factor: 0.0,
            warm_trips: 0.0,
        }
    }

    pub fn get(&self, class: Class) -> f64 {
        self.classes.get(class.index()).copied().unwrap_or(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_a_unique_name_and_index() {
        for (i, c) in Class::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i, "{c:?}");
            assert_eq!(Class::from_name(c.name()), Some(c));
        }
    }

    #[test]
    fn the_fitted_table_names_only_known_classes_with_usable_values() {
        for (name, value) in fitted::WEIGHTS {
            assert!(Class::from_name(name).is_some(), "{name}");
            assert!(value.is_finite() && *value >= 0.0, "{name} = {value}");
        }
    }
}
