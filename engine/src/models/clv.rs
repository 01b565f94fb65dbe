//! Customer lifetime value for non-contractual settings: BG/NBD (Fader, Hardie and Lee
//! 2005) for how many purchases a customer will make, Gamma-Gamma for how much each is
//! worth, and their discounted product over a horizon.
//!
//! Both models are fitted by maximum likelihood on per-customer summaries
//! ([`RfmSummary`]). The parameters are optimized as logarithms, which keeps them positive
//! without constraints, with analytic gradients into the shared L-BFGS. Log-gamma and
//! digamma come from `statrs`. The terms that involve special functions depend only on a
//! customer's number of repeat purchases, so they are computed once per distinct count;
//! each customer then costs a few logarithms, which is what makes a million customers
//! cheap.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};
use statrs::function::gamma::{digamma, ln_gamma};

use super::ModelError;
use super::lbfgs;
use crate::domain::{EventPayload, StoredEvent};
use crate::features::known_at;
use crate::registry::{Manifest, ModelRegistry};
use crate::time::{MICROS_PER_DAY, Micros};

/// The model file in a `clv` registry version.
pub const CLV_FILE: &str = "clv.json";

/// Average days per month, used to turn monthly horizons into model time units.
pub const DAYS_PER_MONTH: f64 = 365.25 / 12.0;

/// One customer's purchase history as the models see it, in model time units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RfmSummary {
    /// Repeat purchases: purchase days after the first.
    pub x: f64,
    /// Time of the last purchase day, from the first.
    pub t_x: f64,
    /// Age: days from the first purchase day to the last day observed before the cutoff.
    pub t: f64,
    /// Mean spend per repeat purchase day (major units); 0 when `x` = 0.
    pub monetary: f64,
}

/// The summary of one customer's transactions known at `as_of`, with times measured in
/// units of `unit` microseconds (e.g. a week). Several purchases on one UTC day count as one
/// purchase (their amounts add up); the first purchase day is time 0 and not a repeat.
/// Time counts whole days between dates, as Fader, Hardie and Lee (and `lifetimes`) do: T
/// runs to the last UTC day with an instant before `as_of` (as of midnight, the day before),
/// so a calibration period "to 1997-09-30" is `as_of` = 1997-10-01T00:00Z and a customer
/// who first bought on 1997-01-01 has T = 272 days.
/// `None` when the customer had made no purchase by then (or `unit` is not positive).
pub fn summarize(events: &[StoredEvent], as_of: Micros, unit: Micros) -> Option<RfmSummary> {
    if unit <= 0 {
        return None;
    }
    let mut days: BTreeMap<i64, f64> = BTreeMap::new();
    for e in events {
        if let EventPayload::Transaction(t) = &e.payload
            && known_at(e.time, e.record_time, as_of)
        {
            *days.entry(e.time.div_euclid(MICROS_PER_DAY)).or_default() +=
                t.amount_minor as f64 / 100.0;
        }
    }
    let (&first, _) = days.first_key_value()?;
    let (&last, _) = days.last_key_value()?;
    let x = (days.len() - 1) as f64;
    let repeat_spend: f64 = days.range(first + 1..).map(|(_, v)| v).sum();
    let unit = unit as f64;
    Some(RfmSummary {
        x,
        t_x: ((last - first) * MICROS_PER_DAY) as f64 / unit,
        t: (((as_of - 1).div_euclid(MICROS_PER_DAY) - first) * MICROS_PER_DAY) as f64 / unit,
        monetary: if x > 0.0 { repeat_spend / x } else { 0.0 },
    })
}

/// How a maximum-likelihood fit went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// The log-likelihood at the estimate (summed over customers).
    pub log_likelihood: f64,
    pub iterations: usize,
    pub converged: bool,
    /// Customers the fit used.
    pub customers: usize,
    /// Of those, customers with at least one repeat purchase.
    pub repeat_customers: usize,
}

/// Parameters outside this range mean the likelihood ran off to a boundary: the data do
/// not identify the model (for instance every customer buys at the same steady rate).
const PARAM_RANGE: (f64, f64) = (1e-8, 1e8);
const MAX_ITER: usize = 1000;
/// On the mean log-likelihood per customer, in log-parameter space.
const GRAD_TOL: f64 = 1e-9;
/// Below this many customers the likelihood is not worth splitting over threads.
const PARALLEL_MIN: usize = 50_000;

fn check_summaries(summaries: &[RfmSummary]) -> Result<(), ModelError> {
    if summaries.len() < 2 {
        return Err(ModelError::Training(format!(
            "{} customer(s) with a purchase: a lifetime-value fit needs at least 2 (import more \
             transactions or move the cutoff later)",
            summaries.len()
        )));
    }
    for (i, s) in summaries.iter().enumerate() {
        let ok = s.x.is_finite()
            && s.x >= 0.0
            && s.t_x.is_finite()
            && s.t_x >= 0.0
            && s.t.is_finite()
            && s.t >= 0.0
            && s.t_x <= s.t
            && (s.x > 0.0 || s.t_x == 0.0);
        if !ok {
            return Err(ModelError::Training(format!(
                "summary {i} is impossible (x = {}, t_x = {}, T = {}): need x >= 0, \
                 0 <= t_x <= T and t_x = 0 when x = 0",
                s.x, s.t_x, s.t
            )));
        }
    }
    Ok(())
}

