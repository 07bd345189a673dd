//! Small helpers shared by the xtask commands: running cargo and other programs, locating the
//! workspace and its artifacts, finding the browsers, and the environment the tests read.

use std::path::{Path, PathBuf};
use std::process::Command;

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Environment variables through which xtask tells the tests and the demo where things are.
/// `foresight-tests` reads the same names (tests/src/artifacts.rs).
pub const ENV_DIST_DIR: &str = "FORESIGHT_DIST_DIR";
pub const ENV_BIN_DIR: &str = "FORESIGHT_BIN_DIR";
pub const ENV_CHROMIUM: &str = "FORESIGHT_CHROMIUM";
pub const ENV_FIREFOX: &str = "FORESIGHT_FIREFOX";

pub mod paths {
    use std::path::PathBuf;

    pub fn workspace_root() -> PathBuf {
        // xtask lives one level below the workspace root.
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default()
    }

    pub fn target_dir() -> PathBuf {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"))
    }

    pub fn bin_dir() -> PathBuf {
        target_dir().join("debug")
    }

    pub fn dist_dir() -> PathBuf {
        target_dir().join("foresight").join("dist")
    }
}

pub fn step(what: &str) {
    eprintln!("==> {what}");
}

pub fn cargo_command(args: &[&str]) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(args).current_dir(paths::workspace_root());
    cmd
}

pub fn cargo(args: &[&str]) -> Result<()> {
    run(cargo_command(args))
}

pub fn run(mut cmd: Command) -> Result<()> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed ({status})").into())
    }
}

/// Installs the wasm32 target through rustup when it is missing.
pub fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains("wasm32-unknown-unknown") => {
            Ok(())
        }
        Ok(_) => {
            step("installing the wasm32-unknown-unknown target (rustup target add)");
            let mut cmd = Command::new("rustup");
            cmd.args(["target", "add", "wasm32-unknown-unknown"]);
            run(cmd)
        }
        Err(e) => Err(format!(
            "cannot run rustup ({e}); install the wasm32-unknown-unknown target for your toolchain"
        )
        .into()),
    }
}

/// The browsers the end-to-end tests and the demo drive.
pub struct Browsers {
    pub chromium: PathBuf,
    pub firefox: PathBuf,
}

impl Browsers {
    pub fn find() -> Result<Self> {
        let chromium = find_program(
            ENV_CHROMIUM,
            // The real binary: /usr/bin/chromium is a wrapper script that adds its own flags.
            &["/usr/lib/chromium/chromium"],
            &["chromium", "chromium-browser"],
        );
        let firefox = find_program(
            ENV_FIREFOX,
            &["/usr/lib/firefox-esr/firefox-esr"],
            &["firefox-esr", "firefox"],
        );
        match (chromium, firefox) {
            (Some(chromium), Some(firefox)) => Ok(Self { chromium, firefox }),
            (c, f) => {
                let mut missing = Vec::new();
                if c.is_none() {
                    missing.push("chromium");
                }
                if f.is_none() {
                    missing.push("firefox-esr");
                }
                Err(format!(
                    "the end-to-end tests need {}: install with `sudo apt-get install -y {}` \
                     (or point {ENV_CHROMIUM}/{ENV_FIREFOX} at the binaries)",
                    missing.join(" and "),
                    missing.join(" ")
                )
                .into())
            }
        }
    }
}

fn find_program(env: &str, absolute: &[&str], names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = absolute.iter().map(Path::new).find(|p| p.is_file()) {
        return Some(p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Points a test or demo process at the built artifacts and the browsers.
pub fn test_env(cmd: &mut Command, dist: &Path, browsers: &Browsers) {
    cmd.env(ENV_DIST_DIR, dist)
        .env(ENV_BIN_DIR, paths::bin_dir())
        .env(ENV_CHROMIUM, &browsers.chromium)
        .env(ENV_FIREFOX, &browsers.firefox);
}
