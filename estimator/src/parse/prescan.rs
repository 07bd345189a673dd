//! The nesting prescan: refuses input swc would crash on, before swc sees it.
//!
//! swc's parser recurses once per nesting level and has no depth limit of its own. In the
//! extension it runs in wasm with a 1 MiB stack, where overflowing it leaves the wasm instance
//! permanently broken (see `PLATFORM.md`, "swc in wasm"). [`prescan`] therefore measures
//! nesting with a cheap, approximate tokenizer and refuses scripts beyond [`MAX_NESTING`]
//! brackets, beyond [`MAX_ELSE_IF_LINKS`] `else if` links (quadratic in swc), or beyond a
//! combined depth budget ([`MAX_DEPTH_BUDGET`]) that also counts operator chains (`a = b = c
//! ...`, `!!!x`, `a ? b : c ? ...` recurse in swc; `a + b + ...` and `a.b().c()...` do not,
//! but build an AST as deep as the chain, which dropping and walking then recurse through).
//! Refused scripts are priced by size.
//!
//! Measured with `examples/wasm_probe.rs` (wasm-release profile, 1 MiB stack, Node 20): swc
//! plus the collect walk plus dropping the AST trap at 977 nested parentheses, 782 nested
//! functions, 1,334 nested calls, 3,125 chained assignments, 4,910 chained ternaries, 6,152
//! chained method calls, 8,770 `!`s, 12,304 chained `+`, 15,379 `else if` links, 761
//! chained arrows, ~1,300-1,600 braceless nested statements or labels. A bracket level costs
//! about three chain elements of stack, hence [`BRACKET_WEIGHT`] and its siblings.
//!
//! It runs over every byte of every script the estimator parses, so it is written for speed:
//! byte classes from a table, comments, strings and template text skipped with memchr,
//! keywords matched as integers.

/// Deepest bracket nesting ((, [, {, `${`) accepted; 977 parentheses overflow the wasm stack.
pub const MAX_NESTING: usize = 400;
/// Longest run of `else if` links accepted in one block; swc takes 180 ms at 10k links and
/// grows quadratically, and each link is one more level of AST depth.
pub const MAX_ELSE_IF_LINKS: usize = 5_000;
/// Budget for `BRACKET_WEIGHT * brackets + chain elements` open at any point, where a chain
/// element is an operator, a member dot or an `else if` in one unbroken run (no `;` or `,`,
/// and no line break that ends the expression). 2,000 chain elements are 64% of the tightest
/// measured limit (assignments), leaving room for the caller's own frames.
pub const MAX_DEPTH_BUDGET: usize = 2_000;
/// Stack cost of one bracket level relative to one chain element.
pub const BRACKET_WEIGHT: usize = 3;
/// Stack cost of one braceless nested statement (`if (a) if (b) ...`): 1,292 nested `if`s
/// trap, between a bracket and a chain element; counted like a bracket.
pub const STATEMENT_WEIGHT: usize = 3;
/// Extra weight of an arrow (`a => b => ...`): each is a function, 761 of them trap, so an
/// arrow weighs more than a bracket.
pub const ARROW_WEIGHT: usize = 4;

/// What [`prescan`] learned about a script it accepted, for the page's work budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prescan {
    /// swc's quadratic work on `else if` chains: the sum over blocks of the square of the
    /// block's `else if` links. 5,000 links in one block (25 million) parse in ~100 ms
    /// natively, 10 such blocks in ~1 s, where the script's size alone would say 25 ms.
    pub else_if_work: u64,
}

/// Why [`prescan`] refused a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Nesting { depth: usize, offset: usize },
    ElseIf { links: usize, offset: usize },
    Chain { depth: usize, offset: usize },
    TooLarge { bytes: usize },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Nesting { depth, offset } => write!(
                f,
                "brackets nest more than {MAX_NESTING} deep (reached {depth} at byte {offset})"
            ),
            Refusal::ElseIf { links, offset } => write!(
                f,
                "an `else if` chain is longer than {MAX_ELSE_IF_LINKS} links ({links} at byte {offset})"
            ),
            Refusal::Chain { depth, offset } => write!(
                f,
                "an expression is nested too deep (depth {depth} of at most {MAX_DEPTH_BUDGET} at byte {offset})"
            ),
            Refusal::TooLarge { bytes } => {
                write!(f, "the script is too large to parse ({bytes} bytes)")
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Bracket,
    /// `${` inside a template literal: its `}` resumes the template.
    TemplateExpr,
}

