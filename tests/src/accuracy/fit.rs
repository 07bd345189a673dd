//! `cargo xtask accuracy --fit`: fits the cost model's unit weights (one multiplier per
//! operation class, `foresight_estimator::weights`) on the micro-benchmark set
//! ([`microbench`]), measured in headless Chromium exactly like the accuracy corpus (thread
//! time, median of five fresh loads, minus the empty page), and writes
//! `estimator/src/fitted.rs`. The accuracy corpus is never looked at here: it stays held out
//! for `cargo xtask accuracy` to score.
//!
//! The estimate of a page whose loop bounds are all known is linear in the weights, so each
//! page is priced once with nothing counted (the part no weight scales: the document, event
//! dispatch) and once per class with only that class counted; the fit then solves
//! `fixed + sum(w_k * x_k) = truth` in log terms (so a 5 ms page counts as much as a 500 ms
//! one, and being 3x high as much as 3x low) by reweighted non-negative least squares with a
//! weak pull of every weight towards 1 (the hand-set model), which keeps classes the set
//! barely exercises where they were. The JIT warm-up (how much more the first runs of code
//! cost, and how many runs that is) is not linear in the weights; it is chosen by a grid
//! search, each point a linear solve. The calibration kernel is one more row, weighted
//! heavily, and the weights are then rescaled so the kernel costs exactly what it did: the
//! device calibration and the library profiles are stated in its units.
//!
//! The CPU spread is the 10th and 90th percentile of the measured-to-predicted ratio over
//! leave-one-out fits (each page predicted by weights fitted without it), so it describes the
//! error on code the fit has not seen.

use foresight_estimate::page;
use foresight_estimator::calibration::{KERNEL_JS, call_units_weighted};
use foresight_estimator::{Budget, Calibration, Class, Weights, estimate_weighted};

use super::{Options, RUNS, install, microbench, stats, truth, truth_floor, write_pages};
use crate::Error;
use crate::http::StaticServer;

/// Pull of each weight towards 1, against a page's squared relative error.
const PRIOR: f64 = 0.02;
/// How much more the kernel row counts than a benchmark page.
const KERNEL_ROW_WEIGHT: f64 = 5.0;