/// Minimizes `-mean log-likelihood` over log-parameters and turns the result into
/// parameters and a report, refusing a fit that did not converge or ran to a boundary.
fn fit_log_params(
    model: &str,
    n: usize,
    x0: Vec<f64>,
    mut objective: impl FnMut(&[f64]) -> (f64, Vec<f64>),
) -> Result<(Vec<f64>, f64, usize), ModelError> {
    let scale = 1.0 / n as f64;
    let minimum = lbfgs::minimize(
        |theta: &[f64]| -> Result<(f64, Vec<f64>), ModelError> {
            // Keep trial points inside exp's range; the line search backs off from +inf.
            if theta.iter().any(|t| !t.is_finite() || t.abs() > 40.0) {
                return Ok((f64::INFINITY, vec![0.0; theta.len()]));
            }
            let params: Vec<f64> = theta.iter().map(|t| t.exp()).collect();
            let (ll, grad) = objective(&params);
            // d/dθ = d/dparam × param (chain rule through param = exp θ).
            let g = grad
                .iter()
                .zip(&params)
                .map(|(g, p)| -g * p * scale)
                .collect();
            Ok((-ll * scale, g))
        },
        x0,
        MAX_ITER,
        GRAD_TOL,
    )?;
    let params: Vec<f64> = minimum.x.iter().map(|t| t.exp()).collect();
    let inside = params
        .iter()
        .all(|p| p.is_finite() && *p > PARAM_RANGE.0 && *p < PARAM_RANGE.1);
    if !minimum.converged || !inside || !minimum.value.is_finite() {
        return Err(ModelError::Training(format!(
            "the {model} fit did not converge after {} iterations (parameters {params:?}, \
             mean log-likelihood {}): the summaries do not identify the model; check the time \
             unit, that the calibration period is long enough to see repeat purchases, and \
             that the data is non-contractual purchasing",
            minimum.iterations, -minimum.value
        )));
    }
    Ok((params, -minimum.value * n as f64, minimum.iterations))
}

/// Summaries grouped by their repeat count, so per-count special functions run once.
struct Grouped {
    /// Distinct repeat counts.
    xs: Vec<f64>,
    /// Customers per distinct count.
    counts: Vec<f64>,
    /// Per customer: index into `xs`.
    group: Vec<u32>,
}

fn group_by_x<'a>(xs: impl Iterator<Item = &'a f64>) -> Grouped {
    let mut index: HashMap<u64, u32> = HashMap::new();
    let mut g = Grouped {
        xs: Vec::new(),
        counts: Vec::new(),
        group: Vec::new(),
    };
    for &x in xs {
        let i = *index.entry(x.to_bits()).or_insert_with(|| {
            g.xs.push(x);
            g.counts.push(0.0);
            (g.xs.len() - 1) as u32
        });
        g.counts[i as usize] += 1.0;
        g.group.push(i);
    }
    g
}

/// Runs `f` over `0..n` in contiguous chunks, on several threads when `n` is large, and
/// adds up the (value, gradient) results.
fn sum_chunks<const K: usize>(
    n: usize,
    f: impl Fn(std::ops::Range<usize>) -> (f64, [f64; K]) + Sync,
) -> (f64, [f64; K]) {
    let threads = if n < PARALLEL_MIN {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |t| t.get().min(16))
    };
    let add = |mut a: (f64, [f64; K]), b: (f64, [f64; K])| {
        a.0 += b.0;
        for (x, y) in a.1.iter_mut().zip(b.1) {
            *x += y;
        }
        a
    };
    if threads == 1 {
        return f(0..n);
    }
    let chunk = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let f = &f;
                s.spawn(move || f(i * chunk..((i + 1) * chunk).min(n)))
            })
            .collect();
        handles.into_iter().fold((0.0, [0.0; K]), |acc, h| {
            // A panicking chunk is a bug; its NaN makes the line search refuse the point.
            add(acc, h.join().unwrap_or((f64::NAN, [f64::NAN; K])))
        })
    })
}

/// log(e^a + e^b) and the weight e^b / (e^a + e^b), without overflow.
fn log_add(a: f64, b: f64) -> (f64, f64) {
    let d = b - a;
    if d > 0.0 {
        let e = (-d).exp();
        (b + e.ln_1p(), 1.0 / (1.0 + e))
    } else {
        let e = d.exp();
        (a + e.ln_1p(), e / (1.0 + e))
    }
}

/// The BG/NBD model: purchase rate λ ~ Gamma(r, α) (α in model time units), dropout
/// probability after each purchase p ~ Beta(a, b).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

impl BgNbd {
    fn params_ok(&self) -> bool {
        [self.r, self.alpha, self.a, self.b]
            .iter()
            .all(|p| p.is_finite() && *p > 0.0)
    }

