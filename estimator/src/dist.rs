//! Uncertain quantities as three quantiles, and the arithmetic the cost model needs on them.
//!
//! The estimator never knows a cost exactly (unknown loop bounds, unresolved calls, the unit
//! model itself), so every cost is a [`Dist`]: p10, p50 and p90 of the quantity. Parts are
//! combined as independent: sums add medians and combine tails in quadrature, products
//! multiply medians and combine log-spreads in quadrature. Closed forms keep the estimator
//! deterministic (no sampling) and keep `p10 <= p50 <= p90` by construction.

use std::cell::Cell;
use std::ops::{Add, AddAssign};

use foresight_shared::protocol::Quantiles;

/// Largest value any quantile may take. Costs of nested unknown loops multiply quickly, and
/// JSON cannot carry infinity, so results are clamped here (1e15 ms is 30,000 years; 1e15
/// bytes is a petabyte: both mean "absurdly large", which is all a caller needs to know).
pub const MAX_VALUE: f64 = 1e15;

/// p10, p50 and p90 of a non-negative quantity.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Dist {
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
}

impl Dist {
    pub const ZERO: Dist = Dist {
        p10: 0.0,
        p50: 0.0,
        p90: 0.0,
    };

    /// A quantity given by its quantiles. Written for constant tables, so it does not sort;
    /// [`Dist::sanitized`] does.
    pub const fn new(p10: f64, p50: f64, p90: f64) -> Self {
        Dist { p10, p50, p90 }
    }

    pub const fn exact(v: f64) -> Self {
        Dist {
            p10: v,
            p50: v,
            p90: v,
        }
    }

    pub fn scale(self, k: f64) -> Self {
        Dist {
            p10: self.p10 * k,
            p50: self.p50 * k,
            p90: self.p90 * k,
        }
        .sanitized()
    }

    /// Product of two independent non-negative quantities (e.g. body cost times trip count).
    ///
    /// Medians multiply. The tails are combined as for independent log-normal factors: the
    /// log-ratios `ln(p90/p50)` (and `ln(p50/p10)`) add in quadrature. Multiplying the p90s
    /// instead would assume every unknown loop of a nest runs long at once, which makes the
    /// p90 of k nested unknown loops grow as 100^k rather than 100^sqrt(k).
    pub fn times(self, other: Dist) -> Self {
        let (a, b) = (self.sanitized(), other.sanitized());
        let p50 = a.p50 * b.p50;
        if !(a.p50 > 0.0 && b.p50 > 0.0) {
            // A median of zero has no log-ratio to combine; fall back to the plain product.
            return Dist {
                p10: a.p10 * b.p10,
                p50,
                p90: a.p90 * b.p90,
            }
            .sanitized();
        }
        // An exact factor has no spread to add: the product is the other one scaled, which
        // is what the formula below gives, without its logarithms and exponentials (a
        // software libm in wasm, and most loops have a known trip count).
        if b.p10 == b.p90 {
            return a.scale(b.p50);
        }
        if a.p10 == a.p90 {
            return b.scale(a.p50);
        }
        let spread = |x: f64, y: f64| (x.ln().powi(2) + y.ln().powi(2)).sqrt();
        let up = spread(a.p90 / a.p50, b.p90 / b.p50);
        let p10 = if a.p10 > 0.0 && b.p10 > 0.0 {
            p50 / spread(a.p50 / a.p10, b.p50 / b.p10).exp()
        } else {
            0.0
        };
        Dist {
            p10,
            p50,
            p90: p50 * up.exp(),
        }
        .sanitized()
    }

    /// Scales the tails away from the median: `p10 * low`, `p90 * high`. Used for the
    /// model's own error, which is there even when every loop bound is known.
    pub fn widen(self, low: f64, high: f64) -> Self {
        Dist {
            p10: self.p10 * low,
            p50: self.p50,
            p90: self.p90 * high,
        }
        .sanitized()
    }