/// What is open at one bracket level.
struct Level {
    open: Open,
    /// Chain elements (operators, member dots, `else if`) in the current unbroken run.
    chain: usize,
    /// Braceless statement nesting (`if (a) while (b) ...`, label chains) since the last `;`
    /// or block at this level.
    stmts: usize,
    else_ifs: usize,
}

impl Level {
    fn new(open: Open) -> Self {
        Level {
            open,
            chain: 0,
            stmts: 0,
            else_ifs: 0,
        }
    }
}

/// The prescan's model of how deep swc and the AST walks will recurse at the current point.
struct Depth {
    levels: Vec<Level>,
    chain_sum: usize,
    stmt_sum: usize,
    /// Sum of the squared `else if` counts of the levels closed so far.
    else_if_work: u64,
}

impl Depth {
    fn nesting(&self) -> usize {
        self.levels.len().saturating_sub(1)
    }

    fn weighted(&self) -> usize {
        self.nesting() * BRACKET_WEIGHT + self.chain_sum + self.stmt_sum * STATEMENT_WEIGHT
    }

    fn check(&self, offset: usize) -> Result<(), Refusal> {
        if self.nesting() > MAX_NESTING {
            return Err(Refusal::Nesting {
                depth: self.nesting(),
                offset,
            });
        }
        let depth = self.weighted();
        if depth > MAX_DEPTH_BUDGET {
            return Err(Refusal::Chain { depth, offset });
        }
        Ok(())
    }

    fn push(&mut self, open: Open, offset: usize) -> Result<(), Refusal> {
        self.levels.push(Level::new(open));
        self.check(offset)
    }

    /// Closes a level; returns what it was, or `None` for an unbalanced closer.
    fn pop(&mut self) -> Option<Open> {
        if self.levels.len() <= 1 {
            return None;
        }
        let top = self.levels.pop()?;
        self.close_else_ifs(top.else_ifs);
        self.chain_sum -= top.chain;
        self.stmt_sum -= top.stmts;
        Some(top.open)
    }

    fn chain(&mut self, by: usize, offset: usize) -> Result<(), Refusal> {
        if let Some(top) = self.levels.last_mut() {
            top.chain += by;
            self.chain_sum += by;
        }
        self.check(offset)
    }

    fn statement(&mut self, offset: usize) -> Result<(), Refusal> {
        if let Some(top) = self.levels.last_mut() {
            top.stmts += 1;
            self.stmt_sum += 1;
        }
        self.check(offset)
    }

    fn else_if(&mut self, offset: usize) -> Result<(), Refusal> {
        if let Some(top) = self.levels.last_mut() {
            top.else_ifs += 1;
            if top.else_ifs > MAX_ELSE_IF_LINKS {
                return Err(Refusal::ElseIf {
                    links: top.else_ifs,
                    offset,
                });
            }
        }
        self.chain(1, offset)
    }

    fn close_else_ifs(&mut self, links: usize) {
        let links = links as u64;
        self.else_if_work = self
            .else_if_work
            .saturating_add(links.saturating_mul(links));
    }

    fn end_run(&mut self) {
        if let Some(top) = self.levels.last_mut() {
            self.chain_sum -= top.chain;
            top.chain = 0;
        }
    }

    fn end_statement(&mut self) {
        self.end_run();
        if let Some(top) = self.levels.last_mut() {
            self.stmt_sum -= top.stmts;
            top.stmts = 0;
        }
    }
}

/// Byte classes for the prescan, looked up in [`CLASS`]: one table load instead of a chain of
/// comparisons per byte, which is most of the prescan's time on identifier-heavy code.
const IDENT: u8 = 1;
const OPERATOR: u8 = 2;

const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80 {
            t[c] = IDENT;
        }
        if matches!(
            b,
            b'+' | b'-'
                | b'*'
                | b'%'
                | b'<'
                | b'>'
                | b'&'
                | b'|'
                | b'^'
                | b'?'
                | b'='
                | b'!'
                | b'~'
        ) {
            t[c] = OPERATOR;
        }
        c += 1;
    }
    t
};

