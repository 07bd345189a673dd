//! `foresight-broker doctor`: what this host offers the Node backend, layer by layer, and
//! whether the broker would enable it. The same detection runs at every start-up.

use std::fmt::Write as _;

use super::{Detection, NodeMode, NodeSettings};

/// The report, one line per layer, for people.
pub fn report(settings: &NodeSettings, detection: &Detection, enabled: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "node: {}",
        match (&detection.node, &detection.version) {
            (Some(path), Some(version)) => format!("{} ({version})", path.display()),
            (Some(path), None) => path.display().to_string(),
            _ => "not found".to_string(),
        }
    );
    for l in &detection.layers {
        let mark = match l.status.as_str() {
            "applied" => "ok  ",
            "not-needed" => "n/a ",
            _ => "MISSING",
        };
        let _ = writeln!(out, "  {mark} {:<18} {}", l.layer.name(), l.detail);
    }
    let verdict = if enabled {
        let weaker = detection.layers.iter().any(|l| l.missing());
        if weaker {
            "Node backend: ENABLED with missing layers (node.accept_weaker_sandbox is set)"
                .to_string()
        } else {
            "Node backend: enabled, every isolation layer present".to_string()
        }
    } else if settings.mode == NodeMode::Off {
        "Node backend: disabled by configuration; workers run on QuickJS".to_string()
    } else {
        format!(
            "Node backend: NOT enabled ({}); workers run on QuickJS",
            detection.problem.as_deref().unwrap_or("unknown reason")
        )
    };
    let _ = writeln!(out, "{verdict}");
    out
}