    /// The log-likelihood of `summaries` (summed), and its gradient in (r, α, a, b).
    fn ll_grad(&self, grouped: &Grouped, summaries: &[RfmSummary]) -> (f64, [f64; 4]) {
        let BgNbd { r, alpha, a, b } = *self;
        // Per distinct x: the terms of the likelihood that need special functions.
        let mut total = 0.0;
        let mut grad = [0.0; 4];
        let per_x: Vec<(f64, f64)> = grouped
            .xs
            .iter()
            .zip(&grouped.counts)
            .map(|(&x, &n)| {
                let v = ln_gamma(r + x) - ln_gamma(r)
                    + r * alpha.ln()
                    + ln_gamma(a + b)
                    + ln_gamma(b + x)
                    - ln_gamma(b)
                    - ln_gamma(a + b + x);
                total += n * v;
                let dab = digamma(a + b) - digamma(a + b + x);
                grad[0] += n * (digamma(r + x) - digamma(r) + alpha.ln());
                grad[1] += n * r / alpha;
                grad[2] += n * dab;
                grad[3] += n * (dab + digamma(b + x) - digamma(b));
                // r + x and log(a / (b + x - 1)) for the per-customer term.
                let c = if x > 0.0 {
                    a.ln() - (b + x - 1.0).ln()
                } else {
                    f64::NEG_INFINITY
                };
                (r + x, c)
            })
            .collect();
        let (v, g) = sum_chunks(summaries.len(), |range| {
            let mut v = 0.0;
            let mut g = [0.0; 4];
            for i in range {
                let s = &summaries[i];
                let gi = grouped.group[i] as usize;
                let (k, c) = per_x[gi];
                let l_t = (alpha + s.t).ln();
                let a3 = -k * l_t;
                if s.x > 0.0 {
                    let l_tx = (alpha + s.t_x).ln();
                    let a4 = c - k * l_tx;
                    let (lse, w4) = log_add(a3, a4);
                    let w3 = 1.0 - w4;
                    v += lse;
                    g[0] -= w3 * l_t + w4 * l_tx;
                    g[1] -= k * (w3 / (alpha + s.t) + w4 / (alpha + s.t_x));
                    g[2] += w4 / a;
                    g[3] -= w4 / (b + s.x - 1.0);
                } else {
                    v += a3;
                    g[0] -= l_t;
                    g[1] -= k / (alpha + s.t);
                }
            }
            (v, g)
        });
        for (t, d) in grad.iter_mut().zip(g) {
            *t += d;
        }
        (total + v, grad)
    }

    /// The log-likelihood of `summaries` under these parameters (summed over customers).
    pub fn log_likelihood(&self, summaries: &[RfmSummary]) -> f64 {
        let grouped = group_by_x(summaries.iter().map(|s| &s.x));
        self.ll_grad(&grouped, summaries).0
    }

    /// Maximum-likelihood estimates from `summaries`. Refuses fewer than two customers, data
    /// without a single repeat purchase (which cannot separate buying from dropping out),
    /// and a fit that does not converge.
    pub fn fit(summaries: &[RfmSummary]) -> Result<(BgNbd, FitReport), ModelError> {
        check_summaries(summaries)?;
        let repeat_customers = summaries.iter().filter(|s| s.x > 0.0).count();
        if repeat_customers == 0 {
            return Err(ModelError::Training(format!(
                "none of the {} customers made a repeat purchase: BG/NBD needs repeat buyers \
                 (use a longer calibration period or data with repeat purchases)",
                summaries.len()
            )));
        }
        let grouped = group_by_x(summaries.iter().map(|s| &s.x));
        let n = summaries.len();
        let mean_t = summaries.iter().map(|s| s.t).sum::<f64>() / n as f64;
        // Start at r = a = b = 1 and a rate scale of the typical age: the right order of
        // magnitude whatever the time unit.
        let x0 = vec![0.0, mean_t.max(1e-3).ln(), 0.0, 0.0];
        let (p, ll, iterations) = fit_log_params("BG/NBD", n, x0, |p| {
            let m = BgNbd {
                r: p[0],
                alpha: p[1],
                a: p[2],
                b: p[3],
            };
            let (v, g) = m.ll_grad(&grouped, summaries);
            (v, g.to_vec())
        })?;
        let model = BgNbd {
            r: p[0],
            alpha: p[1],
            a: p[2],
            b: p[3],
        };
        Ok((
            model,
            FitReport {
                log_likelihood: ll,
                iterations,
                converged: true,
                customers: n,
                repeat_customers,
            },
        ))
    }

    /// The probability that the customer is still active at the end of their summary.
    pub fn probability_alive(&self, s: &RfmSummary) -> f64 {
        if s.x <= 0.0 {
            return 1.0;
        }
        let BgNbd { r, alpha, a, b } = *self;
        let odds =
            a.ln() - (b + s.x - 1.0).ln() + (r + s.x) * ((alpha + s.t).ln() - (alpha + s.t_x).ln());
        1.0 / (1.0 + odds.exp())
    }

    /// Expected purchases in the next `t` time units, given the customer's summary:
    ///
    /// E[Y(t) | x, t_x, T] = (a+b+x-1)/(a-1) · [1 - ((α+T)/(α+T+t))^(r+x)
    ///   · ₂F₁(r+x, b+x; a+b+x-1; t/(α+T+t))] · P(alive).
    ///
    /// NaN when the hypergeometric series cannot be summed (a horizon millions of times
    /// longer than α + T), or at the removable singularities a = 1 and (x = 0, a + b = 1).
    pub fn expected_purchases(&self, s: &RfmSummary, t: f64) -> f64 {
        if t <= 0.0 || !self.params_ok() {
            return 0.0;
        }
        let BgNbd { r, alpha, a, b } = *self;
        let x = s.x;
        let z = t / (alpha + s.t + t);
        let k = r + x;
        // ((α+T)/(α+T+t))^(r+x) = (1 - z)^(r+x), folded into the series' scale.
        let f = hyp2f1_scaled(k, b + x, a + b + x - 1.0, z, k * (-z).ln_1p());
        let bracket = 1.0 - f;
        (a + b + x - 1.0) / (a - 1.0) * bracket * self.probability_alive(s)
    }