/// What the prescan's main loop does with a byte where a token may start, looked up in
/// [`KIND`].
const K_OTHER: u8 = 0;
const K_IDENT: u8 = 1;
const K_BLANK: u8 = 2;
const K_NEWLINE: u8 = 3;
const K_OPERATOR: u8 = 4;
const K_DOT: u8 = 5;
const K_OPEN: u8 = 6;
const K_CLOSE: u8 = 7;
const K_SEMICOLON: u8 = 8;
const K_COMMA: u8 = 9;
const K_QUOTE: u8 = 10;
const K_BACKTICK: u8 = 11;
const K_SLASH: u8 = 12;
const K_COLON: u8 = 13;

const KIND: [u8; 256] = {
    let mut t = [K_OTHER; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = match CLASS[c] {
            IDENT => K_IDENT,
            OPERATOR => K_OPERATOR,
            _ => match c as u8 {
                b' ' | b'\t' => K_BLANK,
                b'\n' | b'\r' => K_NEWLINE,
                b'.' => K_DOT,
                b'(' | b'[' | b'{' => K_OPEN,
                b')' | b']' | b'}' => K_CLOSE,
                b';' => K_SEMICOLON,
                b',' => K_COMMA,
                b'\'' | b'"' => K_QUOTE,
                b'`' => K_BACKTICK,
                b'/' => K_SLASH,
                b':' => K_COLON,
                _ => K_OTHER,
            },
        };
        c += 1;
    }
    t
};

fn is_ident_byte(c: u8) -> bool {
    CLASS[c as usize] == IDENT
}

fn is_operator_byte(c: u8) -> bool {
    CLASS[c as usize] == OPERATOR
}

/// The offset of the first byte at or after `from` for which `stop` holds, or `s.len()`.
fn skip_while(s: &[u8], from: usize, keep: impl Fn(u8) -> bool) -> usize {
    s.get(from..)
        .and_then(|rest| rest.iter().position(|&b| !keep(b)))
        .map_or(s.len(), |k| from + k)
}

/// The end of a quoted string starting at `from` (just after the opening `quote`): the
/// offset after its closing quote, or of the line break or end of text that cuts it short.
fn skip_string(s: &[u8], mut from: usize, quote: u8) -> usize {
    while let Some(k) = s
        .get(from..)
        .and_then(|rest| memchr::memchr3(quote, b'\\', b'\n', rest))
    {
        let at = from + k;
        match s[at] {
            b'\\' => from = at + 2,
            b'\n' => return at,
            _ => return at + 1,
        }
    }
    s.len()
}

// What the prescan knows about a word, as flags ([`keyword`]).

/// Statements whose body may be another statement without braces, which swc parses
/// recursively (`if (a) if (b) ...`).
const NESTS_STATEMENT: u8 = 1;
/// Keyword operators, which nest like prefix operators (`typeof typeof x`, `new new X`).
const OPERATOR_WORD: u8 = 2;
/// After these words a `/` starts a regular expression, not a division.
const PRECEDES_EXPRESSION: u8 = 4;
const IF: u8 = 8;
const ELSE: u8 = 16;

/// A word of at most 16 bytes as one integer, for matching keywords with integer compares
/// rather than a string comparison per keyword (words never contain a zero byte, so the
/// padding cannot collide).
const fn pack(word: &[u8]) -> u128 {
    let mut buf = [0u8; 16];
    let mut i = 0;
    while i < word.len() && i < 16 {
        buf[i] = word[i];
        i += 1;
    }
    u128::from_le_bytes(buf)
}

/// Per word length, the first letters of the keywords [`keyword`] knows of that length, as a
/// bit per letter (`a` is bit 0). Checked in a test against the keyword list.
const KEYWORD_SHAPES: [u32; 11] = {
    const fn letters(words: &[&[u8]]) -> u32 {
        let mut bits = 0;
        let mut i = 0;
        while i < words.len() {
            bits |= 1 << (words[i][0] - b'a');
            i += 1;
        }
        bits
    }
    let mut t = [0u32; 11];
    t[2] = letters(&[b"if", b"in", b"do", b"of"]);
    t[3] = letters(&[b"for", b"new"]);
    t[4] = letters(&[b"with", b"void", b"case", b"else"]);
    t[5] = letters(&[b"while", b"await", b"yield", b"throw"]);
    t[6] = letters(&[b"typeof", b"delete", b"return"]);
    t[10] = letters(&[b"instanceof"]);
    t
};

