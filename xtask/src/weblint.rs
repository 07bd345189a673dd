//! `web-ext lint` (Mozilla's extension linter, from npm) over the packaged Firefox extension,
//! as part of `cargo xtask test`: an error fails the run; warnings are printed.
//!
//! web-ext is installed on first use into `target/foresight/node-tools` (never committed),
//! pinned to one version so results do not drift.

use std::path::Path;
use std::process::Command;

use crate::util::{self, Result, paths};

const WEB_EXT: &str = "web-ext@8.10.0";

pub fn lint(dist: &Path) -> Result<()> {
    let tools = paths::target_dir().join("foresight").join("node-tools");
    let bin = tools.join("node_modules/.bin/web-ext");
    if !bin.exists() {
        util::step(&format!("installing {WEB_EXT} from npm (once)"));
        std::fs::create_dir_all(&tools)?;
        let mut npm = Command::new("npm");
        npm.args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(&tools)
        .arg(WEB_EXT);
        util::run(npm).map_err(|e| {
            format!("{e}\n  web-ext needs Node.js and npm: `sudo apt-get install -y nodejs npm`")
        })?;
    }
    util::step("web-ext lint (Firefox package)");
    let out = Command::new(&bin)
        .args([
            "lint",
            "--output",
            "json",
            "--no-config-discovery",
            "--source-dir",
        ])
        .arg(dist.join("firefox"))
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "web-ext lint printed no JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    for kind in ["errors", "warnings", "notices"] {
        for m in report[kind].as_array().into_iter().flatten() {
            eprintln!(
                "    web-ext {kind}: {} {} ({})",
                m["code"].as_str().unwrap_or("?"),
                m["message"].as_str().unwrap_or(""),
                m["file"].as_str().unwrap_or("")
            );
        }
    }
    let errors = report["summary"]["errors"].as_u64().unwrap_or(u64::MAX);
    if errors > 0 {
        return Err(format!("web-ext lint found {errors} error(s) in the Firefox package").into());
    }
    Ok(())
}