    /// [`Self::expected_purchases`] at several horizons, the same values, in one pass over
    /// their series (see [`hyp2f1_scaled_lanes`]).
    pub fn expected_purchases_at(&self, s: &RfmSummary, horizons: &[f64]) -> Vec<f64> {
        if !self.params_ok() {
            return vec![0.0; horizons.len()];
        }
        let BgNbd { r, alpha, a, b } = *self;
        let x = s.x;
        let k = r + x;
        let mut lanes: Vec<Hyp2f1Lane> = horizons
            .iter()
            .map(|&t| {
                let z = t / (alpha + s.t + t);
                Hyp2f1Lane::new(z, k * (-z).ln_1p())
            })
            .collect();
        hyp2f1_scaled_lanes(k, b + x, a + b + x - 1.0, &mut lanes);
        let alive = self.probability_alive(s);
        horizons
            .iter()
            .zip(&lanes)
            .map(|(&t, lane)| {
                if t <= 0.0 {
                    0.0
                } else {
                    (a + b + x - 1.0) / (a - 1.0) * (1.0 - lane.value) * alive
                }
            })
            .collect()
    }
}

/// Gauss's hypergeometric function times e^`log_scale`: e^log_scale · ₂F₁(a, b; c; z), for
/// 0 <= z < 1, by its power series.
///
/// Why a series and not a crate: no maintained pure-Rust crate offered ₂F₁ when this was
/// written (statrs and special stop at gamma, beta and error functions). Why no transformation:
/// here z = t/(α+T+t) always lies in [0, 1), where the series converges; the z → 1 - z
/// transformation would bring Γ(c-a-b) = Γ(a-1-r-x), which has poles at fitted values of
/// a - r, so its cancellation errors would be worse than the series' cost. That cost grows as
/// 1/(1-z): about 40 terms at z = 0.5, 4,000 at z = 0.99; we stop at 10 million terms
/// (z > 1 - 10⁻⁶, a horizon a million times α + T) and answer NaN. Beyond the first few terms
/// every term is positive (a, b > 0 and c + n > 0), so the sum has no cancellation; the terms
/// can first grow like n^(a+b-c-1) zⁿ, so the sum is kept rescaled to avoid overflow and the
/// scale is applied in log space at the end.
fn hyp2f1_scaled(a: f64, b: f64, c: f64, z: f64, log_scale: f64) -> f64 {
    let mut lane = [Hyp2f1Lane::new(z, log_scale)];
    hyp2f1_scaled_lanes(a, b, c, &mut lane);
    lane[0].value
}

/// One series of [`hyp2f1_scaled_lanes`]: its z and scale, its running state, its value.
#[derive(Debug, Clone, Copy)]
struct Hyp2f1Lane {
    z: f64,
    log_scale: f64,
    term: f64,
    sum: f64,
    log_factor: f64,
    done: bool,
    value: f64,
}

impl Hyp2f1Lane {
    fn new(z: f64, log_scale: f64) -> Self {
        Self {
            z,
            log_scale,
            term: 1.0,
            sum: 1.0,
            log_factor: 0.0,
            done: false,
            value: f64::NAN,
        }
    }
}

/// [`hyp2f1_scaled`] for several z at once, with the same a, b and c: every series' n-th
/// coefficient ratio (a+n)(b+n)/((c+n)(n+1)) is the same, so it is computed once per n for
/// all of them (a lifetime value sums one series per month of its horizon). Each lane does
/// exactly the operations the single series does, so its value is the same to the bit.
fn hyp2f1_scaled_lanes(a: f64, b: f64, c: f64, lanes: &mut [Hyp2f1Lane]) {
    const MAX_TERMS: usize = 10_000_000;
    const BIG: f64 = 1e200;
    let mut open = 0;
    for lane in lanes.iter_mut() {
        if lane.z == 0.0 {
            lane.value = lane.log_scale.exp();
            lane.done = true;
        } else if !(0.0..1.0).contains(&lane.z) {
            lane.value = f64::NAN;
            lane.done = true;
        } else {
            open += 1;
        }
    }
    for n in 0..MAX_TERMS {
        if open == 0 {
            return;
        }
        let nf = n as f64;
        let denom = (c + nf) * (nf + 1.0);
        if denom == 0.0 {
            // The same n for every z: no open series has a value.
            return;
        }
        let coefficient = (a + nf) * (b + nf) / denom;
        for lane in lanes.iter_mut().filter(|l| !l.done) {
            let ratio = coefficient * lane.z;
            lane.term *= ratio;
            lane.sum += lane.term;
            if lane.sum.abs() > BIG {
                lane.sum /= BIG;
                lane.term /= BIG;
                lane.log_factor += BIG.ln();
            }
            // Once the ratio is below 1 and stays so (n beyond the terms' peak), the
            // remainder is below term · ratio / (1 - ratio).
            if ratio.abs() < 1.0 && nf > -c {
                let tail = lane.term.abs() * ratio.abs() / (1.0 - ratio.abs());
                if tail <= 1e-17 * lane.sum.abs() {
                    let sign = lane.sum.signum();
                    lane.value =
                        sign * (lane.sum.abs().ln() + lane.log_factor + lane.log_scale).exp();
                    lane.done = true;
                    open -= 1;
                }
            }
        }
    }
}

