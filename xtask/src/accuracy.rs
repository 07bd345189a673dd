//! `cargo xtask accuracy`: builds and runs `foresight-accuracy` (in the end-to-end harness
//! crate, which has the CDP client and the loopback server), which scores the estimator's
//! predictions against page loads measured in headless Chromium. Its libraries are fetched
//! with npm at run time into `target/accuracy`.

use crate::util::{self, Result, cargo, paths};

/// With `fit`, fits the unit weights on the micro-benchmark set instead of scoring the corpus
/// and rewrites `estimator/src/fitted.rs`.
pub fn accuracy(fit: bool) -> Result<()> {
    let browsers = util::Browsers::find()?;
    util::step("building the accuracy runner (release)");
    cargo(&[
        "build",
        "--release",
        "-p",
        "foresight-tests",
        "--bin",
        "foresight-accuracy",
    ])?;
    let runner = paths::target_dir().join("release/foresight-accuracy");
    let mut cmd = std::process::Command::new(runner);
    cmd.arg("--work")
        .arg(paths::target_dir().join("accuracy"))
        .env(util::ENV_CHROMIUM, &browsers.chromium);
    if fit {
        cmd.arg("--fit")
            .arg(paths::workspace_root().join("estimator/src/fitted.rs"));
        util::step("fitting unit weights on the micro-benchmarks (median of 5 loads per page)");
    } else {
        util::step("measuring the corpus (median of 5 loads per page)");
    }
    util::run(cmd)
}
