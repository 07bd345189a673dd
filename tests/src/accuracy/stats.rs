//! The accuracy statistics: Spearman's rank correlation, mean absolute percentage error and
//! the share of truths inside the predicted [p10, p90].

/// Ranks (1-based) with ties given their average rank.
fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut r = vec![0.0; xs.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && xs[idx[j + 1]] == xs[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            r[idx[k]] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rho: the Pearson correlation of the ranks.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    if va == 0.0 || vb == 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}

/// Mean of |predicted - truth| / truth, as a percentage.
pub fn mape(predicted: &[f64], truth: &[f64]) -> f64 {
    let n = truth.len().max(1) as f64;
    100.0
        * predicted
            .iter()
            .zip(truth)
            .map(|(p, t)| (p - t).abs() / t.abs().max(f64::MIN_POSITIVE))
            .sum::<f64>()
        / n
}

/// Share (0-100) of truths within [lo, hi].
pub fn coverage(lo: &[f64], hi: &[f64], truth: &[f64]) -> f64 {
    let n = truth.len().max(1) as f64;
    let inside = truth
        .iter()
        .zip(lo.iter().zip(hi))
        .filter(|(t, (l, h))| **l <= **t && **t <= **h)
        .count();
    100.0 * inside as f64 / n
}

pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_of_monotone_and_reversed_series() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert!((spearman(&a, &[10.0, 20.0, 30.0, 400.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&a, &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // Ties share their rank.
        assert_eq!(ranks(&[5.0, 1.0, 5.0]), vec![2.5, 1.0, 2.5]);
    }

    #[test]
    fn mape_and_coverage() {
        assert!((mape(&[110.0, 50.0], &[100.0, 100.0]) - 30.0).abs() < 1e-9);
        assert_eq!(coverage(&[0.0, 5.0], &[10.0, 6.0], &[5.0, 7.0]), 50.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    }
}