/// The Gamma-Gamma spend model: a customer's mean transaction value ν ~ Gamma(q, γ), each
/// transaction ~ Gamma(p, ν); fitted on repeat customers' mean spend.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

impl GammaGamma {
    fn ll_grad(&self, grouped: &Grouped, rows: &[(f64, f64)]) -> (f64, [f64; 3]) {
        let GammaGamma { p, q, gamma } = *self;
        let mut total = 0.0;
        let mut grad = [0.0; 3];
        // Per distinct x: Γ terms and digammas of px + q, px.
        let per_x: Vec<(f64, f64)> = grouped
            .xs
            .iter()
            .zip(&grouped.counts)
            .map(|(&x, &n)| {
                let px = p * x;
                total += n * (ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q) + q * gamma.ln());
                let d_pq = digamma(px + q);
                grad[0] += n * x * (d_pq - digamma(px) + x.ln());
                grad[1] += n * (d_pq - digamma(q) + gamma.ln());
                (px, x)
            })
            .collect();
        let (v, g) = sum_chunks(rows.len(), |range| {
            let mut v = 0.0;
            let mut g = [0.0; 3];
            for i in range {
                let (ln_m, m) = rows[i];
                let (px, x) = per_x[grouped.group[i] as usize];
                let denom = gamma + m * x;
                let l_d = denom.ln();
                v += (px - 1.0) * ln_m + px * x.ln() - (px + q) * l_d;
                g[0] += x * (ln_m - l_d);
                g[1] -= l_d;
                g[2] -= (px + q) / denom;
            }
            (v, g)
        });
        grad[2] += rows.len() as f64 * q / gamma;
        for (t, d) in grad.iter_mut().zip(g) {
            *t += d;
        }
        (total + v, grad)
    }

    /// The repeat customers a fit uses: at least one repeat purchase and a positive mean
    /// spend (the likelihood has log m in it; free orders and refunds cannot enter).
    fn usable(summaries: &[RfmSummary]) -> Vec<&RfmSummary> {
        summaries
            .iter()
            .filter(|s| s.x > 0.0 && s.monetary.is_finite() && s.monetary > 0.0)
            .collect()
    }

    /// The log-likelihood of the usable repeat customers in `summaries`.
    pub fn log_likelihood(&self, summaries: &[RfmSummary]) -> f64 {
        let used = Self::usable(summaries);
        let grouped = group_by_x(used.iter().map(|s| &s.x));
        let rows: Vec<(f64, f64)> = used.iter().map(|s| (s.monetary.ln(), s.monetary)).collect();
        self.ll_grad(&grouped, &rows).0
    }

    /// Maximum-likelihood estimates from the repeat customers (x ≥ 1, positive mean spend)
    /// among `summaries`. Refuses fewer than two such customers, a fit that does not
    /// converge, and an estimate with q ≤ 1 (mean spend would be infinite).
    pub fn fit(summaries: &[RfmSummary]) -> Result<(GammaGamma, FitReport), ModelError> {
        let used = Self::usable(summaries);
        if used.len() < 2 {
            return Err(ModelError::Training(format!(
                "{} repeat buyer(s) with a positive mean spend among {} customers: the spend \
                 model needs at least 2 (use a longer calibration period or data with repeat \
                 purchases)",
                used.len(),
                summaries.len()
            )));
        }
        let grouped = group_by_x(used.iter().map(|s| &s.x));
        let rows: Vec<(f64, f64)> = used.iter().map(|s| (s.monetary.ln(), s.monetary)).collect();
        let n = rows.len();
        let mean_m = rows.iter().map(|r| r.1).sum::<f64>() / n as f64;
        // Start at p = 1, q = 2 and γ matching the mean spend (E[ν] = pγ/(q-1)): a sensible
        // scale in any currency.
        let x0 = vec![0.0, 2f64.ln(), mean_m.ln()];
        let (p, ll, iterations) = fit_log_params("Gamma-Gamma", n, x0, |p| {
            let m = GammaGamma {
                p: p[0],
                q: p[1],
                gamma: p[2],
            };
            let (v, g) = m.ll_grad(&grouped, &rows);
            (v, g.to_vec())
        })?;
        let model = GammaGamma {
            p: p[0],
            q: p[1],
            gamma: p[2],
        };
        if model.q <= 1.0 {
            return Err(ModelError::Training(format!(
                "the spend model's q = {:.3} is at most 1, so expected spend is infinite: a few \
                 very large orders dominate; cap or exclude outlier orders",
                model.q
            )));
        }
        Ok((
            model,
            FitReport {
                log_likelihood: ll,
                iterations,
                converged: true,
                customers: n,
                repeat_customers: n,
            },
        ))
    }

    /// The expected mean spend per purchase of a customer given their history:
    /// p(γ + x·m) / (p·x + q - 1). With no repeat purchases, the population mean pγ/(q-1).
    pub fn expected_spend(&self, s: &RfmSummary) -> f64 {
        let (x, m) = if s.x > 0.0 && s.monetary > 0.0 {
            (s.x, s.monetary)
        } else {
            (0.0, 0.0)
        };
        self.p * (self.gamma + x * m) / (self.p * x + self.q - 1.0)
    }
}