/// The flags of `word`: 0 for anything but the keywords the prescan cares about, which are
/// all 2 to 10 lowercase letters (most names and numbers are rejected before any compare).
fn keyword(word: &[u8]) -> u8 {
    const K_IF: u128 = pack(b"if");
    const K_WHILE: u128 = pack(b"while");
    const K_FOR: u128 = pack(b"for");
    const K_WITH: u128 = pack(b"with");
    const K_DO: u128 = pack(b"do");
    const K_TYPEOF: u128 = pack(b"typeof");
    const K_VOID: u128 = pack(b"void");
    const K_DELETE: u128 = pack(b"delete");
    const K_NEW: u128 = pack(b"new");
    const K_AWAIT: u128 = pack(b"await");
    const K_YIELD: u128 = pack(b"yield");
    const K_IN: u128 = pack(b"in");
    const K_INSTANCEOF: u128 = pack(b"instanceof");
    const K_RETURN: u128 = pack(b"return");
    const K_CASE: u128 = pack(b"case");
    const K_ELSE: u128 = pack(b"else");
    const K_OF: u128 = pack(b"of");
    const K_THROW: u128 = pack(b"throw");
    // Most words are not keyword-shaped: turned away by length and first letter, before
    // `pack` copies any bytes.
    let shape = match (KEYWORD_SHAPES.get(word.len()), word.first()) {
        (Some(&letters), Some(&first)) if first.is_ascii_lowercase() => {
            letters & (1 << (first - b'a'))
        }
        _ => 0,
    };
    if shape == 0 {
        return 0;
    }
    match pack(word) {
        K_IF => IF | NESTS_STATEMENT,
        K_WHILE | K_FOR | K_WITH => NESTS_STATEMENT,
        K_DO => NESTS_STATEMENT | PRECEDES_EXPRESSION,
        K_TYPEOF | K_VOID | K_DELETE | K_NEW | K_AWAIT | K_YIELD | K_IN | K_INSTANCEOF => {
            OPERATOR_WORD | PRECEDES_EXPRESSION
        }
        K_RETURN | K_CASE | K_OF | K_THROW => PRECEDES_EXPRESSION,
        K_ELSE => ELSE | PRECEDES_EXPRESSION,
        _ => 0,
    }
}

