//! Times the BG/NBD fit on synthetic customers drawn from a BG/NBD process with known
//! parameters, and writes their summaries so `bench/clv_lifetimes.py` can time
//! `lifetimes`' `BetaGeoFitter` on exactly the same numbers.
//!
//! ```text
//! cargo run --release -p vitals-engine --example clv_bench -- CUSTOMERS OUT.csv
//! /tmp/clv-venv/bin/python bench/clv_lifetimes.py OUT.csv
//! ```

use std::io::Write;
use std::time::Instant;

use rand::{Rng, SeedableRng, rngs::StdRng};
use vitals_engine::models::clv::{BgNbd, RfmSummary};

/// A Gamma(shape, 1) draw (Marsaglia and Tsang; shapes below 1 boosted by U^(1/shape)),
/// so the example needs no distribution crate.
fn gamma(rng: &mut StdRng, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.random();
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        // A standard normal by Box-Muller.
        let (u1, u2): (f64, f64) = (rng.random(), rng.random());
        let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let v = (1.0 + c * z).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.random();
        if u.ln() < 0.5 * z * z + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// One customer observed for `t` weeks after a first purchase at 0.
fn customer(rng: &mut StdRng, truth: &BgNbd, t: f64) -> RfmSummary {
    let lambda = gamma(rng, truth.r) / truth.alpha;
    let g1 = gamma(rng, truth.a);
    let p = g1 / (g1 + gamma(rng, truth.b));
    let (mut x, mut t_x, mut now) = (0.0, 0.0, 0.0);
    loop {
        let u: f64 = rng.random();
        now += -(1.0 - u).ln() / lambda;
        if now > t {
            break;
        }
        x += 1.0;
        t_x = now;
        // After each repeat purchase the customer drops out with probability p.
        if rng.random::<f64>() < p {
            break;
        }
    }
    RfmSummary {
        x,
        t_x,
        t,
        monetary: 0.0,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(Ok(1_000_000), |s| s.parse())?;
    let out = args.get(2).map_or("/tmp/clv-bench.csv", String::as_str);
    // The CDNOW estimates, weeks; ages spread over a year of first purchases.
    let truth = BgNbd {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };
    let mut rng = StdRng::seed_from_u64(5);
    let summaries: Vec<RfmSummary> = (0..n)
        .map(|_| {
            let t = 1.0 + 51.0 * rng.random::<f64>();
            customer(&mut rng, &truth, t)
        })
        .collect();
    let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
    writeln!(w, "frequency,recency,T")?;
    for s in &summaries {
        // `{}` prints the shortest decimal that reads back as the same f64.
        writeln!(w, "{},{},{}", s.x, s.t_x, s.t)?;
    }
    w.flush()?;

    let started = Instant::now();
    let (fit, report) = BgNbd::fit(&summaries)?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"customers\": {n}, \"seconds\": {seconds:.3}, \"r\": {:.4}, \"alpha\": {:.4}, \
         \"a\": {:.4}, \"b\": {:.4}, \"log_likelihood\": {:.2}, \"iterations\": {}, \
         \"threads\": {}}}",
        fit.r,
        fit.alpha,
        fit.a,
        fit.b,
        report.log_likelihood,
        report.iterations,
        std::thread::available_parallelism().map_or(1, |t| t.get())
    );
    Ok(())
}