    /// One of several equally likely alternatives runs (branches, candidate callees): the
    /// quantiles of the equal-weight mixture of the arms.
    ///
    /// Each arm's distribution function is taken as piecewise linear through its three points
    /// (0.1 at p10, 0.5 at p50, 0.9 at p90) with exponential tails whose scale is set by the
    /// neighbouring segment (so an exact arm is a step). The mixture's quantiles are found by
    /// bisection between the smallest p10 and the largest p90, which bracket them. An
    /// `if (rare) { heavy() }` thus has a median near the light arm and a p90 inside the heavy
    /// arm's range, rather than the heavy arm's p90.
    pub fn mixture(arms: &[Dist]) -> Self {
        // Nineteen mixtures in twenty have two arms (an `if`, a `?:`, `&&`): the same
        // answers as below, without copying into the general path's arrays.
        if let [a, b] = arms {
            return Self::mixture_of_two(a.sanitized(), b.sanitized());
        }
        // The cost pass mixes at every branch and multi-callee call: no allocation for the
        // usual handful of arms.
        let mut inline = [Dist::ZERO; INLINE_ARMS];
        let heap: Vec<Dist>;
        let arms: &[Dist] = if arms.len() <= INLINE_ARMS {
            for (slot, a) in inline.iter_mut().zip(arms) {
                *slot = a.sanitized();
            }
            inline.get(..arms.len()).unwrap_or(&[])
        } else {
            heap = arms.iter().map(|a| a.sanitized()).collect();
            &heap
        };
        let Some(first) = arms.first() else {
            return Dist::ZERO;
        };
        if arms.iter().all(|a| a == first) {
            return *first;
        }
        if arms.iter().all(|a| a.p10 == a.p90) {
            // All exact: the quantiles of a discrete uniform distribution. `arms` is at most
            // INLINE_ARMS long here unless it was already copied to the heap.
            let mut inline = [0.0; INLINE_ARMS];
            let mut heap: Vec<f64>;
            let v: &mut [f64] = if arms.len() <= INLINE_ARMS {
                for (slot, a) in inline.iter_mut().zip(arms) {
                    *slot = a.p50;
                }
                inline.get_mut(..arms.len()).unwrap_or(&mut [])
            } else {
                heap = arms.iter().map(|a| a.p50).collect();
                &mut heap
            };
            v.sort_unstable_by(f64::total_cmp);
            let at = |q: f64| {
                let i = ((q * v.len() as f64).ceil() as usize).saturating_sub(1);
                v.get(i.min(v.len() - 1)).copied().unwrap_or(0.0)
            };
            return Dist::new(at(0.1), at(0.5), at(0.9)).sanitized();
        }
        // The commonest mixture by far (`if` without `else`, `a && b()`): one arm against
        // nothing. Half the mass sits at zero, so p10 = p50 = 0 and the p90 is the other
        // arm's 0.8 quantile, three quarters of the way from its p50 to its p90 on the
        // distribution function below: the general answer, in closed form.
        if let [a, b] = arms
            && (*a == Dist::ZERO || *b == Dist::ZERO)
        {
            let d = if *a == Dist::ZERO { *b } else { *a };
            return Dist::new(0.0, 0.0, d.p50 + 0.75 * (d.p90 - d.p50)).sanitized();
        }
        let q = Mixture::new(arms);
        Dist::new(q.quantile(0.1), q.quantile(0.5), q.quantile(0.9)).sanitized()
    }

