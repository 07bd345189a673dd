//! Prints the work units the estimator predicts for one run of its calibration kernel, for
//! tools that time the kernel elsewhere (`tools/lib-profiles/measure.mjs`).

use foresight_estimator::calibration::{KERNEL_JS, call_units};

fn main() {
    println!("{}", call_units(KERNEL_JS, "foresightKernel"));
}