/// Candidate numbers of cold runs (`Weights::warm_trips`); the fit picks one, and a
/// warm-up factor from [`WARM_FACTORS`], by grid search around the linear solve.
const WARM_TRIPS: &[f64] = &[1e3, 3e3, 1e4, 3e4, 1e5];
const WARM_FACTORS: &[f64] = &[0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// One page's features: the units no weight scales, each class's units with its weight at 1
/// (optimised code), and each class's extra units per unit of warm-up factor, per candidate
/// of [`WARM_TRIPS`].
#[derive(Clone)]
struct Features {
    fixed: f64,
    hot: [f64; Class::COUNT],
    warm: Vec<[f64; Class::COUNT]>,
}

impl Features {
    /// The features with warm-up (`factor`, `WARM_TRIPS[trips]`) folded in.
    fn at(&self, trips: usize, factor: f64) -> [f64; Class::COUNT] {
        let mut x = self.hot;
        if let Some(w) = self.warm.get(trips) {
            for (k, v) in x.iter_mut().enumerate() {
                *v += factor * w[k];
            }
        }
        x
    }
}

/// One page of the fit: its measured units and its features.
struct Row {
    name: String,
    /// Measured thread time in this run's units (ms times units per ms).
    y: f64,
    f: Features,
    /// The features at the warm-up being tried.
    x: [f64; Class::COUNT],
    fixed: f64,
    weight: f64,
}

/// Features of whatever `units(weights)` prices.
fn features_of(units: &dyn Fn(Weights) -> f64) -> Features {
    let fixed = units(Weights::none());
    let mut hot = [0.0; Class::COUNT];
    let mut warm = vec![[0.0; Class::COUNT]; WARM_TRIPS.len()];
    for (k, class) in Class::ALL.into_iter().enumerate() {
        hot[k] = (units(Weights::only(class, 0.0, 0.0)) - fixed).max(0.0);
        for (t, trips) in WARM_TRIPS.iter().enumerate() {
            warm[t][k] = (units(Weights::only(class, 1.0, *trips)) - fixed - hot[k]).max(0.0);
        }
    }
    Features { fixed, hot, warm }
}

/// Features of `sources`' load path.
fn features(sources: &foresight_shared::protocol::demand::PageSources) -> Features {
    features_of(&|w: Weights| {
        let d = estimate_weighted(
            sources,
            &Calibration { units_per_ms: 1.0 },
            Budget::default(),
            w,
        );
        d.paths.first().map_or(0.0, |p| p.cpu_ms.p50)
    })
}

/// Weighted sum of squared log errors of `m` over `rows`.
fn loss(rows: &[&Row], m: &[f64; Class::COUNT]) -> f64 {
    rows.iter()
        .map(|r| r.weight * (predict(r, m).max(f64::MIN_POSITIVE) / r.y).ln().powi(2))
        .sum()
}

/// Non-negative least squares of the rows' errors in log terms, with the pull towards 1:
/// a few rounds of reweighting (each page's error scaled by sqrt(truth x prediction), which
/// makes it ln(prediction / truth) near the solution, so under- and over-prediction by the
/// same factor weigh the same), each solved by coordinate descent (convex, so it converges).
fn solve(rows: &[&Row]) -> [f64; Class::COUNT] {
    let mut m = [1.0; Class::COUNT];
    let mut scale: Vec<f64> = rows.iter().map(|r| r.y).collect();
    for _ in 0..6 {
        m = solve_scaled(rows, &scale);
        scale = rows
            .iter()
            .map(|r| (r.y * predict(r, &m).max(r.y * 1e-3)).sqrt())
            .collect();
    }
    m
}

/// Minimises sum(weight * ((prediction - truth) / scale)^2) + PRIOR * sum((m - 1)^2), m >= 0.
fn solve_scaled(rows: &[&Row], scale: &[f64]) -> [f64; Class::COUNT] {
    let mut m = [1.0; Class::COUNT];
    let a: Vec<[f64; Class::COUNT]> = rows
        .iter()
        .zip(scale)
        .map(|(r, d)| {
            let s = r.weight.sqrt() / d;
            let mut v = [0.0; Class::COUNT];
            for (k, x) in r.x.iter().enumerate() {
                v[k] = x * s;
            }
            v
        })
        .collect();
    let b: Vec<f64> = rows
        .iter()
        .zip(scale)
        .map(|(r, d)| r.weight.sqrt() * (r.y - r.fixed) / d)
        .collect();
    let mut resid: Vec<f64> = a
        .iter()
        .zip(&b)
        .map(|(ai, bi)| bi - ai.iter().zip(&m).map(|(x, w)| x * w).sum::<f64>())
        .collect();
    for _ in 0..5_000 {
        let mut moved = 0.0f64;
        for k in 0..Class::COUNT {
            let norm: f64 = a.iter().map(|ai| ai[k] * ai[k]).sum();
            let grad: f64 = a.iter().zip(&resid).map(|(ai, r)| ai[k] * r).sum();
            // Minimise sum (r_i - a_ik * d)^2 + PRIOR * (m_k + d - 1)^2 over d.
            let d = (grad - PRIOR * (m[k] - 1.0)) / (norm + PRIOR);
            let new = (m[k] + d).max(0.0);
            let d = new - m[k];
            if d != 0.0 {
                for (ai, r) in a.iter().zip(resid.iter_mut()) {
                    *r -= ai[k] * d;
                }
                m[k] = new;
                moved = moved.max(d.abs());
            }
        }
        if moved < 1e-9 {
            break;
        }
    }
    m
}

fn predict(r: &Row, m: &[f64; Class::COUNT]) -> f64 {
    r.fixed + r.x.iter().zip(m).map(|(x, w)| x * w).sum::<f64>()
}

/// The `q` quantile of `v` (linear interpolation).
fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return 1.0;
    }
    let pos = q * (s.len() - 1) as f64;
    let (i, f) = (pos.floor() as usize, pos.fract());
    let lo = s[i.min(s.len() - 1)];
    let hi = s[(i + 1).min(s.len() - 1)];
    lo + (hi - lo) * f
}

