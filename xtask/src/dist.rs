//! `cargo xtask dist`: the extension, built and packaged for Chrome and Firefox.
//!
//! Steps: compile `foresight-wasm` for wasm32 (profile `wasm-release`), generate the JS glue
//! with `wasm-bindgen-cli-support` (pinned to the same version as `wasm-bindgen`, so the glue
//! always matches), copy `extension/src`, write each browser's manifest, and zip each folder.
//!
//! Output, under `target/foresight/dist/`: `chrome/` and `firefox/` (load these unpacked),
//! `foresight-<version>-chrome.zip` and `foresight-<version>-firefox.xpi`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::manifest::{self, Browser};
use crate::util::{self, Result, cargo, paths};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Builds everything and returns the dist directory.
pub fn dist() -> Result<PathBuf> {
    util::ensure_wasm_target()?;
    util::step("building the wasm estimator (wasm32, profile wasm-release)");
    cargo(&[
        "build",
        "-p",
        "foresight-wasm",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "wasm-release",
    ])?;
    let wasm = paths::target_dir().join("wasm32-unknown-unknown/wasm-release/foresight_wasm.wasm");

    let root = paths::workspace_root();
    let dist = paths::dist_dir();
    let glue = dist.join("wasm-glue");
    util::step("generating the wasm JS glue (wasm-bindgen)");
    if glue.exists() {
        fs::remove_dir_all(&glue)?;
    }
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .web(true)?
        .omit_default_module_path(false)
        .typescript(false)
        // `__wbg_reset_state()` re-instantiates the module in place: after a trap (a stack
        // overflow or panic in wasm) the instance is broken for good, and the glue caches
        // it, so extension/src/estimator.js resets it and carries on.
        .reset_state_function(true)
        .generate(&glue)
        .map_err(|e| format!("wasm-bindgen failed: {e}"))?;

    let base: serde_json::Value = serde_json::from_str(&fs::read_to_string(
        root.join("extension/manifest.base.json"),
    )?)?;
    // The native host's manifest allows exactly this id; a changed key would lock it out.
    let key = base["chrome"]["key"].as_str().unwrap_or_default();
    let id = manifest::chrome_extension_id(key)?;
    if id != foresight_shared::ids::CHROME_EXTENSION_ID {
        return Err(format!(
            "the manifest key gives extension id {id}, but shared/src/ids.rs says {}",
            foresight_shared::ids::CHROME_EXTENSION_ID
        )
        .into());
    }
    for browser in Browser::ALL {
        let out = dist.join(browser.name());
        util::step(&format!("packaging the extension for {}", browser.name()));
        if out.exists() {
            fs::remove_dir_all(&out)?;
        }
        copy_dir(&root.join("extension/src"), &out)?;
        copy_dir(&glue, &out.join("wasm"))?;
        let manifest = manifest::for_browser(&base, browser, VERSION)?;
        fs::write(
            out.join("manifest.json"),
            serde_json::to_string_pretty(&manifest)? + "\n",
        )?;
        let archive = dist.join(match browser {
            Browser::Chrome => format!("foresight-{VERSION}-chrome.zip"),
            Browser::Firefox => format!("foresight-{VERSION}-firefox.xpi"),
        });
        zip_dir(&out, &archive)?;
    }
    eprintln!("    extension packaged in {}", dist.display());
    Ok(dist)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Zips a folder with paths relative to it, in a stable order so builds are reproducible.
fn zip_dir(dir: &Path, archive: &Path) -> Result<()> {
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    files.sort();
    let mut zip = zip::ZipWriter::new(fs::File::create(archive)?);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    for file in files {
        let name = file.strip_prefix(dir)?.to_string_lossy().replace('\\', "/");
        zip.start_file(name, options)?;
        zip.write_all(&fs::read(&file)?)?;
    }
    zip.finish()?;
    Ok(())
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            collect_files(&entry.path(), out)?;
        } else {
            out.push(entry.path());
        }
    }
    Ok(())
}
