//! `cargo xtask accuracy`: builds and runs `foresight-accuracy` (in the end-to-end harness
//! crate, which has the CDP client and the loopback server), which scores the estimator's
//! predictions against page loads measured in headless Chromium. Its libraries are fetched
//! with npm at run time into `target/accuracy`.

use crate::util::{self, Result, cargo, paths};

pub fn accuracy() -> Result<()> {
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
    util::step("measuring the corpus (median of 5 loads per page)");
    util::run(cmd)
}
