//! The work budget of one estimate, so that a hostile or merely huge page cannot stall the
//! extension or blow up its memory.
//!
//! The estimator has no clock (it is a pure function), so the budget counts the work itself:
//! source bytes handed to swc (its time is roughly linear in them, and its memory up to ~30
//! times the largest script, since each AST is dropped before the next script is parsed),
//! swc's quadratic work on `else if` chains (measured by the prescan, see
//! [`crate::parse::Prescan`]), and AST nodes the collect walk visits (which bounds every later
//! pass, since they work on what the walk recorded). What does not fit is priced by its size,
//! like a script without source, and the estimate says so with a `truncated:` warning and
//! `PageDemand.truncated`.

use crate::parse::Prescan;

/// Limits on the work of one estimate. [`Budget::default`] is what the extension runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Source bytes parsed per page, over all scripts and inline handlers.
    pub parse_bytes: u64,
    /// Largest single script parsed: swc's AST of minified code takes up to ~30 times the
    /// source, and wasm memory never shrinks once grown.
    pub script_bytes: u64,
    /// Sum over the page of [`Prescan::else_if_work`].
    pub else_if_work: u64,
    /// AST nodes (statements and expressions) the collect walk enters per page.
    pub nodes: u64,
}

impl Default for Budget {
    /// Sized so that the budget, not the page, bounds the time: 12 MiB parses in about 0.4 s
    /// natively and 0.8 s in wasm at swc's slower (minified-code) rates, 4 MiB of minified
    /// code peaks at ~120 MB, 50 million units of `else if` work are ~200 ms, and 3 million
    /// nodes are about 12 MB of ordinary code.
    fn default() -> Self {
        Budget {
            parse_bytes: 12 << 20,
            script_bytes: 4 << 20,
            else_if_work: 50_000_000,
            nodes: 3_000_000,
        }
    }
}

impl Budget {
    /// No limits (for tools measuring the estimator itself on trusted input).
    pub const UNLIMITED: Budget = Budget {
        parse_bytes: u64::MAX,
        script_bytes: u64::MAX,
        else_if_work: u64::MAX,
        nodes: u64::MAX,
    };
}

/// Why a script was not (fully) analysed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    ScriptBytes { bytes: u64, limit: u64 },
    PageBytes { limit: u64 },
    ElseIfWork { limit: u64 },
    Nodes { limit: u64 },
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exceeded::ScriptBytes { bytes, limit } => write!(
                f,
                "truncated: the script is {bytes} bytes, over the {limit}-byte limit per script"
            ),
            Exceeded::PageBytes { limit } => write!(
                f,
                "truncated: the page's budget of {limit} parsed bytes is spent"
            ),
            Exceeded::ElseIfWork { limit } => write!(
                f,
                "truncated: the page's `else if` chains exceed the parser's budget ({limit} units)"
            ),
            Exceeded::Nodes { limit } => write!(
                f,
                "truncated: the page's budget of {limit} analysed syntax nodes is spent"
            ),
        }
    }
}

/// What is left of a [`Budget`] while one page is analysed.
#[derive(Debug, Clone)]
pub struct Spend {
    limits: Budget,
    parse_bytes: u64,
    else_if_work: u64,
    nodes: u64,
    truncated: bool,
}

impl Default for Spend {
    fn default() -> Self {
        Spend::new(Budget::default())
    }
}

impl Spend {
    pub fn new(limits: Budget) -> Self {
        Spend {
            limits,
            parse_bytes: 0,
            else_if_work: 0,
            nodes: 0,
            truncated: false,
        }
    }

    /// Whether a script of `bytes` may be handed to the prescan (cheap, linear) at all.
    pub fn admit_bytes(&mut self, bytes: u64) -> Result<(), Exceeded> {
        let result = if bytes > self.limits.script_bytes {
            Err(Exceeded::ScriptBytes {
                bytes,
                limit: self.limits.script_bytes,
            })
        } else if self.parse_bytes.saturating_add(bytes) > self.limits.parse_bytes {
            Err(Exceeded::PageBytes {
                limit: self.limits.parse_bytes,
            })
        } else {
            Ok(())
        };
        self.truncated |= result.is_err();
        result
    }

    /// Charges a script the prescan accepted, or refuses it if swc's work on it would exceed
    /// what is left.
    pub fn charge_parse(&mut self, bytes: u64, prescan: &Prescan) -> Result<(), Exceeded> {
        let work = self.else_if_work.saturating_add(prescan.else_if_work);
        if work > self.limits.else_if_work {
            self.truncated = true;
            return Err(Exceeded::ElseIfWork {
                limit: self.limits.else_if_work,
            });
        }
        self.admit_bytes(bytes)?;
        self.else_if_work = work;
        self.parse_bytes = self.parse_bytes.saturating_add(bytes);
        Ok(())
    }

    /// Counts one AST node entered by the collect walk; `false` once the budget is spent.
    pub fn visit(&mut self) -> bool {
        if self.nodes >= self.limits.nodes {
            self.truncated = true;
            return false;
        }
        self.nodes += 1;
        true
    }

    /// Whether the node budget is spent (so later code is not even parsed).
    pub fn nodes_spent(&self) -> Option<Exceeded> {
        (self.nodes >= self.limits.nodes).then_some(Exceeded::Nodes {
            limit: self.limits.nodes,
        })
    }

    pub fn nodes_visited(&self) -> u64 {
        self.nodes
    }

    pub fn parsed_bytes(&self) -> u64 {
        self.parse_bytes
    }

    /// Whether anything was refused or cut short for the budget.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_refuses_and_marks_the_page_truncated() {
        let mut s = Spend::new(Budget {
            parse_bytes: 100,
            script_bytes: 60,
            else_if_work: 1_000,
            nodes: 2,
        });
        let none = Prescan::default();
        assert_eq!(s.charge_parse(50, &none), Ok(()));
        assert!(!s.truncated());
        assert!(matches!(
            s.charge_parse(61, &none),
            Err(Exceeded::ScriptBytes { bytes: 61, .. })
        ));
        assert!(s.truncated());
        assert!(matches!(
            s.charge_parse(51, &none),
            Err(Exceeded::PageBytes { .. })
        ));
        let quadratic = Prescan {
            else_if_work: 1_001,
        };
        assert!(matches!(
            s.charge_parse(1, &quadratic),
            Err(Exceeded::ElseIfWork { .. })
        ));
        // What was refused was not charged: 50 bytes are still left.
        assert_eq!(s.charge_parse(50, &none), Ok(()));
        assert!(s.visit() && s.visit() && !s.visit());
        assert!(s.nodes_spent().is_some());
        assert!(
            Exceeded::Nodes { limit: 2 }
                .to_string()
                .starts_with("truncated:")
        );
    }
}
