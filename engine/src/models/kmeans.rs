//! k-means (Lloyd's algorithm with k-means++ seeding), written for throughput.
//!
//! smartcore's k-means (a BBD tree) took 170 s on 1,000,000 × 30 where scikit-learn takes
//! about 2 s (BENCHMARKS.md): trees stop paying off in 30 dimensions. This is the plain
//! algorithm scikit-learn runs: seed with k-means++ (on a sample), then alternate
//! assigning each point to its nearest centroid (split over the cores) and moving each
//! centroid to its points' mean, until the centroids move less than `tol` relative to
//! the data's variance.

use rand::{Rng, SeedableRng, rngs::StdRng};

use super::ModelError;

/// A fitted clustering.
#[derive(Debug, Clone)]
pub struct KMeans {
    /// Row-major, `k × dims`.
    pub centroids: Vec<f32>,
    pub dims: usize,
    pub assignments: Vec<usize>,
    /// Sum of squared distances of points to their centroid.
    pub inertia: f64,
    pub iterations: usize,
}

fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// The nearest centroid to `x` and the squared distance to it.
pub fn nearest(centroids: &[f32], dims: usize, x: &[f32]) -> (usize, f32) {
    let mut best = (0, f32::INFINITY);
    for (c, centroid) in centroids.chunks_exact(dims).enumerate() {
        let d = squared_distance(centroid, x);
        if d < best.1 {
            best = (c, d);
        }
    }
    best
}

/// k-means++ seeding on (a sample of) the points.
fn seed_centroids(data: &[f32], dims: usize, k: usize, rng: &mut StdRng) -> Vec<f32> {
    let n = data.len() / dims;
    let sample: Vec<usize> = if n > 20_000 {
        (0..20_000).map(|_| rng.random_range(0..n)).collect()
    } else {
        (0..n).collect()
    };
    let point = |i: usize| &data[i * dims..(i + 1) * dims];
    let mut centroids = Vec::with_capacity(k * dims);
    centroids.extend_from_slice(point(sample[rng.random_range(0..sample.len())]));
    let mut closest: Vec<f32> = sample
        .iter()
        .map(|&i| squared_distance(point(i), &centroids[..dims]))
        .collect();
    while centroids.len() < k * dims {
        let total: f64 = closest.iter().map(|&d| f64::from(d)).sum();
        let chosen = if total > 0.0 {
            let mut target = rng.random::<f64>() * total;
            let mut pick = sample.len() - 1;
            for (j, &d) in closest.iter().enumerate() {
                target -= f64::from(d);
                if target <= 0.0 {
                    pick = j;
                    break;
                }
            }
            pick
        } else {
            rng.random_range(0..sample.len())
        };
        let start = centroids.len();
        centroids.extend_from_slice(point(sample[chosen]));
        let newest = centroids[start..].to_vec();
        for (j, &i) in sample.iter().enumerate() {
            closest[j] = closest[j].min(squared_distance(point(i), &newest));
        }
    }
    centroids
}

/// Per-thread partial result of one assignment pass.
struct Partial {
    sums: Vec<f64>,
    counts: Vec<usize>,
    inertia: f64,
}

fn assign_chunk(
    data: &[f32],
    dims: usize,
    k: usize,
    centroids: &[f32],
    out: &mut [usize],
) -> Partial {
    let mut p = Partial {
        sums: vec![0.0; k * dims],
        counts: vec![0; k],
        inertia: 0.0,
    };
    for (x, slot) in data.chunks_exact(dims).zip(out.iter_mut()) {
        let (c, d) = nearest(centroids, dims, x);
        *slot = c;
        p.counts[c] += 1;
        p.inertia += f64::from(d);
        for (s, v) in p.sums[c * dims..(c + 1) * dims].iter_mut().zip(x) {
            *s += f64::from(*v);
        }
    }
    p
}