/// Approximate tokenizer measuring nesting. It understands comments, strings, template
/// literals (with nested `${}`), and tells regex literals from divisions by the previous
/// token, which is right for all but contrived code; being wrong only misjudges depth.
pub fn prescan(src: &str) -> Result<Prescan, Refusal> {
    // swc positions are u32; leave room for the BytePos(1) start.
    if src.len() > (u32::MAX as usize) / 2 {
        return Err(Refusal::TooLarge { bytes: src.len() });
    }
    let s = src.as_bytes();
    let n = s.len();
    let mut d = Depth {
        levels: vec![Level::new(Open::Bracket)],
        chain_sum: 0,
        stmt_sum: 0,
        else_if_work: 0,
    };
    // Whether a `/` here would start a regex (true at the start and after operators).
    let mut regex_allowed = true;
    let mut prev_word_else = false;
    // Whether the previous token was a label's colon (`a: b: c: x` nests).
    let mut prev_label = false;
    let mut in_template = false;
    // A line break ends the current run unless the expression visibly continues: the line
    // ended with an operator, or the next one starts with one (`.then()` chains, `+ x`).
    let mut last_was_operator = false;
    let mut pending_reset = false;
    let mut i = 0usize;

    // Before a token that is not a comment or white space: a pending line-break reset applies
    // unless the token continues the expression (an operator or a member dot).
    macro_rules! token {
        (continues) => {
            pending_reset = false;
            last_was_operator = true;
        };
        (breaks) => {
            if pending_reset {
                d.end_run();
            }
            pending_reset = false;
            last_was_operator = false;
        };
    }

    while i < n {
        if in_template {
            // Inside a template literal's text: find its end or the next `${`.
            // Skip plain template text in one search.
            match s
                .get(i..)
                .and_then(|rest| memchr::memchr3(b'`', b'\\', b'$', rest))
            {
                Some(k) => i += k,
                None => break,
            }
            match s[i] {
                b'\\' => i += 2,
                b'`' => {
                    in_template = false;
                    regex_allowed = false;
                    i += 1;
                }
                b'$' if s.get(i + 1) == Some(&b'{') => {
                    d.push(Open::TemplateExpr, i)?;
                    in_template = false;
                    regex_allowed = true;
                    i += 2;
                }
                _ => i += 1,
            }
            continue;
        }
        let c = s[i];
        // One table load picks the case; every case below is one class of byte.
        let kind = KIND[c as usize];
        // The two commonest cases first, as plain tests: a jump table costs a mispredicted
        // indirect branch per token, and names and blanks are most tokens.
        if kind == K_IDENT {
            // Names and numbers, the commonest token: an identifier does not end a label
            // run, so `prev_label` is left for the label check below.
            token!(breaks);
            let start = i;
            let numeric = c.is_ascii_digit();
            i = if numeric {
                skip_while(s, i, |b| is_ident_byte(b) || b == b'.')
            } else {
                skip_while(s, i, is_ident_byte)
            };
            let kw = keyword(&s[start..i]);
            if kw != 0 {
                if kw & IF != 0 && prev_word_else {
                    d.else_if(start)?;
                } else if kw & NESTS_STATEMENT != 0 {
                    d.statement(start)?;
                }
                if kw & OPERATOR_WORD != 0 {
                    d.chain(1, start)?;
                }
            }
            // A label right after another label nests (`a: b: c: x`). Most names are
            // followed by punctuation: look for the colon only past blanks.
            let mut j = i;
            while j < n && matches!(s[j], b' ' | b'\t') {
                j += 1;
            }
            let labelled = !numeric && s.get(j) == Some(&b':') && s.get(j + 1) != Some(&b':');
            if labelled && prev_label {
                d.statement(start)?;
            }
            prev_label = labelled;
            if labelled {
                // Skip to the colon so it does not clear `prev_label`.
                i = j + 1;
            }
            prev_word_else = kw & ELSE != 0;
            regex_allowed = labelled || kw & PRECEDES_EXPRESSION != 0;
            continue;
        }
        if kind == K_BLANK {
            // Indentation comes in runs: skip them without going round the loop.
            i = skip_while(s, i + 1, |b| matches!(b, b' ' | b'\t'));
            continue;
        }
        match kind {
            K_NEWLINE => {
                pending_reset |= !last_was_operator;
                i += 1;
            }
            K_OPERATOR => {
                token!(continues);
                prev_label = false;
                // One binary operator per run, plus one level per prefix `!`/`~` (each nests),
                // and an arrow is a function: it nests like brackets do.
                let start = i;
                while i < n && is_operator_byte(s[i]) {
                    i += 1;
                }
                let run = &s[start..i];
                let prefixes = run.iter().filter(|&&b| b == b'!' || b == b'~').count();
                let arrow = if run.windows(2).any(|w| w == b"=>") {
                    ARROW_WEIGHT
                } else {
                    0
                };
                d.chain(1 + prefixes + arrow, i)?;
                regex_allowed = true;
                prev_word_else = false;
            }
            K_DOT => {
                token!(continues);
                prev_label = false;
                if s.get(i + 1) == Some(&b'.') && s.get(i + 2) == Some(&b'.') {
                    i += 3;
                } else {
                    d.chain(1, i)?;
                    i += 1;
                }
                regex_allowed = true;
                prev_word_else = false;
            }
            K_OPEN => {
                token!(breaks);
                prev_label = false;
                d.push(Open::Bracket, i)?;
                regex_allowed = true;
                prev_word_else = false;
                i += 1;
            }
            K_CLOSE => {
                token!(breaks);
                prev_label = false;
                match d.pop() {
                    Some(Open::TemplateExpr) if c == b'}' => in_template = true,
                    // A block ends the braceless statements it was the body of.
                    Some(_) if c == b'}' => d.end_statement(),
                    _ => {}
                }
                // After `)` or `]` a slash divides; after `}` it usually starts a regex.
                regex_allowed = c == b'}';
                prev_word_else = false;
                i += 1;
            }
            K_SEMICOLON => {
                token!(breaks);
                prev_label = false;
                d.end_statement();
                regex_allowed = true;
                prev_word_else = false;
                i += 1;
            }
            K_COMMA => {
                token!(breaks);
                prev_label = false;
                d.end_run();
                regex_allowed = true;
                prev_word_else = false;
                i += 1;
            }
            K_QUOTE => {
                token!(breaks);
                prev_label = false;
                i = skip_string(s, i + 1, c);
                regex_allowed = false;
            }
            K_BACKTICK => {
                token!(breaks);
                prev_label = false;
                in_template = true;
                i += 1;
            }
            K_SLASH => match s.get(i + 1) {
                // Comments are not tokens: no reset, no label change.
                Some(b'/') => {
                    i = memchr::memchr(b'\n', &s[i..]).map_or(n, |k| i + k);
                }
                Some(b'*') => {
                    i = memchr::memmem::find(&s[i + 2..], b"*/").map_or(n, |k| i + 2 + k + 2);
                }
                _ => {
                    token!(breaks);
                    prev_label = false;
                    if regex_allowed {
                        // Regex literal: up to an unescaped `/` outside a character class.
                        i += 1;
                        let mut in_class = false;
                        while i < n && s[i] != b'\n' {
                            match s[i] {
                                b'\\' => i += 1,
                                b'[' => in_class = true,
                                b']' => in_class = false,
                                b'/' if !in_class => break,
                                _ => {}
                            }
                            i += 1;
                        }
                        i += 1;
                        while i < n && is_ident_byte(s[i]) {
                            i += 1;
                        }
                        regex_allowed = false;
                    } else {
                        // A division.
                        regex_allowed = true;
                        i += 1;
                    }
                }
            },
            K_COLON => {
                // A label's colon keeps `prev_label` (the name before it set it).
                token!(breaks);
                regex_allowed = true;
                i += 1;
            }
            // Any other byte (K_OTHER; names and blanks were handled above).
            _ => {
                token!(breaks);
                prev_label = false;
                regex_allowed = true;
                i += 1;
            }
        }
    }
    // Unclosed levels (unbalanced input, and the top level) count too.
    while let Some(level) = d.levels.pop() {
        d.close_else_ifs(level.else_ifs);
    }
    Ok(Prescan {
        else_if_work: d.else_if_work,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The length-and-first-letter filter in front of `keyword` lets every keyword through
    /// (a keyword it turned away would hide nesting from the prescan) and stops other words.
    #[test]
    fn every_keyword_passes_the_shape_filter() {
        let keywords: [&[u8]; 18] = [
            b"if",
            b"in",
            b"do",
            b"of",
            b"for",
            b"new",
            b"with",
            b"void",
            b"case",
            b"else",
            b"while",
            b"await",
            b"yield",
            b"throw",
            b"typeof",
            b"delete",
            b"return",
            b"instanceof",
        ];
        for word in keywords {
            assert_ne!(keyword(word), 0, "{}", String::from_utf8_lossy(word));
        }
        for word in [
            &b"function"[..],
            b"var",
            b"this",
            b"iff",
            b"If",
            b"x",
            b"",
            b"_if",
        ] {
            assert_eq!(keyword(word), 0, "{}", String::from_utf8_lossy(word));
        }
    }

    #[test]
    fn prescan_accepts_ordinary_code() {
        let src = r#"
            // a comment with ( ( ( brackets
            const re = /[(\/]+/g; const s = "((((("; const t = `a ${ f(`(${x})`) } b`;
            /* block ( [ { */ if (a) { b = c / d; } else if (e) { f(); } else { g(); }
            const half = (1 + 2) / 2;
        "#;
        assert!(prescan(src).is_ok());
    }

    #[test]
    fn prescan_skips_brackets_in_escaped_strings_comments_and_templates() {
        // 401 brackets is past the limit; hidden in text, they must not count.
        let hidden = "(".repeat(401);
        for src in [
            format!(r#"x = "\"{hidden}\\";"#),
            format!(r#"x = '\'{hidden}';"#),
            format!("/* * / {hidden} **/ x = 1;"),
            format!("// {hidden}\nx = 1;"),
            format!("x = `\\` $ {{ {hidden}`;"),
        ] {
            assert!(prescan(&src).is_ok(), "{src}");
        }
        // Unterminated text runs to the end without reading past it.
        for src in ["x = \"abc", "x = 'a\\", "/* open", "x = `abc ${"] {
            assert!(prescan(src).is_ok(), "{src}");
        }
        // A string ends at a line break (a syntax error swc reports): brackets after it count.
        let cut = format!("x = \"a\n{}1{};", hidden, ")".repeat(401));
        assert!(matches!(prescan(&cut), Err(Refusal::Nesting { .. })));
    }

    #[test]
    fn prescan_refuses_deep_brackets() {
        let deep = format!("x = {}1{};", "(".repeat(401), ")".repeat(401));
        assert!(matches!(
            prescan(&deep),
            Err(Refusal::Nesting { depth: 401, .. })
        ));
        let ok = format!("x = {}1{};", "(".repeat(400), ")".repeat(400));
        assert!(prescan(&ok).is_ok());
        // Brackets inside strings, comments and templates do not count.
        let quoted = format!(
            "x = '{}'; // {}\n y = `{}`;",
            "(".repeat(999),
            "[".repeat(999),
            "{".repeat(999)
        );
        assert!(prescan(&quoted).is_ok());
        let templated = format!("x = {}1{};", "`${".repeat(401), "}`".repeat(401));
        assert!(matches!(prescan(&templated), Err(Refusal::Nesting { .. })));
    }

    #[test]
    fn prescan_refuses_long_else_if_chains_and_chains() {
        // One `else if` per line: the chain budget does not see it, the link count does.
        let mut src = String::from("if (a) {}");
        for _ in 0..5_001 {
            src.push_str("\nelse if (a) {}");
        }
        assert!(matches!(prescan(&src), Err(Refusal::ElseIf { .. })));
        let chain = format!("x = a{};", " + a".repeat(MAX_DEPTH_BUDGET + 10));
        assert!(matches!(prescan(&chain), Err(Refusal::Chain { .. })));
        // Continued over lines, it is still one chain.
        let lines = format!("x = a{};", "\n  .then(f)".repeat(MAX_DEPTH_BUDGET + 10));
        assert!(matches!(prescan(&lines), Err(Refusal::Chain { .. })));
        let bangs = format!("x = {}a;", "!".repeat(MAX_DEPTH_BUDGET + 10));
        assert!(matches!(prescan(&bangs), Err(Refusal::Chain { .. })));
        let typeofs = format!("x = {}a;", "typeof ".repeat(MAX_DEPTH_BUDGET + 10));
        assert!(matches!(prescan(&typeofs), Err(Refusal::Chain { .. })));
        // The same number of operators over many statements is fine, with or without `;`.
        let many = "x = a + b;\n".repeat(MAX_DEPTH_BUDGET * 2);
        assert!(prescan(&many).is_ok());
        let no_semicolons = "const x = a.b + c\n".repeat(MAX_DEPTH_BUDGET * 2);
        assert!(prescan(&no_semicolons).is_ok());
        // Brackets weigh more than chain elements.
        let mixed = format!(
            "x = {}a{}{};",
            "(".repeat(300),
            " + a".repeat(MAX_DEPTH_BUDGET - 800),
            ")".repeat(300)
        );
        assert!(matches!(prescan(&mixed), Err(Refusal::Chain { .. })));
    }

    #[test]
    fn prescan_measures_else_if_work_per_block() {
        let chain = |n: usize| format!("if (a) {{}}{}", " else if (a) {}".repeat(n));
        assert_eq!(prescan("x = 1;").map(|p| p.else_if_work), Ok(0));
        assert_eq!(prescan(&chain(100)).map(|p| p.else_if_work), Ok(10_000));
        // Two blocks of 100 cost two times 100 squared; one block of 200 costs twice that.
        let two = format!(
            "function f() {{ {} }} function g() {{ {} }}",
            chain(100),
            chain(100)
        );
        assert_eq!(prescan(&two).map(|p| p.else_if_work), Ok(20_000));
        assert_eq!(prescan(&chain(200)).map(|p| p.else_if_work), Ok(40_000));
    }
}