/// A fitted lifetime-value model: purchases (BG/NBD) and spend (Gamma-Gamma), in time units
/// of `unit_days` days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClvModel {
    pub bgnbd: BgNbd,
    pub gamma_gamma: GammaGamma,
    /// The length of the model's time unit in days (7 for weeks).
    pub unit_days: f64,
    /// The BG/NBD fit.
    pub fit: FitReport,
    /// The Gamma-Gamma fit.
    pub spend_fit: FitReport,
}

impl ClvModel {
    /// Fits both models on `summaries` (in units of `unit_days` days).
    pub fn fit(summaries: &[RfmSummary], unit_days: f64) -> Result<ClvModel, ModelError> {
        if !(unit_days.is_finite() && unit_days > 0.0) {
            return Err(ModelError::Training(format!(
                "time unit of {unit_days} days: it must be positive"
            )));
        }
        let (bgnbd, fit) = BgNbd::fit(summaries)?;
        let (gamma_gamma, spend_fit) = GammaGamma::fit(summaries)?;
        Ok(ClvModel {
            bgnbd,
            gamma_gamma,
            unit_days,
            fit,
            spend_fit,
        })
    }

    /// Expected purchases in the next `months` months.
    pub fn expected_purchases_months(&self, s: &RfmSummary, months: f64) -> f64 {
        self.bgnbd
            .expected_purchases(s, months * DAYS_PER_MONTH / self.unit_days)
    }

    /// The discounted margin a customer is expected to bring over the next `horizon_months`
    /// months: Σₘ (E[Y(m)] - E[Y(m-1)]) · E[spend] · margin / (1 + monthly_discount)^m,
    /// months of 365.25/12 days, each month's purchases discounted at its end.
    pub fn lifetime_value(
        &self,
        s: &RfmSummary,
        horizon_months: u32,
        monthly_discount: f64,
        margin: f64,
    ) -> f64 {
        let spend = self.gamma_gamma.expected_spend(s);
        let horizons: Vec<f64> = (1..=horizon_months)
            .map(|m| f64::from(m) * DAYS_PER_MONTH / self.unit_days)
            .collect();
        let cumulative = self.bgnbd.expected_purchases_at(s, &horizons);
        let mut previous = 0.0;
        let mut value = 0.0;
        for (m, cumulative) in (1..=horizon_months).zip(cumulative) {
            value += (cumulative - previous) / (1.0 + monthly_discount).powi(m as i32);
            previous = cumulative;
        }
        value * spend * margin
    }

    /// Writes `clv.json` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let path = dir.join(CLV_FILE);
        let bad = |reason: String| ModelError::File {
            path: path.display().to_string(),
            reason,
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| bad(e.to_string()))?;
        std::fs::write(&path, json).map_err(|e| bad(format!("cannot write: {e}")))
    }

    /// Reads `clv.json` from `dir`, refusing parameters no fit could have produced.
    pub fn load(dir: &Path) -> Result<ClvModel, ModelError> {
        let path = dir.join(CLV_FILE);
        let bad = |reason: String| ModelError::File {
            path: path.display().to_string(),
            reason,
        };
        let bytes = std::fs::read(&path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let model: ClvModel =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a CLV model: {e}")))?;
        let g = model.gamma_gamma;
        let positive = [g.p, g.q, g.gamma, model.unit_days]
            .iter()
            .all(|v| v.is_finite() && *v > 0.0);
        if !model.bgnbd.params_ok() || !positive || g.q <= 1.0 {
            return Err(bad(format!(
                "parameters out of range (every one must be positive and finite, q > 1): {:?} {:?}",
                model.bgnbd, g
            )));
        }
        Ok(model)
    }
}

/// A verified `clv` registry version.
#[derive(Debug, Clone)]
pub struct LoadedClv {
    pub manifest: Manifest,
    pub model: ClvModel,
}

impl LoadedClv {
    /// The currency the model's spend is in (`extra.currency`, written by the trainer);
    /// None for a version that does not say.
    pub fn currency(&self) -> Option<&str> {
        self.manifest
            .extra
            .get("currency")
            .and_then(serde_json::Value::as_str)
    }
}