pub async fn fit(options: Options, out: &std::path::Path) -> Result<(), Error> {
    let modules = install(&options.work)?;
    let site = super::write_site(&options.work, &modules)?;
    let pages = microbench::pages();
    write_pages(&site, &pages)?;
    let server = StaticServer::start(site).await?;
    let profile = tempfile::tempdir()?;
    let chromium = truth::Chromium::launch(&options.chromium, profile.path()).await?;
    let calibration = super::calibrate(&chromium, &server).await?;
    let upm = calibration.units_per_ms;

    let mut empty_runs = Vec::new();
    for _ in 0..RUNS {
        empty_runs.push(
            chromium
                .measure(&server.url("empty/index.html"))
                .await?
                .task_ms,
        );
    }
    let empty_ms = stats::median(&empty_runs);
    let mut rows = Vec::new();
    for p in &pages {
        let url = server.url(&format!("{}/index.html", p.name));
        let mut runs = Vec::new();
        for _ in 0..RUNS {
            runs.push(chromium.measure(&url).await?.task_ms);
        }
        let ms = (stats::median(&runs) - empty_ms).max(truth_floor(0));
        let u = url.clone();
        let f = tokio::task::spawn_blocking(move || {
            let loaded = page::load(&u).map_err(|e| Error::Setup(e.to_string()))?;
            Ok::<_, Error>(features(&loaded.sources))
        })
        .await
        .map_err(|e| Error::Setup(e.to_string()))??;
        eprintln!(
            "fit: {:<28} {:>9.2} ms  hand-set model {:>9.2} ms",
            p.name,
            ms,
            (f.fixed + f.hot.iter().sum::<f64>()) / upm
        );
        rows.push(Row {
            name: p.name.to_string(),
            y: ms * upm,
            fixed: f.fixed,
            x: f.hot,
            f,
            weight: 1.0,
        });
    }
    // The kernel: its units with the hand-set weights are, by the calibration's definition,
    // what it measured.
    let kf = features_of(&|w| call_units_weighted(KERNEL_JS, "foresightKernel", w));
    let kernel_units = call_units_weighted(KERNEL_JS, "foresightKernel", Weights::hand_set());
    let mut kernel = Row {
        name: "calibration kernel".into(),
        y: kernel_units,
        fixed: kf.fixed,
        x: kf.hot,
        f: kf,
        weight: KERNEL_ROW_WEIGHT,
    };

    // The warm-up: grid search, each point a linear solve.
    let mut best = (f64::INFINITY, 0usize, 0.0f64);
    for t in 0..WARM_TRIPS.len() {
        for &factor in WARM_FACTORS {
            for r in rows.iter_mut().chain(std::iter::once(&mut kernel)) {
                r.x = r.f.at(t, factor);
            }
            let all: Vec<&Row> = rows.iter().chain(std::iter::once(&kernel)).collect();
            let l = loss(&all, &solve(&all));
            if l < best.0 {
                best = (l, t, factor);
            }
        }
    }
    let (_, warm_t, warm_factor) = best;
    let warm_trips = WARM_TRIPS.get(warm_t).copied().unwrap_or(0.0);
    for r in rows.iter_mut().chain(std::iter::once(&mut kernel)) {
        r.x = r.f.at(warm_t, warm_factor);
    }
    println!(
        "warm-up: the first {warm_trips} runs of code cost {:.0}x more",
        1.0 + warm_factor
    );

    let normalise = |mut m: [f64; Class::COUNT]| {
        let k = predict(&kernel, &m);
        if k > 0.0 {
            let s = (kernel_units - kernel.fixed) / (k - kernel.fixed).max(f64::MIN_POSITIVE);
            for w in &mut m {
                *w *= s;
            }
        }
        m
    };
    let all: Vec<&Row> = rows.iter().chain(std::iter::once(&kernel)).collect();
    let m = normalise(solve(&all));

    // Leave-one-out ratios: each page predicted by weights fitted without it.
    let mut ratios = Vec::new();
    let mut hand_err = Vec::new();
    let mut fit_err = Vec::new();
    println!(
        "\n{:<28} {:>10} {:>10} {:>10} {:>10}",
        "benchmark", "truth ms", "hand-set", "fitted", "held out"
    );
    for (i, r) in rows.iter().enumerate() {
        let others: Vec<&Row> = rows
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, r)| r)
            .chain(std::iter::once(&kernel))
            .collect();
        let loo = normalise(solve(&others));
        let held = predict(r, &loo);
        ratios.push(r.y / held.max(f64::MIN_POSITIVE));
        let hand = predict(r, &[1.0; Class::COUNT]);
        hand_err.push((hand / r.y).ln().abs());
        fit_err.push((held / r.y).ln().abs());
        println!(
            "{:<28} {:>10.2} {:>10.2} {:>10.2} {:>10.2}",
            r.name,
            r.y / upm,
            hand / upm,
            predict(r, &m) / upm,
            held / upm
        );
    }
    let spread = (
        quantile(&ratios, 0.1).min(1.0),
        quantile(&ratios, 0.9).max(1.0),
    );
    println!(
        "\nmedian |ln(predicted/truth)|: hand-set {:.2}, fitted (held out) {:.2}",
        stats::median(&hand_err),
        stats::median(&fit_err)
    );
    println!(
        "CPU spread (p10, p90 of truth/prediction, held out): ({:.2}, {:.2})",
        spread.0, spread.1
    );
    println!("\n{:<16} {:>8}", "class", "weight");
    for (k, class) in Class::ALL.into_iter().enumerate() {
        let used = rows.iter().any(|r| r.x[k] > 0.0);
        println!(
            "{:<16} {:>8.3}{}",
            class.name(),
            m[k],
            if used { "" } else { "  (not exercised: prior)" }
        );
    }
    write_fitted(out, &m, spread, (warm_factor, warm_trips), upm, rows.len())?;
    println!("\nwrote {}", out.display());
    Ok(())
}

