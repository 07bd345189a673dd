//! Where the built artifacts are: the packaged extension, the binaries, the browsers.
//!
//! `cargo xtask test` and `cargo xtask demo` set the environment variables below; a plain
//! `cargo test` falls back to the default locations and says exactly what to run when
//! something is missing.

use std::path::{Path, PathBuf};

use crate::Error;

pub const ENV_DIST_DIR: &str = "FORESIGHT_DIST_DIR";
pub const ENV_BIN_DIR: &str = "FORESIGHT_BIN_DIR";
pub const ENV_CHROMIUM: &str = "FORESIGHT_CHROMIUM";
pub const ENV_FIREFOX: &str = "FORESIGHT_FIREFOX";

#[derive(Debug, Clone)]
pub struct Artifacts {
    /// Holds `chrome/` and `firefox/`, the unpacked extension for each browser.
    pub dist_dir: PathBuf,
    /// Holds `foresight-host` and `foresight-broker`.
    pub bin_dir: PathBuf,
    pub chromium: PathBuf,
    pub firefox: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn from_env(name: &str, default: impl FnOnce() -> PathBuf) -> PathBuf {
    std::env::var_os(name)
        .map(PathBuf::from)
        .unwrap_or_else(default)
}

impl Artifacts {
    pub fn locate() -> Result<Self, Error> {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"));
        let artifacts = Self {
            dist_dir: from_env(ENV_DIST_DIR, || target.join("foresight/dist")),
            bin_dir: from_env(ENV_BIN_DIR, || target.join("debug")),
            chromium: from_env(ENV_CHROMIUM, || "/usr/lib/chromium/chromium".into()),
            firefox: from_env(ENV_FIREFOX, || "/usr/lib/firefox-esr/firefox-esr".into()),
        };
        let checks = [
            (
                artifacts.extension("chrome").join("manifest.json"),
                "cargo xtask dist",
            ),
            (
                artifacts.extension("firefox").join("manifest.json"),
                "cargo xtask dist",
            ),
            (artifacts.host_binary(), "cargo build -p foresight-host"),
            (artifacts.broker_binary(), "cargo build -p foresight-broker"),
            (artifacts.chromium.clone(), "apt-get install chromium"),
            (artifacts.firefox.clone(), "apt-get install firefox-esr"),
        ];
        for (path, fix) in checks {
            if !path.exists() {
                return Err(Error::Setup(format!(
                    "{} is missing: run `{fix}` (or simply `cargo xtask test`, which builds everything)",
                    path.display()
                )));
            }
        }
        Ok(artifacts)
    }

    /// The unpacked extension for `browser` ("chrome" or "firefox").
    pub fn extension(&self, browser: &str) -> PathBuf {
        self.dist_dir.join(browser)
    }

    pub fn host_binary(&self) -> PathBuf {
        self.bin_dir.join("foresight-host")
    }

    pub fn broker_binary(&self) -> PathBuf {
        self.bin_dir.join("foresight-broker")
    }

    /// Where tests save screenshots for people to look at (`target/foresight/screenshots`).
    pub fn screenshots_dir(&self) -> PathBuf {
        self.dist_dir
            .parent()
            .map(|p| p.join("screenshots"))
            .unwrap_or_else(|| self.dist_dir.join("screenshots"))
    }

    /// The fixture pages shipped with the tests.
    pub fn fixtures_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
    }
}
