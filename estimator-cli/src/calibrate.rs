//! `--calibrate`: measures this device's work units per millisecond by running the
//! estimator's calibration kernel in headless Chromium, the engine the pages run in.
//!
//! Chromium is found like the tests find it: `$FORESIGHT_CHROMIUM`, else Debian's
//! `/usr/lib/chromium/chromium` (the real binary; `/usr/bin/chromium` is a wrapper script),
//! else `chromium` on `PATH`. The kernel runs in a `data:` page with a fresh profile; the page
//! writes its timing into the DOM and `--dump-dom` prints it.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use foresight_estimator::Calibration;
use foresight_estimator::calibration::{KERNEL_JS, call_units, from_measurement};

/// Runs of the kernel before timing (tiering up), and timed runs (the median is kept).
const WARMUP_RUNS: u32 = 3;
const TIMED_RUNS: u32 = 7;

#[derive(Debug, Clone)]
pub struct Measured {
    pub calibration: Calibration,
    pub units: f64,
    pub median_ms: f64,
}

pub fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FORESIGHT_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let debian = PathBuf::from("/usr/lib/chromium/chromium");
    if debian.exists() {
        return Some(debian);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("chromium"))
        .find(|p| p.exists())
}

/// The page that times the kernel and writes `{"ms": median}` into its body.
fn page() -> String {
    format!(
        "<!DOCTYPE html><body><script>{KERNEL_JS}
const times = [];
let sink = 0;
for (let r = 0; r < {WARMUP_RUNS}; r++) sink += foresightKernel();
for (let r = 0; r < {TIMED_RUNS}; r++) {{
  const t0 = performance.now();
  sink += foresightKernel();
  times.push(performance.now() - t0);
}}
times.sort((a, b) => a - b);
document.body.textContent = 'FORESIGHT' + JSON.stringify({{ ms: times[times.length >> 1], sink }}) + 'END';
</script></body>"
    )
}

fn data_url(html: &str) -> String {
    let mut out = String::from("data:text/html;charset=utf-8,");
    for b in html.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Measures the calibration in headless Chromium.
pub fn measure() -> Result<Measured, String> {
    let chromium = find_chromium().ok_or(
        "no Chromium found for --calibrate: install Debian's `chromium` or set FORESIGHT_CHROMIUM \
         (or pass --units-per-ms)",
    )?;
    let profile = tempfile::tempdir().map_err(|e| format!("temporary profile: {e}"))?;
    let output = Command::new(&chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(data_url(&page()))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", chromium.display()))?;
    let dom = String::from_utf8_lossy(&output.stdout);
    let json = dom
        .split("FORESIGHT")
        .nth(1)
        .and_then(|r| r.split("END").next())
        .ok_or_else(|| {
            format!(
                "{} printed no measurement (exit status {})",
                chromium.display(),
                output.status
            )
        })?;
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("measurement {json:?}: {e}"))?;
    let median_ms = v["ms"].as_f64().ok_or("measurement without ms")?;
    let units = call_units(KERNEL_JS, "foresightKernel");
    let calibration = from_measurement(units, median_ms)
        .ok_or_else(|| format!("implausible measurement: {units} units in {median_ms} ms"))?;
    Ok(Measured {
        calibration,
        units,
        median_ms,
    })
}