    /// [`Dist::mixture`] of two sanitized arms, taking the same shortcuts in the same order.
    fn mixture_of_two(a: Dist, b: Dist) -> Self {
        if a == b {
            return a;
        }
        if a.p10 == a.p90 && b.p10 == b.p90 {
            // Two exact arms: the lower value is the p10 and the p50, the higher the p90
            // (the discrete uniform quantiles below, ordered as `total_cmp` sorts).
            let (lo, hi) = if a.p50.total_cmp(&b.p50).is_le() {
                (a.p50, b.p50)
            } else {
                (b.p50, a.p50)
            };
            return Dist::new(lo, lo, hi).sanitized();
        }
        if a == Dist::ZERO || b == Dist::ZERO {
            let d = if a == Dist::ZERO { b } else { a };
            return Dist::new(0.0, 0.0, d.p50 + 0.75 * (d.p90 - d.p50)).sanitized();
        }
        let arms = [a, b];
        let q = Mixture::new(&arms);
        Dist::new(q.quantile(0.1), q.quantile(0.5), q.quantile(0.9)).sanitized()
    }

    /// The distribution function described at [`Dist::mixture`] and its derivative at `t`.
    fn cdf_pdf(&self, t: f64) -> (f64, f64) {
        // From p50 to p90 the exceedance falls from 0.5 to 0.1: a factor of 5.
        const LN5: f64 = 1.609_437_912_434_100_3;
        let Dist { p10, p50, p90 } = *self;
        if t >= p90 {
            let scale = (p90 - p50) / LN5;
            if scale > 0.0 {
                let e = 0.1 * (-(t - p90) / scale).exp();
                (1.0 - e, e / scale)
            } else {
                (1.0, 0.0)
            }
        } else if t >= p50 {
            let slope = 0.4 / (p90 - p50);
            (0.5 + slope * (t - p50), slope)
        } else if t >= p10 {
            let slope = 0.4 / (p50 - p10);
            (0.1 + slope * (t - p10), slope)
        } else {
            let scale = (p50 - p10) / LN5;
            if scale > 0.0 {
                let e = 0.1 * (-(p10 - t) / scale).exp();
                (e, e / scale)
            } else {
                (0.0, 0.0)
            }
        }
    }

    /// Finite, non-negative, clamped to [`MAX_VALUE`] and ordered. NaN (e.g. 0 * inf) counts
    /// as zero, since it only arises from degenerate inputs.
    pub fn sanitized(self) -> Self {
        // Almost every value is already in order: the arithmetic keeps it so.
        if 0.0 <= self.p10 && self.p10 <= self.p50 && self.p50 <= self.p90 && self.p90 <= MAX_VALUE
        {
            return self;
        }
        let fix = |v: f64| {
            if v.is_nan() {
                0.0
            } else {
                v.clamp(0.0, MAX_VALUE)
            }
        };
        let mut v = [fix(self.p10), fix(self.p50), fix(self.p90)];
        v.sort_by(f64::total_cmp);
        Dist {
            p10: v[0],
            p50: v[1],
            p90: v[2],
        }
    }

    pub fn to_quantiles(self) -> Quantiles {
        let d = self.sanitized();
        Quantiles {
            p10: d.p10,
            p50: d.p50,
            p90: d.p90,
        }
    }
}

/// Two-arm mixtures the cost pass has already computed, by the exact bits of their arms.
///
/// Half of a large page's general mixtures (those without a shortcut in [`Dist::mixture`])
/// repeat an earlier one exactly: the same pair of callees behind `a ? f() : g()` in many
/// places, or a body priced again for a sized call. Each costs a root-finding run with `exp`
/// in the tails, which libm does in software in wasm. A direct-mapped table remembers them; a
/// hit returns the bits computing would give, so results do not depend on the table.
pub struct MixtureMemo {
    slots: Box<[Cell<Option<MemoSlot>>]>,
}

type MemoSlot = ([u64; 6], Dist);

/// log2 of the memo's slots: 1,024 slots of 72 bytes.
const MEMO_BITS: u32 = 10;

impl Default for MixtureMemo {
    fn default() -> Self {
        MixtureMemo {
            slots: (0..1usize << MEMO_BITS).map(|_| Cell::new(None)).collect(),
        }
    }
}

