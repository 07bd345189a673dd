//! Demand curves: how a path's demand spreads over time.
//!
//! A path is a list of [`Segment`]s: pieces of main-thread work (a script, a handler's
//! callback, a timer's callback) that each become ready when the segment they wait for has
//! ended plus a delay (a timer's), and then run to completion, one at a time, earliest ready
//! first (ties in creation order, which is the order the browser queues them in). That is the
//! event loop with one task queue; the network is assumed never to make code wait.
//!
//! For the CPU curve the path is laid out three times, with every segment's duration at its
//! p10, at its p50 and at its p90 (comonotone: a slow device or a big input slows everything
//! together), and each bucket's quantiles are the busy time in that bucket in the three
//! layouts. Making every duration longer only adds busy time at any instant (ready times only
//! move later, and the run they wait for fills the gap), so the three values are ordered.
//! Memory and network are placed where the p50 layout starts each segment, with each
//! segment's own uncertainty summed as in [`Dist`]'s addition.

use foresight_shared::protocol::demand::{CurveBucket, DemandCurve};

use crate::cost::Cost;
use crate::dist::Dist;

/// Most buckets in a curve; the bucket width grows (1, 2, 5 times a power of ten) to fit the
/// slow (p90) layout into them.
pub const MAX_BUCKETS: usize = 32;
/// Narrowest bucket, ms: finer than a frame says nothing a planner can use.
pub const MIN_BUCKET_MS: f64 = 1.0;
/// Most segments one path keeps apart; later ones are merged into the segment they wait for,
/// which bounds the layout's quadratic scheduling on pages with thousands of timers.
pub const MAX_SEGMENTS: usize = 256;

/// One piece of main-thread work of a path.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    /// CPU in work units, memory and network in bytes.
    pub cost: Cost,
    /// The segment whose end this one waits for (always an earlier one), if any.
    pub after: Option<usize>,
    /// How long after that end (or after the path's start) it becomes ready, ms.
    pub delay_ms: f64,
}

/// The segments of one path, in creation order.
#[derive(Debug, Default)]
pub struct Timeline {
    pub segments: Vec<Segment>,
}

impl Timeline {
    /// Adds a segment and returns its index. Past [`MAX_SEGMENTS`] the cost is merged into
    /// the segment it waits for (or the last one), whose index is returned instead.
    pub fn push(&mut self, cost: Cost, after: Option<usize>, delay_ms: f64) -> usize {
        let after = after.filter(|a| *a < self.segments.len());
        if self.segments.len() >= MAX_SEGMENTS {
            let into = after.unwrap_or(self.segments.len() - 1);
            if let Some(s) = self.segments.get_mut(into) {
                s.cost.add(cost);
            }
            return into;
        }
        let delay_ms = if delay_ms.is_finite() {
            delay_ms.max(0.0)
        } else {
            0.0
        };
        self.segments.push(Segment {
            cost,
            after,
            delay_ms,
        });
        self.segments.len() - 1
    }

    /// Adds to an existing segment's cost (work that runs as part of it).
    pub fn add_to(&mut self, segment: usize, cost: Cost) {
        if let Some(s) = self.segments.get_mut(segment) {
            s.cost.add(cost);
        }
    }

    /// The whole path's cost: every segment once.
    pub fn total(&self) -> Cost {
        let mut total = Cost::ZERO;
        for s in &self.segments {
            total.add(s.cost);
        }
        total
    }

    /// Start times of the segments when each lasts `durations[i]` ms, and when the last ends.
    fn layout(&self, durations: &[f64]) -> (Vec<f64>, f64) {
        let n = self.segments.len();
        let mut start = vec![0.0; n];
        let mut end = vec![0.0; n];
        let mut done = vec![false; n];
        let mut clock: f64 = 0.0;
        for _ in 0..n {
            // The ready segment that became ready first; `after` always points backwards, so
            // one is always ready.
            let mut best: Option<(f64, usize)> = None;
            for (i, s) in self.segments.iter().enumerate() {
                if done[i] {
                    continue;
                }
                let ready = match s.after {
                    None => s.delay_ms,
                    Some(a) if done.get(a).copied().unwrap_or(true) => {
                        end.get(a).copied().unwrap_or(0.0) + s.delay_ms
                    }
                    Some(_) => continue,
                };
                if best.is_none_or(|(r, _)| ready < r) {
                    best = Some((ready, i));
                }
            }
            let Some((ready, i)) = best else { break };
            start[i] = clock.max(ready);
            end[i] = start[i] + durations.get(i).copied().unwrap_or(0.0);
            clock = end[i];
            done[i] = true;
        }
        (start, clock)
    }