/// Loads a `clv` version after verifying its files against the manifest.
pub fn load_clv(registry: &dyn ModelRegistry, version: u64) -> Result<LoadedClv, ModelError> {
    let (manifest, dir) = registry
        .verified("clv", version)
        .map_err(|e| ModelError::File {
            path: format!("{}/clv/{version}", registry.location()),
            reason: e.to_string(),
        })?;
    let model = ClvModel::load(&dir)?;
    Ok(LoadedClv { manifest, model })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Transaction;

    const PAPER: BgNbd = BgNbd {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };

    fn s(x: f64, t_x: f64, t: f64) -> RfmSummary {
        RfmSummary {
            x,
            t_x,
            t,
            monetary: 0.0,
        }
    }

    #[test]
    fn log_likelihood_matches_the_formula_by_hand() {
        let m = BgNbd {
            r: 0.5,
            alpha: 2.0,
            a: 0.7,
            b: 3.0,
        };
        // x = 0: r ln(α / (α + T)).
        let zero = 0.5 * (2.0f64 / 8.0).ln();
        // x = 1: ln r + r ln α + ln(b / (a + b)) + ln[(α+T)^-(r+1) + (a/b)(α+t_x)^-(r+1)].
        let one = 0.5f64.ln()
            + 0.5 * 2.0f64.ln()
            + (3.0f64 / 3.7).ln()
            + (10.0f64.powf(-1.5) + 0.7 / 3.0 * 5.0f64.powf(-1.5)).ln();
        let ll = m.log_likelihood(&[s(0.0, 0.0, 6.0), s(1.0, 3.0, 8.0)]);
        assert!((ll - (zero + one)).abs() < 1e-12, "{ll} vs {}", zero + one);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let data = [
            s(0.0, 0.0, 30.0),
            s(2.0, 10.0, 35.0),
            s(5.0, 30.0, 38.0),
            s(1.0, 1.5, 20.0),
        ];
        let g = group_by_x(data.iter().map(|s| &s.x));
        let p = [0.4, 3.0, 0.8, 2.5];
        let at = |p: [f64; 4]| BgNbd {
            r: p[0],
            alpha: p[1],
            a: p[2],
            b: p[3],
        };
        let (_, grad) = at(p).ll_grad(&g, &data);
        for i in 0..4 {
            let (mut hi, mut lo) = (p, p);
            hi[i] += 1e-6;
            lo[i] -= 1e-6;
            let num = (at(hi).ll_grad(&g, &data).0 - at(lo).ll_grad(&g, &data).0) / 2e-6;
            assert!(
                (num - grad[i]).abs() < 1e-6,
                "BG/NBD {i}: {num} vs {}",
                grad[i]
            );
        }
        let rows: Vec<(f64, f64)> = [12.0, 30.0, 7.5, 50.0]
            .iter()
            .map(|m: &f64| (m.ln(), *m))
            .collect();
        let xs = [1.0, 3.0, 1.0, 6.0];
        let g = group_by_x(xs.iter());
        let q = [4.0, 3.0, 15.0];
        let at = |q: [f64; 3]| GammaGamma {
            p: q[0],
            q: q[1],
            gamma: q[2],
        };
        let (_, grad) = at(q).ll_grad(&g, &rows);
        for i in 0..3 {
            let (mut hi, mut lo) = (q, q);
            hi[i] += 1e-6;
            lo[i] -= 1e-6;
            let num = (at(hi).ll_grad(&g, &rows).0 - at(lo).ll_grad(&g, &rows).0) / 2e-6;
            assert!(
                (num - grad[i]).abs() < 1e-6,
                "Gamma-Gamma {i}: {num} vs {}",
                grad[i]
            );
        }
    }

    #[test]
    fn hypergeometric_series_matches_closed_forms() {
        // ₂F₁(1, 1; 2; z) = -ln(1 - z) / z.
        for z in [0.1, 0.5, 0.9, 0.999] {
            let f = hyp2f1_scaled(1.0, 1.0, 2.0, z, 0.0);
            let exact = -(-z).ln_1p() / z;
            assert!((f / exact - 1.0).abs() < 1e-12, "z = {z}: {f} vs {exact}");
        }
        // ₂F₁(a, b; b; z) = (1 - z)^-a, here with a large a that makes the terms grow first.
        let f = hyp2f1_scaled(40.0, 2.5, 2.5, 0.99, 40.0 * (-0.99f64).ln_1p());
        assert!((f - 1.0).abs() < 1e-9, "{f}");
    }

    #[test]
    fn p_alive_is_one_without_repeats_and_falls_with_silence() {
        assert_eq!(PAPER.probability_alive(&s(0.0, 0.0, 30.0)), 1.0);
        let recent = PAPER.probability_alive(&s(3.0, 29.0, 30.0));
        let silent = PAPER.probability_alive(&s(3.0, 5.0, 30.0));
        assert!(
            recent > silent && silent > 0.0 && recent < 1.0,
            "{recent} {silent}"
        );
    }

    #[test]
    fn expected_purchases_grow_with_time_and_match_lifetimes() {
        let c = s(2.0, 30.43, 38.86);
        let mut last = 0.0;
        for t in [1.0, 5.0, 20.0, 52.0, 200.0, 1000.0] {
            let e = PAPER.expected_purchases(&c, t);
            assert!(e > last, "t = {t}: {e} after {last}");
            last = e;
        }
        assert_eq!(PAPER.expected_purchases(&c, 0.0), 0.0);
        // Values from lifetimes 0.11.3 (scipy's hyp2f1) with the same parameters.
        for (c, t, expected) in [
            (c, 39.0, 1.226028174767135),
            (s(0.0, 0.0, 38.86), 39.0, 0.19509805201125396),
            (c, 1000.0, 10.120518988765435),
            (s(5.0, 10.0, 38.86), 52.0, 0.11911777537607945),
        ] {
            let e = PAPER.expected_purchases(&c, t);
            assert!(
                (e / expected - 1.0).abs() < 1e-9,
                "{c:?} {t}: {e} vs {expected}"
            );
        }
        let p = PAPER.probability_alive(&c);
        assert!((p - 0.72657857).abs() < 1e-8, "{p}");
    }

    fn purchase(day: i64, hour: i64, amount_minor: i64) -> StoredEvent {
        let time = day * MICROS_PER_DAY + hour * 3_600_000_000;
        StoredEvent {
            customer_id: "c".into(),
            event_key: format!("{day}-{hour}"),
            time,
            record_time: time,
            payload: EventPayload::Transaction(Transaction {
                amount_minor,
                currency: "USD".into(),
                quantity: 1,
                category: String::new(),
                channel: String::new(),
            }),
        }
    }

    #[test]
    fn summarize_counts_a_day_once_and_skips_the_first() {
        let events = vec![
            purchase(100, 9, 1000),
            purchase(100, 15, 500),
            purchase(107, 10, 2000),
            purchase(107, 11, 1000),
            purchase(114, 10, 1000),
            purchase(200, 10, 99_999), // after the cutoff
        ];
        let as_of = 121 * MICROS_PER_DAY;
        let s = summarize(&events, as_of, 7 * MICROS_PER_DAY).expect("purchases");
        assert_eq!(s.x, 2.0);
        // T runs to day 120, the last day before the cutoff.
        assert!(
            (s.t_x - 2.0).abs() < 1e-12 && (s.t - 20.0 / 7.0).abs() < 1e-12,
            "{s:?}"
        );
        // Repeat days spent 30 and 10.
        assert!((s.monetary - 20.0).abs() < 1e-12, "{s:?}");
        assert!(summarize(&events, 100 * MICROS_PER_DAY, MICROS_PER_DAY).is_none());
    }

    #[test]
    fn fits_refuse_data_they_cannot_use() {
        let one = [s(2.0, 3.0, 10.0)];
        assert!(matches!(BgNbd::fit(&one), Err(ModelError::Training(_))));
        let none = [s(0.0, 0.0, 10.0), s(0.0, 0.0, 12.0)];
        let e = BgNbd::fit(&none).err().map(|e| e.to_string());
        assert!(e.as_deref().is_some_and(|e| e.contains("repeat")), "{e:?}");
        assert!(matches!(
            GammaGamma::fit(&none),
            Err(ModelError::Training(_))
        ));
    }

    #[test]
    fn horizons_in_one_pass_equal_each_alone_to_the_bit() {
        let customers = [
            (0.0, 0.0, 10.0),
            (1.0, 2.0, 38.0),
            (4.0, 30.0, 38.0),
            (20.0, 70.0, 78.0),
            (2.0, 5.0, 300.0),
        ];
        // Horizons whose series converge after different numbers of terms, a zero and a
        // negative horizon (no purchases expected), in no particular order.
        let horizons = [4.3, 52.0, 0.0, 1.0, 520.0, -3.0, 26.1, 5_000.0];
        for model in [
            PAPER,
            BgNbd {
                r: 2.1,
                alpha: 3.5,
                a: 0.4,
                b: 1.9,
            },
        ] {
            for (x, t_x, t) in customers {
                let s = RfmSummary {
                    x,
                    t_x,
                    t,
                    monetary: 0.0,
                };
                let together = model.expected_purchases_at(&s, &horizons);
                for (h, value) in horizons.iter().zip(&together) {
                    let alone = model.expected_purchases(&s, *h);
                    assert_eq!(value.to_bits(), alone.to_bits(), "x={x} t={t} h={h}");
                }
            }
        }
        let bad = BgNbd { r: -1.0, ..PAPER };
        let s = RfmSummary {
            x: 1.0,
            t_x: 1.0,
            t: 2.0,
            monetary: 0.0,
        };
        assert_eq!(bad.expected_purchases_at(&s, &[1.0, 2.0]), vec![0.0, 0.0]);
    }

    #[test]
    fn lifetime_value_discounts_and_saves() {
        let model = ClvModel {
            bgnbd: PAPER,
            gamma_gamma: GammaGamma {
                p: 6.25,
                q: 3.74,
                gamma: 15.44,
            },
            unit_days: 7.0,
            fit: FitReport {
                log_likelihood: -9582.4,
                iterations: 10,
                converged: true,
                customers: 2357,
                repeat_customers: 946,
            },
            spend_fit: FitReport {
                log_likelihood: -4000.0,
                iterations: 10,
                converged: true,
                customers: 946,
                repeat_customers: 946,
            },
        };
        let c = RfmSummary {
            x: 4.0,
            t_x: 30.0,
            t: 38.0,
            monetary: 40.0,
        };
        let plain = model.lifetime_value(&c, 12, 0.0, 1.0);
        let direct =
            model.expected_purchases_months(&c, 12.0) * model.gamma_gamma.expected_spend(&c);
        assert!(
            (plain - direct).abs() < 1e-9 * direct,
            "{plain} vs {direct}"
        );
        let discounted = model.lifetime_value(&c, 12, 0.01, 0.3);
        assert!(discounted < 0.3 * plain && discounted > 0.25 * plain);
        let dir = tempfile::tempdir().expect("tempdir");
        model.save(dir.path()).expect("save");
        assert_eq!(ClvModel::load(dir.path()).expect("load"), model);
    }
}