impl MixtureMemo {
    /// [`Dist::mixture`] of `arms`, remembered when there are two and no shortcut applies.
    pub fn mixture(&self, arms: &[Dist]) -> Dist {
        let [a, b] = arms else {
            return Dist::mixture(arms);
        };
        let shortcut =
            a == b || (a.p10 == a.p90 && b.p10 == b.p90) || *a == Dist::ZERO || *b == Dist::ZERO;
        if shortcut {
            return Dist::mixture(arms);
        }
        let key = [a.p10, a.p50, a.p90, b.p10, b.p50, b.p90].map(f64::to_bits);
        let hash = key.iter().fold(0u64, |h, k| {
            (h ^ k).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
        });
        let slot = self.slots.get((hash >> (64 - MEMO_BITS)) as usize);
        if let Some((held, mixed)) = slot.and_then(Cell::get)
            && held == key
        {
            return mixed;
        }
        let mixed = Dist::mixture(arms);
        if let Some(slot) = slot {
            slot.set(Some((key, mixed)));
        }
        mixed
    }
}

/// Arms a mixture handles without allocating.
const INLINE_ARMS: usize = 8;

/// Breakpoints (every arm's p10, p50 and p90) kept with the mixture's distribution function
/// at them, for [`Mixture::quantile`]; enough for [`INLINE_ARMS`] arms without allocating.
const INLINE_POINTS: usize = 3 * INLINE_ARMS;

/// The equal-weight mixture of some arms, for finding its quantiles.
struct Mixture<'a> {
    arms: &'a [Dist],
    lo: f64,
    hi: f64,
    /// (t, F(t)) at the arms' quantiles inside (lo, hi); `extra` holds the rest when there
    /// are more than fit inline.
    points: [(f64, f64); INLINE_POINTS],
    len: usize,
    extra: Vec<(f64, f64)>,
}

impl<'a> Mixture<'a> {
    fn new(arms: &'a [Dist]) -> Self {
        let lo = arms.iter().map(|a| a.p10).fold(f64::INFINITY, f64::min);
        let hi = arms.iter().map(|a| a.p90).fold(0.0, f64::max);
        let mut m = Mixture {
            arms,
            lo,
            hi,
            points: [(0.0, 0.0); INLINE_POINTS],
            len: 0,
            extra: Vec::new(),
        };
        for a in arms {
            for t in [a.p10, a.p50, a.p90] {
                if t > lo && t < hi {
                    let point = (t, m.cdf_pdf(t).0);
                    match m.points.get_mut(m.len) {
                        Some(slot) => {
                            *slot = point;
                            m.len += 1;
                        }
                        None => m.extra.push(point),
                    }
                }
            }
        }
        m
    }

    fn cdf_pdf(&self, t: f64) -> (f64, f64) {
        let (mut f, mut p) = (0.0, 0.0);
        for a in self.arms {
            let (af, ap) = a.cdf_pdf(t);
            f += af;
            p += ap;
        }
        let n = self.arms.len() as f64;
        (f / n, p / n)
    }

    /// The smallest `t` in [lo, hi] with F(t) >= q, to 2^-28 of the span (what bisecting
    /// the whole span 28 times gives), found from the tightest bracket of breakpoints (inside
    /// which F is smooth) by Newton's method, falling back to bisection whenever a step
    /// would leave the bracket. A few evaluations instead of 28 per quantile: mixing is the
    /// cost pass's hottest loop on large pages.
    fn quantile(&self, q: f64) -> f64 {
        let (lo, hi) = (self.lo, self.hi);
        let (mut a, mut fa) = (lo, self.cdf_pdf(lo).0);
        if fa >= q {
            return lo;
        }
        let (mut b, mut fb) = (hi, 1.0);
        for &(t, f) in self
            .points
            .get(..self.len)
            .unwrap_or(&[])
            .iter()
            .chain(&self.extra)
        {
            if f >= q {
                if t < b {
                    (b, fb) = (t, f);
                }
            } else if t > a {
                (a, fa) = (t, f);
            }
        }
        let tol = (hi - lo) * (-28f64).exp2();
        // Start where the bracket's chord crosses q.
        let mut t = if fb > fa {
            a + (q - fa) / (fb - fa) * (b - a)
        } else {
            0.5 * (a + b)
        };
        for _ in 0..64 {
            if b - a <= tol {
                break;
            }
            let (f, slope) = self.cdf_pdf(t);
            if f >= q {
                b = t;
            } else {
                a = t;
            }
            let next = t - (f - q) / slope;
            if slope > 0.0 && next.is_finite() && (next - t).abs() <= tol {
                return next.clamp(a, b);
            }
            t = if slope > 0.0 && next > a && next < b {
                next
            } else {
                0.5 * (a + b)
            };
        }
        b
    }
}

