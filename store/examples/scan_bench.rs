//! Times reading every customer's history (`Store::scan_histories`), with no work per
//! customer, to separate the database read from feature computation.
//!
//! ```text
//! cargo run --release -p vitals-store --example scan_bench -- postgres://postgres@127.0.0.1:5432/vitals_bench
//! ```

use std::time::Instant;

use vitals_store::{DatabaseUrl, PoolOptions, Store};

// The trainer's allocator: reading histories allocates a few strings per event, and the
// system allocator alone would cost more than the decoding.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/vitals_bench".into());
    let chunk: usize = std::env::args().nth(2).map_or(Ok(2_000), |s| s.parse())?;
    let store = Store::open(&DatabaseUrl::parse(&url)?, &PoolOptions::default())?;
    let started = Instant::now();
    let (mut customers, mut events) = (0usize, 0usize);
    store.scan_histories(chunk, |histories| {
        customers += histories.len();
        events += histories.iter().map(|h| h.events.len()).sum::<usize>();
        Ok(std::ops::ControlFlow::Continue(()))
    })?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{customers} customers, {events} events in {seconds:.2} s: {:.0} events/s",
        events as f64 / seconds
    );
    Ok(())
}