    /// The path's demand curve, with CPU converted at `units_per_ms` and widened by the unit
    /// model's own error (`spread`, applied to each segment as to the path's total).
    pub fn curve(&self, units_per_ms: f64, spread: (f64, f64)) -> DemandCurve {
        let cpu: Vec<Dist> = self
            .segments
            .iter()
            .map(|s| {
                s.cost
                    .cpu
                    .scale(1.0 / units_per_ms)
                    .widen(spread.0, spread.1)
            })
            .collect();
        let pick = |f: fn(&Dist) -> f64| cpu.iter().map(f).collect::<Vec<f64>>();
        let layouts = [
            self.layout(&pick(|d| d.p10)),
            self.layout(&pick(|d| d.p50)),
            self.layout(&pick(|d| d.p90)),
        ];
        let makespan = layouts[2].1.max(layouts[1].1);
        let width = bucket_width(makespan);
        let count = ((makespan / width).ceil() as usize).clamp(1, MAX_BUCKETS);
        let busy: Vec<Vec<f64>> = layouts
            .iter()
            .zip([0usize, 1, 2])
            .map(|((starts, _), level)| {
                let mut b = vec![0.0; count];
                for (i, s) in starts.iter().enumerate() {
                    let d = cpu.get(i).map_or(0.0, |d| match level {
                        0 => d.p10,
                        1 => d.p50,
                        _ => d.p90,
                    });
                    spread_interval(&mut b, width, *s, *s + d);
                }
                b
            })
            .collect();
        let mut memory = vec![Dist::ZERO; count];
        let mut network = vec![Dist::ZERO; count];
        for (i, s) in self.segments.iter().enumerate() {
            let at = layouts[1].0.get(i).copied().unwrap_or(0.0);
            let bucket = ((at / width) as usize).min(count - 1);
            memory[bucket] += s.cost.mem;
            network[bucket] += s.cost.net;
        }
        let mut held = Dist::ZERO;
        let buckets = (0..count)
            .map(|i| {
                held += memory[i];
                let cpu = Dist::new(busy[0][i], busy[1][i], busy[2][i]).sanitized();
                CurveBucket {
                    cpu_ms: Dist::new(cpu.p10, cpu.p50, cpu.p90.min(width)).to_quantiles(),
                    memory_bytes: held.to_quantiles(),
                    network_bytes: network[i].to_quantiles(),
                }
            })
            .collect();
        DemandCurve {
            bucket_ms: width,
            buckets,
        }
    }
}

/// The narrowest 1-2-5 width (at least [`MIN_BUCKET_MS`]) that fits `span` ms into
/// [`MAX_BUCKETS`] buckets.
pub fn bucket_width(span: f64) -> f64 {
    if !(span.is_finite() && span > MIN_BUCKET_MS * MAX_BUCKETS as f64) {
        return MIN_BUCKET_MS;
    }
    let needed = span / MAX_BUCKETS as f64;
    let mut decade = 10f64.powf(needed.log10().floor());
    loop {
        for m in [1.0, 2.0, 5.0] {
            if m * decade >= needed {
                return m * decade;
            }
        }
        decade *= 10.0;
    }
}