impl Add for Dist {
    type Output = Dist;

    /// Sum of two independent quantities: medians add, and the distances from the median to
    /// p10 and to p90 add in quadrature (root-sum-square, the usual three-point propagation).
    /// Adding the p90s instead would assume every part of a page is slow at once, and a body
    /// with hundreds of uncertain calls would get a p90 hundreds of times its median.
    /// Associative and commutative, and the p10 never drops below the sum of the p10s.
    fn add(self, o: Dist) -> Dist {
        let (a, b) = (self.sanitized(), o.sanitized());
        let p50 = a.p50 + b.p50;
        let up = root_sum_square(a.p90 - a.p50, b.p90 - b.p50);
        let down = root_sum_square(a.p50 - a.p10, b.p50 - b.p10);
        Dist {
            p10: p50 - down,
            p50,
            p90: p50 + up,
        }
        .sanitized()
    }
}

/// `x.hypot(y)` for the sanitized spreads `Add` combines (non-negative, at most
/// [`MAX_VALUE`], so the squares cannot overflow), without libm's general-case cost: one of
/// the two is zero in most additions (exact work added to anything).
fn root_sum_square(x: f64, y: f64) -> f64 {
    if x == 0.0 {
        y
    } else if y == 0.0 {
        x
    } else {
        (x * x + y * y).sqrt()
    }
}

