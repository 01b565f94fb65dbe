//! The console's files and the embeddable customer card, built from `web/` (`npm run build` there) and embedded in the
//! binary, so the README's first command serves the console with nothing but Rust
//! installed. CI rebuilds them and fails when they differ from the checked-in build.
//!
//! The page itself holds no data: everything it shows comes from the API, with the
//! caller's key, so serving it needs no key (like `/metrics`).

/// One embedded file: its bytes and content type.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    pub body: &'static [u8],
    pub content_type: &'static str,
    /// Loadable by pages of other origins: the customer card is a module script, which
    /// browsers fetch in CORS mode.
    pub cross_origin: bool,
}

const PAGE: Asset = Asset {
    body: include_bytes!("../../web/dist/console.html"),
    content_type: "text/html; charset=utf-8",
    cross_origin: false,
};

/// The file served at `path`, if the console has one there.
pub fn asset(path: &str) -> Option<Asset> {
    match path {
        "/" | "/index.html" | "/console" | "/console/" => Some(PAGE),
        "/console.js" => Some(Asset {
            body: include_bytes!("../../web/dist/console.js"),
            content_type: "text/javascript; charset=utf-8",
            cross_origin: false,
        }),
        "/console.css" => Some(Asset {
            body: include_bytes!("../../web/dist/console.css"),
            content_type: "text/css; charset=utf-8",
            cross_origin: false,
        }),
        // <vitals-customer-card>, for CRM pages on other origins (examples/crm-page/).
        "/card.js" => Some(Asset {
            body: include_bytes!("../../web/dist/card.js"),
            content_type: "text/javascript; charset=utf-8",
            cross_origin: true,
        }),
        _ => None,
    }
}
