//! The registry against two real S3 implementations started on loopback: SeaweedFS and
//! moto (see `vitals_object_registry::testing`). Fails, never skips, when they are missing.

use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use vitals_object_registry::testing::S3Server;
use vitals_object_registry::{ObjectRegistry, conformance};

fn suite(server: &S3Server) {
    server.create_bucket("vitals-models");
    let scratch = tempfile::tempdir().expect("scratch");
    let registry = Arc::new(
        ObjectRegistry::with_store(
            server.store("vitals-models"),
            ObjectPath::from("conformance"),
            &format!("s3://vitals-models/conformance ({})", server.name),
            &scratch.path().join("cache"),
        )
        .expect("registry"),
    );
    conformance::versions_publish_activate_and_roll_back(&registry, scratch.path());
    conformance::bad_versions_are_refused(&registry, scratch.path());
    conformance::concurrent_publishers_get_distinct_versions(&registry, scratch.path());
    conformance::one_activator_wins_each_round(&registry, 8, 10);
}

#[test]
fn seaweedfs_keeps_a_registry() {
    suite(&S3Server::seaweedfs());
}

#[test]
fn moto_keeps_a_registry() {
    suite(&S3Server::moto());
}