impl AddAssign for Dist {
    fn add_assign(&mut self, o: Dist) {
        *self = *self + o;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ordered(d: Dist) -> bool {
        d.p10 <= d.p50 && d.p50 <= d.p90
    }

    #[test]
    fn arithmetic_keeps_order_and_finiteness() {
        let a = Dist::new(1.0, 10.0, 100.0);
        let b = Dist::new(5.0, 5.0, 5.0);
        assert!(ordered(a + b));
        assert!(ordered(a.times(b)));
        assert!(ordered(Dist::mixture(&[a, b])));
        assert!(ordered(a.widen(0.5, 2.0)));
        let huge = Dist::exact(1e300).times(Dist::exact(1e300));
        assert_eq!(huge, Dist::exact(MAX_VALUE));
        let nan = Dist::new(f64::NAN, -1.0, f64::INFINITY).sanitized();
        assert!(ordered(nan));
        assert_eq!(nan.p90, MAX_VALUE);
        assert_eq!(Dist::mixture(&[]), Dist::ZERO);
    }

    #[test]
    fn sums_of_independent_terms() {
        let a = Dist::new(7.0, 10.0, 14.0);
        let b = Dist::new(16.0, 20.0, 23.0);
        let s = a + b;
        assert_eq!(s.p50, 30.0);
        assert!((s.p90 - 35.0).abs() < 1e-9, "{s:?}"); // 30 + hypot(4, 3)
        assert!((s.p10 - 25.0).abs() < 1e-9, "{s:?}"); // 30 - hypot(3, 4)
        assert_eq!(Dist::exact(2.0) + Dist::exact(3.0), Dist::exact(5.0));
        // The p10 never falls below the sum of the p10s.
        let skewed = Dist::new(0.0, 10.0, 11.0) + Dist::new(0.0, 10.0, 11.0);
        assert!(skewed.p10 >= 0.0 && ordered(skewed));
        // Associative.
        let c = Dist::new(1.0, 2.0, 50.0);
        let (l, r) = ((a + b) + c, a + (b + c));
        assert!((l.p90 - r.p90).abs() < 1e-9 && (l.p10 - r.p10).abs() < 1e-9);
    }

    #[test]
    fn products_of_independent_factors() {
        let trips = Dist::new(1.0, 10.0, 100.0);
        // An exact factor just scales.
        let scaled = Dist::exact(3.0).times(trips);
        assert!((scaled.p10 - 3.0).abs() < 1e-9 && (scaled.p90 - 300.0).abs() < 1e-6);
        // Two unknown loops nested: median 100, p90/p50 = 10^sqrt(2), not 100.
        let nested = trips.times(trips);
        assert!((nested.p50 - 100.0).abs() < 1e-9);
        let ratio = nested.p90 / nested.p50;
        assert!((ratio - 10f64.powf(2f64.sqrt())).abs() < 1e-6, "{ratio}");
        assert!((nested.p50 / nested.p10 - ratio).abs() < 1e-6);
        // Zeros fall back to the plain product and stay ordered.
        let z = Dist::new(0.0, 0.0, 10.0).times(trips);
        assert_eq!(z, Dist::new(0.0, 0.0, 1000.0));
        assert!(ordered(Dist::new(0.0, 5.0, 10.0).times(trips)));
    }

    #[test]
    fn one_arm_against_nothing_matches_the_general_mixture() {
        for d in [
            Dist::new(1.0, 10.0, 100.0),
            Dist::new(0.0, 5.0, 6.0),
            Dist::new(3.0, 3.0, 9.0),
        ] {
            let fast = Dist::mixture(&[d, Dist::ZERO]);
            assert_eq!(fast, Dist::mixture(&[Dist::ZERO, d]));
            // The general path, on a zero that is not bit-identical to ZERO.
            let tiny = Dist::new(0.0, 0.0, 1e-300);
            let slow = Dist::mixture(&[d, tiny]);
            assert!(
                (fast.p90 - slow.p90).abs() <= 1e-6 * d.p90,
                "{fast:?} {slow:?}"
            );
            assert!(
                fast.p10 == 0.0 && fast.p50 <= slow.p50 + 1e-6,
                "{fast:?} {slow:?}"
            );
        }
    }

    /// The quantiles by bisecting the whole span 28 times, as the mixture was first computed.
    fn by_bisection(arms: &[Dist]) -> Dist {
        let arms: Vec<Dist> = arms.iter().map(|a| a.sanitized()).collect();
        let lo = arms.iter().map(|a| a.p10).fold(f64::INFINITY, f64::min);
        let hi = arms.iter().map(|a| a.p90).fold(0.0, f64::max);
        let cdf = |t: f64| arms.iter().map(|a| a.cdf_pdf(t).0).sum::<f64>() / arms.len() as f64;
        let quantile = |q: f64| {
            let (mut a, mut b) = (lo, hi);
            for _ in 0..28 {
                let mid = 0.5 * (a + b);
                if cdf(mid) >= q {
                    b = mid;
                } else {
                    a = mid;
                }
            }
            b
        };
        Dist::new(quantile(0.1), quantile(0.5), quantile(0.9)).sanitized()
    }

    #[test]
    fn remembered_mixtures_are_bit_for_bit_the_computed_ones() {
        // Many distinct pairs (more than the memo has slots, so slots are overwritten), each
        // asked for several times: a hit must give exactly what computing gives.
        let memo = MixtureMemo::default();
        let pairs: Vec<[Dist; 2]> = (0..5_000)
            .map(|i| {
                let x = 1.0 + f64::from(i % 2_500);
                [Dist::new(x, 2.0 * x, 9.0 * x), Dist::new(0.5, 3.0, 4.0 + x)]
            })
            .collect();
        for round in 0..3 {
            for arms in &pairs {
                let (remembered, computed) = (memo.mixture(arms), Dist::mixture(arms));
                assert_eq!(
                    [remembered.p10, remembered.p50, remembered.p90].map(f64::to_bits),
                    [computed.p10, computed.p50, computed.p90].map(f64::to_bits),
                    "round {round}: {arms:?}"
                );
            }
        }
        // Shortcut cases and other arities go straight through.
        let d = Dist::new(1.0, 2.0, 3.0);
        assert_eq!(
            memo.mixture(&[d, Dist::ZERO]),
            Dist::mixture(&[d, Dist::ZERO])
        );
        assert_eq!(
            memo.mixture(&[d, d, Dist::exact(7.0)]),
            Dist::mixture(&[d, d, Dist::exact(7.0)])
        );
    }

    #[test]
    fn mixture_quantiles_match_bisecting_the_whole_span() {
        // Deterministic pseudo-random arms of every shape: exact, one-sided, wide, tiny and
        // huge, two to twelve of them (past the inline capacity).
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        for case in 0..2_000 {
            let n = 2 + case % 11;
            let arms: Vec<Dist> = (0..n)
                .map(|_| {
                    let base = 10f64.powf(next() * 12.0 - 3.0);
                    match (next() * 4.0) as u32 {
                        0 => Dist::exact(base),
                        1 => Dist::new(base, base, base * (1.0 + next() * 100.0)),
                        2 => Dist::new(0.0, base, base * 10.0),
                        _ => Dist::new(base, base * (1.0 + next() * 10.0), base * 1e3),
                    }
                })
                .collect();
            let (fast, slow) = (Dist::mixture(&arms), by_bisection(&arms));
            let span = arms.iter().map(|a| a.p90).fold(0.0, f64::max);
            let cdf = |t: f64| arms.iter().map(|a| a.cdf_pdf(t).0).sum::<f64>() / n as f64;
            for (x, y) in [
                (fast.p10, slow.p10),
                (fast.p50, slow.p50),
                (fast.p90, slow.p90),
            ] {
                // The same point, or (where a tail is flat to within float precision, so
                // that any point of the plateau is the quantile) the same probability.
                assert!(
                    (x - y).abs() <= 1e-7 * span || (cdf(x) - cdf(y)).abs() <= 1e-12,
                    "{arms:?}: {fast:?} vs {slow:?}"
                );
            }
        }
    }

    #[test]
    fn mixtures_of_arms() {
        // Two exact arms: a coin flip between them.
        let m = Dist::mixture(&[Dist::exact(0.0), Dist::exact(100.0)]);
        assert_eq!(m, Dist::new(0.0, 0.0, 100.0));
        assert_eq!(Dist::mixture(&[Dist::exact(4.0); 3]), Dist::exact(4.0));
        // One heavy arm among ten: the p90 lies inside the heavy arm's lower range, far below
        // its p90, and the median stays with the light arms.
        let mut arms = vec![Dist::new(1.0, 2.0, 4.0); 9];
        arms.push(Dist::new(1e3, 1e4, 1e6));
        let m = Dist::mixture(&arms);
        assert!(ordered(m));
        assert!(m.p50 <= 4.0, "{m:?}");
        assert!(m.p90 < 1e4, "{m:?}");
        // Identical uncertain arms mix to themselves.
        let d = Dist::new(1.0, 10.0, 100.0);
        let same = Dist::mixture(&[d, d, d]);
        assert_eq!(same, d);
        // Quantiles of the mixture of a light and a wide arm stay within the arms' span.
        let m = Dist::mixture(&[Dist::new(1.0, 2.0, 3.0), d]);
        assert!(m.p10 >= 1.0 && m.p90 <= 100.0 && ordered(m), "{m:?}");
    }
}