/// Adds the part of `[from, to)` that falls in each bucket to that bucket.
fn spread_interval(buckets: &mut [f64], width: f64, from: f64, to: f64) {
    if to <= from || !from.is_finite() || to.is_nan() {
        return;
    }
    let first = (from / width) as usize;
    for (i, b) in buckets.iter_mut().enumerate().skip(first) {
        let lo = i as f64 * width;
        let hi = lo + width;
        if lo >= to {
            break;
        }
        *b += (to.min(hi) - from.max(lo)).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(units: Dist) -> Cost {
        Cost::cpu(units)
    }

    #[test]
    fn bucket_widths_are_one_two_five_and_fit() {
        assert_eq!(bucket_width(0.0), 1.0);
        assert_eq!(bucket_width(20.0), 1.0);
        assert_eq!(bucket_width(33.0), 2.0);
        assert_eq!(bucket_width(100.0), 5.0);
        assert_eq!(bucket_width(1_000.0), 50.0);
        assert_eq!(bucket_width(43_000.0), 2_000.0);
        assert_eq!(bucket_width(f64::INFINITY), 1.0);
        for span in [40.0, 321.0, 9_999.0, 1e9] {
            assert!(span / bucket_width(span) <= MAX_BUCKETS as f64);
        }
    }

    #[test]
    fn back_to_back_work_fills_buckets_in_order() {
        // Two exact 3 ms pieces of work at 1 unit per ms: buckets of 1 ms, all busy.
        let mut t = Timeline::default();
        let a = t.push(cpu(Dist::exact(3.0)), None, 0.0);
        t.push(cpu(Dist::exact(3.0)), Some(a), 0.0);
        let c = t.curve(1.0, (1.0, 1.0));
        assert_eq!(c.bucket_ms, 1.0);
        assert_eq!(c.buckets.len(), 6);
        assert!(c.buckets.iter().all(|b| b.cpu_ms.p50 == 1.0));
    }

    #[test]
    fn a_timer_waits_for_its_delay_and_leaves_the_thread_idle() {
        // 10 ms of script, then a 1 ms timer callback set for 50 ms after it.
        let mut t = Timeline::default();
        let script = t.push(cpu(Dist::exact(10.0)), None, 0.0);
        t.push(cpu(Dist::exact(1.0)), Some(script), 50.0);
        let c = t.curve(1.0, (1.0, 1.0));
        assert_eq!(c.bucket_ms, 2.0); // 61 ms into 32 buckets
        let busy: Vec<f64> = c.buckets.iter().map(|b| b.cpu_ms.p50).collect();
        assert_eq!(&busy[..5], &[2.0; 5]);
        assert!(busy[5..30].iter().all(|b| *b == 0.0), "{busy:?}");
        assert_eq!(busy[30], 1.0);
        let total: f64 = busy.iter().sum();
        assert_eq!(total, 11.0);
    }

    #[test]
    fn slower_quantiles_stretch_the_curve_and_stay_ordered() {
        let mut t = Timeline::default();
        let a = t.push(cpu(Dist::new(5.0, 10.0, 40.0)), None, 0.0);
        t.push(cpu(Dist::new(1.0, 2.0, 8.0)), Some(a), 20.0);
        let b = t.push(cpu(Dist::new(5.0, 10.0, 40.0)), Some(a), 0.0);
        t.push(
            Cost {
                mem: Dist::exact(1_000.0),
                net: Dist::exact(500.0),
                ..cpu(Dist::exact(1.0))
            },
            Some(b),
            0.0,
        );
        let c = t.curve(1.0, (0.7, 1.5));
        for b in &c.buckets {
            assert!(
                b.cpu_ms.p10 <= b.cpu_ms.p50 && b.cpu_ms.p50 <= b.cpu_ms.p90,
                "{b:?}"
            );
            assert!(b.cpu_ms.p90 <= c.bucket_ms + 1e-9);
        }
        let last = c.buckets.last().expect("buckets");
        assert_eq!(last.memory_bytes.p50, 1_000.0);
        let net: f64 = c.buckets.iter().map(|b| b.network_bytes.p50).sum();
        assert_eq!(net, 500.0);
        // The p90 layout runs longer than the p50 one: its last busy bucket is later.
        let last_busy = |f: fn(&CurveBucket) -> f64| c.buckets.iter().rposition(|b| f(b) > 0.0);
        assert!(last_busy(|b| b.cpu_ms.p90) > last_busy(|b| b.cpu_ms.p50));
    }

    #[test]
    fn segments_past_the_cap_merge_into_their_registrar() {
        let mut t = Timeline::default();
        let first = t.push(cpu(Dist::exact(1.0)), None, 0.0);
        for _ in 0..MAX_SEGMENTS + 50 {
            t.push(cpu(Dist::exact(1.0)), Some(first), 5.0);
        }
        assert_eq!(t.segments.len(), MAX_SEGMENTS);
        assert_eq!(t.total().cpu.p50, (MAX_SEGMENTS + 51) as f64);
        let c = t.curve(1.0, (1.0, 1.0));
        assert!(c.buckets.len() <= MAX_BUCKETS);
    }
}
