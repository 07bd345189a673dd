//! Parsing one script with swc, behind the nesting [`prescan`] that refuses input swc would
//! crash on (see `prescan.rs`). [`parse`] tries the script's own goal first and falls back to
//! the other, so a classic script using `import` or a module using `with` still parses.

mod prescan;

use swc_common::input::StringInput;
use swc_common::{BytePos, Spanned};
use swc_ecma_ast::Program;
use swc_ecma_parser::{EsSyntax, Parser, Syntax};

pub use prescan::{
    ARROW_WEIGHT, BRACKET_WEIGHT, MAX_DEPTH_BUDGET, MAX_ELSE_IF_LINKS, MAX_NESTING, Prescan,
    Refusal, STATEMENT_WEIGHT, prescan,
};

/// How a script's text is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    Script,
    Module,
}

impl Goal {
    fn other(self) -> Goal {
        match self {
            Goal::Script => Goal::Module,
            Goal::Module => Goal::Script,
        }
    }
}

/// The result of [`parse`].
#[derive(Debug)]
pub enum Parsed {
    /// Parsed cleanly under some goal.
    Ok(Program),
    /// Parsed, but swc reported recoverable errors; the AST is still usable.
    Recovered(Program, String),
    /// Could not be parsed under either goal.
    Failed(String),
}

fn parse_as(src: &str, goal: Goal) -> Result<(Program, Vec<String>), String> {
    // swc positions are u32 and start at 1 (0 means "no position").
    let Some(end) = u32::try_from(src.len()).ok().and_then(|n| n.checked_add(1)) else {
        return Err(Refusal::TooLarge { bytes: src.len() }.to_string());
    };
    let end = BytePos(end);
    let input = StringInput::new(src, BytePos(1), end);
    let mut parser = Parser::new(Syntax::Es(EsSyntax::default()), input, None);
    let result = match goal {
        Goal::Script => parser.parse_script().map(Program::Script),
        Goal::Module => parser.parse_module().map(Program::Module),
    };
    let describe = |e: &swc_ecma_parser::error::Error| {
        format!(
            "{} at byte {}",
            e.kind().msg(),
            e.span().lo.0.saturating_sub(1)
        )
    };
    let recovered: Vec<String> = parser.take_errors().iter().map(describe).collect();
    match result {
        Ok(program) => Ok((program, recovered)),
        Err(e) => Err(describe(&e)),
    }
}

/// Parses `src`, preferring `goal` and falling back to the other goal. The caller must have
/// run [`prescan`] first.
pub fn parse(src: &str, goal: Goal) -> Parsed {
    let first = match parse_as(src, goal) {
        Ok((program, recovered)) if recovered.is_empty() => return Parsed::Ok(program),
        other => other,
    };
    let second = parse_as(src, goal.other());
    match (first, second) {
        (_, Ok((program, recovered))) if recovered.is_empty() => Parsed::Ok(program),
        (Ok((program, recovered)), _) => Parsed::Recovered(program, summarize(&recovered)),
        (Err(_), Ok((program, recovered))) => Parsed::Recovered(program, summarize(&recovered)),
        (Err(e), Err(_)) => Parsed::Failed(e),
    }
}

fn summarize(errors: &[String]) -> String {
    let first = errors.first().map(String::as_str).unwrap_or("syntax error");
    if errors.len() > 1 {
        format!("{first} (and {} more)", errors.len() - 1)
    } else {
        first.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_falls_back_to_the_other_goal() {
        assert!(matches!(
            parse("import x from './x.js'; x();", Goal::Script),
            Parsed::Ok(Program::Module(_))
        ));
        assert!(matches!(
            parse("with (a) { b(); }", Goal::Module),
            Parsed::Ok(Program::Script(_))
        ));
        assert!(matches!(
            parse("function (", Goal::Script),
            Parsed::Failed(_)
        ));
    }
}
