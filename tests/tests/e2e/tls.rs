//! TLS with rustls: a client that trusts the server's CA gets through, a plaintext one
//! does not; with a client CA configured, only clients with a certificate it signed do.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use vitals_server::{ServerConfig, TlsFiles};
use vitals_tests::{Backend, TestDb, TestServer};

struct Pki {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
}

/// A CA, a server certificate for localhost and a client certificate, all signed by it.
fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().expect("leaf key");
        let cert = CertificateParams::new(names)
            .expect("leaf params")
            .signed_by(&key, &ca, &ca_key)
            .expect("leaf cert");
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca_pem: ca.pem(),
        server: leaf(vec!["localhost".into()]),
        client: leaf(vec!["crm-client".into()]),
    }
}

fn write(dir: &Path, name: &str, pem: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).expect("write pem");
    path
}

async fn start(pki: &Pki, dir: &Path, mutual: bool) -> TestServer {
    let db = TestDb::new(Backend::Sqlite);
    let store = db.store();
    let tls = TlsFiles {
        cert: write(dir, "server.pem", &pki.server.0),
        key: write(dir, "server.key", &pki.server.1),
        client_ca: mutual.then(|| write(dir, "ca.pem", &pki.ca_pem)),
    };
    TestServer::start_on(
        db,
        store,
        ServerConfig {
            tls: Some(tls),
            ..ServerConfig::default()
        },
    )
    .await
}

async fn check(server: &TestServer, tls: Option<ClientTlsConfig>) -> Result<(), String> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Channel::from_shared(format!("{scheme}://localhost:{}", server.addr.port()))
        .map_err(|e| e.to_string())?;
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).map_err(|e| e.to_string())?;
    }
    let channel = endpoint.connect().await.map_err(|e| format!("{e:?}"))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

fn trusting(pki: &Pki) -> ClientTlsConfig {
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_clients_that_trust_the_certificate() {
    let pki = pki();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(&pki, dir.path(), false).await;
    check(&server, Some(trusting(&pki)))
        .await
        .expect("a TLS client that trusts the CA");
    assert!(
        check(&server, None).await.is_err(),
        "plaintext is not served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_a_client_certificate() {
    let pki = pki();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(&pki, dir.path(), true).await;
    assert!(
        check(&server, Some(trusting(&pki))).await.is_err(),
        "no client certificate, no service"
    );
    let with_cert = trusting(&pki).identity(Identity::from_pem(&pki.client.0, &pki.client.1));
    check(&server, Some(with_cert))
        .await
        .expect("a client certificate signed by the CA");
}
