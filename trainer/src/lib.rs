//! Vitals' offline tooling behind the `vitals-trainer` binary, as a library so tests and
//! other tools call the same code.
//!
//! - [`import`]: loading customers and events from files into the store.
//! - [`time`] and [`money`]: the parsing rules every importer shares.

pub mod generate;
pub mod import;
pub mod money;
pub mod report;
pub mod review;
pub mod score;
pub mod time;
pub mod train;

use std::sync::Arc;

use anyhow::Context;
use vitals_engine::registry::ModelRegistry;

/// The registry at `location` (a directory, or an `s3://`, `gs://`, `az://` URL); an object
/// store's versions are cached in `vitals_object_registry::default_cache()`.
pub fn open_registry(location: &str) -> anyhow::Result<Arc<dyn ModelRegistry>> {
    vitals_object_registry::open(location, &vitals_object_registry::default_cache())
        .with_context(|| format!("opening the registry {location}"))
}

pub use import::cdnow::import_cdnow;
pub use import::csv_generic::{import_customers, import_events};
pub use import::telco::import_telco;
pub use import::{ImportKind, ImportOptions, ImportSummary, Rejection};

/// Writes one line to stdout. A closed pipe (`vitals-trainer models list | head`) ends
/// the program quietly with success instead of panicking as `println!` does.
pub fn print_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(line).and_then(|()| out.write_all(b"\n"))
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// `println!` for command output, through [`print_line`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::print_line(format_args!($($arg)*))
    };
}