fn write_fitted(
    out: &std::path::Path,
    m: &[f64; Class::COUNT],
    spread: (f64, f64),
    warm: (f64, f64),
    upm: f64,
    pages: usize,
) -> Result<(), Error> {
    let mut s = String::from(
        "//! Unit weights and the CPU model's spread: GENERATED by `cargo xtask accuracy --fit` (a\n\
         //! regression on the micro-benchmark set in `tests/src/accuracy/microbench.rs`, measured in\n\
         //! headless Chromium; never on the accuracy corpus). Do not edit by hand; re-run the fit.\n",
    );
    s.push_str(&format!(
        "//! Last fit: {pages} benchmark pages, median of {RUNS} loads each, at {upm:.0} units per ms.\n\n"
    ));
    s.push_str(
        "/// Multiplier per operation class (`weights::Class::name`); classes not listed keep 1.\n",
    );
    s.push_str("pub const WEIGHTS: &[(&str, f64)] = &[\n");
    for (k, class) in Class::ALL.into_iter().enumerate() {
        s.push_str(&format!("    (\"{}\", {:.4}),\n", class.name(), m[k]));
    }
    s.push_str("];\n\n");
    s.push_str(
        "/// p10 and p90 of the measured-to-predicted CPU ratio, from the fit's leave-one-out\n\
         /// residuals: the model's own error, applied to every CPU prediction.\n",
    );
    s.push_str(&format!(
        "pub const CPU_SPREAD: (f64, f64) = ({:.3}, {:.3});\n",
        spread.0, spread.1
    ));
    s.push_str(
        "\n/// The JIT warm-up: (how much more cold code costs than optimised code, how many runs are\n\
         /// cold), chosen by grid search with the weights.\n",
    );
    s.push_str(&format!(
        "pub const WARM_UP: (f64, f64) = ({:.1}, {:.1});\n",
        warm.0, warm.1
    ));
    std::fs::write(out, s)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(y: f64, x: &[(Class, f64)]) -> Row {
        let mut v = [0.0; Class::COUNT];
        for (c, u) in x {
            v[Class::ALL.iter().position(|k| k == c).unwrap_or(0)] = *u;
        }
        Row {
            name: String::new(),
            y,
            fixed: 0.0,
            x: v,
            f: Features {
                fixed: 0.0,
                hot: v,
                warm: Vec::new(),
            },
            weight: 1.0,
        }
    }

    #[test]
    fn the_solver_recovers_known_weights_and_keeps_unexercised_classes_at_one() {
        // Truth: ops cost 2, calls 0.5.
        let rows = [
            row(
                2.0 * 100.0 + 0.5 * 10.0,
                &[(Class::Op, 100.0), (Class::Call, 10.0)],
            ),
            row(
                2.0 * 50.0 + 0.5 * 80.0,
                &[(Class::Op, 50.0), (Class::Call, 80.0)],
            ),
            row(2.0 * 10.0, &[(Class::Op, 10.0)]),
        ];
        // As many rows as a real benchmark set has, so the data outweighs the weak prior.
        let refs: Vec<&Row> = rows.iter().cycle().take(rows.len() * 18).collect();
        let m = solve(&refs);
        let at = |c: Class| m[Class::ALL.iter().position(|k| *k == c).unwrap_or(0)];
        assert!((at(Class::Op) - 2.0).abs() < 0.05, "{m:?}");
        assert!((at(Class::Call) - 0.5).abs() < 0.05, "{m:?}");
        assert_eq!(at(Class::Sort), 1.0);
        assert!(m.iter().all(|w| *w >= 0.0));
    }

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(quantile(&[1.0, 2.0, 3.0], 0.5), 2.0);
        assert!((quantile(&[0.0, 10.0], 0.1) - 1.0).abs() < 1e-12);
    }
}
