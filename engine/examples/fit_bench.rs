//! Times the engine's model fits on a synthetic matrix, and writes the matrix so
//! `bench/fit_baseline.py` can time scikit-learn on exactly the same data.
//!
//! ```text
//! cargo run --release -p vitals-engine --example fit_bench -- ROWS COLS OUT_DIR
//! python3 bench/fit_baseline.py OUT_DIR
//! ```

use std::io::Write;
use std::time::Instant;

use rand::{Rng, SeedableRng, rngs::StdRng};
use vitals_engine::models::Rows;
use vitals_engine::models::kmeans;
use vitals_engine::models::logistic::{LogisticParams, LogisticRegression};
use vitals_engine::models::sigmoid;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = args.get(1).map_or(Ok(1_000_000), |s| s.parse())?;
    let cols: usize = args.get(2).map_or(Ok(30), |s| s.parse())?;
    let out = std::path::PathBuf::from(args.get(3).map_or("/tmp/vitals-fit-bench", String::as_str));
    std::fs::create_dir_all(&out)?;

    let mut rng = StdRng::seed_from_u64(1);
    let weights: Vec<f64> = (0..cols)
        .map(|j| {
            if j % 3 == 0 {
                0.0
            } else {
                rng.random_range(-1.0..1.0)
            }
        })
        .collect();
    let mut x = Vec::with_capacity(rows * cols);
    let mut y = Vec::with_capacity(rows);
    for i in 0..rows {
        // Eight loose clusters, so k-means has structure to find.
        let center = (i % 8) as f32;
        let mut z = -1.0;
        for w in &weights {
            let v = rng.random_range(-1.0f32..1.0) + center * 0.5;
            x.push(v);
            z += w * f64::from(v);
        }
        y.push(rng.random::<f64>() < sigmoid(z));
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(out.join("x.f32"))?);
    for v in &x {
        f.write_all(&v.to_le_bytes())?;
    }
    f.flush()?;
    std::fs::write(
        out.join("y.u8"),
        y.iter().map(|&b| u8::from(b)).collect::<Vec<_>>(),
    )?;
    std::fs::write(out.join("shape.txt"), format!("{rows} {cols}\n"))?;

    let matrix = Rows::new(&x, cols)?;
    let started = Instant::now();
    let (_, info) = LogisticRegression::fit(matrix, &y, &LogisticParams::default())?;
    let logistic = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let clusters = kmeans::fit(&x, cols, 8, 1, 300, 1e-4)?;
    let kmeans = started.elapsed().as_secs_f64();
    println!(
        "{{\"rows\": {rows}, \"cols\": {cols}, \"logistic_seconds\": {logistic:.3}, \"logistic_iterations\": {}, \"kmeans_seconds\": {kmeans:.3}, \"kmeans_iterations\": {}, \"kmeans_inertia\": {:.0}}}",
        info.iterations, clusters.iterations, clusters.inertia
    );
    Ok(())
}