/// Clusters the rows of `data` (row-major, `dims` columns) into `k` groups.
pub fn fit(
    data: &[f32],
    dims: usize,
    k: usize,
    seed: u64,
    max_iter: usize,
    tol: f64,
) -> Result<KMeans, ModelError> {
    if dims == 0 || !data.len().is_multiple_of(dims) {
        return Err(ModelError::Shape(format!(
            "{} values do not make rows of {dims} columns",
            data.len()
        )));
    }
    let n = data.len() / dims;
    if k < 2 || n < k {
        return Err(ModelError::Training(format!(
            "{n} points cannot make {k} clusters"
        )));
    }
    if data.iter().any(|v| !v.is_finite()) {
        return Err(ModelError::Training(
            "the data holds non-finite values".into(),
        ));
    }
    // Convergence is judged against the data's scale, as scikit-learn does.
    let mut mean = vec![0.0f64; dims];
    for x in data.chunks_exact(dims) {
        for (m, v) in mean.iter_mut().zip(x) {
            *m += f64::from(*v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut var = 0.0;
    for x in data.chunks_exact(dims) {
        for (m, v) in mean.iter().zip(x) {
            var += (f64::from(*v) - m).powi(2);
        }
    }
    let threshold = tol * var / (n * dims) as f64;

    let mut rng = StdRng::seed_from_u64(seed);
    let mut centroids = seed_centroids(data, dims, k, &mut rng);
    let mut assignments = vec![0usize; n];
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .clamp(1, 8);
    let rows_per_thread = n.div_ceil(threads);
    let mut iterations = 0;
    let mut inertia = 0.0;
    while iterations < max_iter {
        iterations += 1;
        let current = &centroids;
        let partials: Vec<Partial> = std::thread::scope(|scope| {
            let handles: Vec<_> = data
                .chunks(rows_per_thread * dims)
                .zip(assignments.chunks_mut(rows_per_thread))
                .map(|(chunk, out)| scope.spawn(move || assign_chunk(chunk, dims, k, current, out)))
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let mut sums = vec![0.0f64; k * dims];
        let mut counts = vec![0usize; k];
        inertia = 0.0;
        for p in partials {
            for (s, v) in sums.iter_mut().zip(&p.sums) {
                *s += v;
            }
            for (c, v) in counts.iter_mut().zip(&p.counts) {
                *c += v;
            }
            inertia += p.inertia;
        }
        let mut shift = 0.0f64;
        let mut next = centroids.clone();
        for c in 0..k {
            let slot = &mut next[c * dims..(c + 1) * dims];
            if counts[c] == 0 {
                // An empty cluster restarts at a random point.
                let i = rng.random_range(0..n);
                slot.copy_from_slice(&data[i * dims..(i + 1) * dims]);
            } else {
                for (j, v) in slot.iter_mut().enumerate() {
                    *v = (sums[c * dims + j] / counts[c] as f64) as f32;
                }
            }
            shift += f64::from(squared_distance(slot, &centroids[c * dims..(c + 1) * dims]));
        }
        centroids = next;
        if shift <= threshold {
            break;
        }
    }
    Ok(KMeans {
        centroids,
        dims,
        assignments,
        inertia,
        iterations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(per: usize, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        let centers = [[0.0f32, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let mut data = Vec::new();
        for c in centers {
            for _ in 0..per {
                data.push(c[0] + rng.random_range(-1.0..1.0));
                data.push(c[1] + rng.random_range(-1.0..1.0));
            }
        }
        data
    }

    #[test]
    fn finds_separated_blobs_deterministically() {
        let data = blobs(500, 3);
        let m = fit(&data, 2, 3, 11, 100, 1e-4).expect("fit");
        // Every blob is one cluster.
        for b in 0..3 {
            let first = m.assignments[b * 500];
            assert!(
                m.assignments[b * 500..(b + 1) * 500]
                    .iter()
                    .all(|&a| a == first)
            );
        }
        let mut seen: Vec<usize> = (0..3).map(|b| m.assignments[b * 500]).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 3);
        let again = fit(&data, 2, 3, 11, 100, 1e-4).expect("fit");
        assert_eq!(again.assignments, m.assignments);
        assert_eq!(nearest(&m.centroids, 2, &[10.2, 0.1]).0, m.assignments[500]);
    }

    #[test]
    fn refuses_bad_input() {
        assert!(fit(&[1.0, 2.0, 3.0], 2, 2, 1, 10, 1e-4).is_err());
        assert!(fit(&[1.0, 2.0], 2, 2, 1, 10, 1e-4).is_err());
        assert!(fit(&[1.0, f32::NAN, 1.0, 2.0, 3.0, 4.0], 2, 2, 1, 10, 1e-4).is_err());
    }
}
