//! The model registry on an object store, and the one place a `--registry` location
//! becomes a registry ([`open`]).
//!
//! A plain path (or `file://`) is the filesystem [`Registry`]. `s3://bucket/prefix` (S3 and
//! what speaks it: SeaweedFS, MinIO, R2, ...), `gs://bucket/prefix` and
//! `az://container/prefix` are an [`ObjectRegistry`] through the `object_store` crate,
//! configured by the standard variables it reads (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`; `GOOGLE_*`;
//! `AZURE_*`). Any other scheme is an error, never a folder named after it.
//!
//! Layout under the prefix:
//!
//! ```text
//! <kind>/<version>/.claim            created first (PutMode::Create): the number is taken
//! <kind>/<version>/<files>           the model files
//! <kind>/<version>/manifest.json     written last: a version without it does not exist
//! <kind>/ACTIVE                      {"version": N, "history": [...]}, moved by
//!                                    compare-and-swap (Create, then Update with the etag)
//! ```
//!
//! Versions are immutable: a number is claimed with a create-only write, so two trainers
//! never share one, and the manifest (created once) lists every file with its size and
//! sha256. The active pointer and the activation history are one object, so an activation
//! and its history entry are written together or not at all; the history is only ever
//! appended to. Servers poll `ACTIVE` with conditional GETs (`If-None-Match`), and load a
//! version into a local cache directory only after every file matched its manifest, so a
//! half-written or tampered version is refused on every server while the old one serves.
//!
//! Why by hand on top of `object_store`: no maintained crate keeps versioned model files
//! with an atomically moved pointer on an object store; the primitives (conditional puts
//! and gets, listing) are `object_store`'s.

use std::collections::HashMap;
use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path as ObjectPath;
use object_store::{
    GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vitals_engine::registry::{
    Activation, MANIFEST_FILE, MANIFEST_FORMAT_VERSION, Manifest, ModelRegistry, Published,
    Registry, RegistryError, files_to_publish, is_safe_relative, join_versions, now_timestamp,
    validate_kind, version_of_name,
};

#[doc(hidden)]
pub mod conformance;
#[doc(hidden)]
pub mod testing;

/// The object claiming a version number.
const CLAIM_FILE: &str = ".claim";
/// The object holding the active version and the activation history.
const ACTIVE_OBJECT: &str = "ACTIVE";
/// How many version numbers a publisher tries before giving up.
const MAX_PUBLISH_ATTEMPTS: u64 = 64;
/// How many times an activation re-reads `ACTIVE` after losing a race.
const MAX_ACTIVATE_ATTEMPTS: usize = 64;

/// `rel` (parts separated by `/`) below `base`.
fn under(base: &ObjectPath, rel: &str) -> ObjectPath {
    rel.split('/').fold(base.clone(), ObjectPath::join)
}

/// Where an object store's verified versions are kept on this machine when the caller
/// names no place: `vitals-model-cache` in the system's temporary directory.
pub fn default_cache() -> PathBuf {
    std::env::temp_dir().join("vitals-model-cache")
}

/// Opens the registry at `location`: a directory path or `file://` URL (the filesystem
/// registry), or an object store URL (`s3://`, `gs://`, `az://`). `cache` is where an
/// object store's verified versions are kept on this machine for the model loaders.
pub fn open(location: &str, cache: &Path) -> Result<Arc<dyn ModelRegistry>, RegistryError> {
    match location.split_once("://") {
        None => Ok(Arc::new(Registry::open(location)?)),
        Some(("file", path)) => Ok(Arc::new(Registry::open(path)?)),
        Some(_) => Ok(Arc::new(ObjectRegistry::open(location, cache)?)),
    }
}

/// The active pointer and the history, as stored in `<kind>/ACTIVE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveDoc {
    pub version: u64,
    #[serde(default)]
    pub history: Vec<Activation>,
}

/// `ACTIVE` as one reader saw it: its content and the version token a compare-and-swap
/// must present. `doc` is None when there is none yet (or it is unreadable, `token` set).
#[derive(Debug, Clone)]
pub struct ActiveSeen {
    pub doc: Option<ActiveDoc>,
    token: Option<UpdateVersion>,
}

/// A model registry in a bucket.
pub struct ObjectRegistry {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    url: String,
    cache: PathBuf,
    runtime: Runtime,
    /// The last `ACTIVE` seen per kind, with its etag, for conditional GETs.
    seen: Mutex<HashMap<String, (String, Option<u64>)>>,
}

impl std::fmt::Debug for ObjectRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectRegistry")
            .field("url", &self.url)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// A small runtime of the registry's own: the `ModelRegistry` interface is blocking (its
/// callers are the trainer and the server's blocking threads), `object_store` is async.
struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    fn new() -> Result<Self, RegistryError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("vitals-registry")
            .enable_all()
            .build()
            .map(|rt| Self(Some(rt)))
            .map_err(|e| {
                RegistryError::Location(format!("cannot start the registry's runtime: {e}"))
            })
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        let Some(rt) = &self.0 else {
            unreachable!("the runtime lives as long as the registry")
        };
        match tokio::runtime::Handle::try_current() {
            // Called on an async worker thread: tell tokio this thread blocks for a while.
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| rt.block_on(future))
            }
            _ => rt.block_on(future),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Dropping a runtime inside another one's async context panics; this does not.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl ObjectRegistry {
    /// The registry at an object store URL; the store's settings come from the
    /// environment (see the crate's documentation).
    pub fn open(url: &str, cache: &Path) -> Result<Self, RegistryError> {
        let bad = |why: String| RegistryError::Location(format!("registry `{url}`: {why}"));
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let store: Arc<dyn ObjectStore> = match parsed.scheme() {
            "s3" | "s3a" => Arc::new(
                AmazonS3Builder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "gs" => Arc::new(
                GoogleCloudStorageBuilder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "az" | "azure" | "abfs" | "abfss" => Arc::new(
                MicrosoftAzureBuilder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            other => {
                return Err(bad(format!(
                    "unknown scheme `{other}://`: give a directory, or a file://, s3://, gs:// or az:// URL"
                )));
            }
        };
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(bad("no bucket: write it as scheme://bucket/prefix".into()));
        }
        let prefix = ObjectPath::parse(parsed.path().trim_matches('/'))
            .map_err(|e| bad(format!("the prefix is not a valid object path: {e}")))?;
        Self::with_store(store, prefix, url, cache)
    }

    /// A registry on `store` below `prefix` (tests use it with `object_store`'s in-memory
    /// store); `url` names it in messages.
    pub fn with_store(
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
        url: &str,
        cache: &Path,
    ) -> Result<Self, RegistryError> {
        fs::create_dir_all(cache).map_err(|source| RegistryError::Io {
            path: cache.to_path_buf(),
            source,
        })?;
        Ok(Self {
            store,
            prefix,
            url: url.to_owned(),
            cache: cache.to_path_buf(),
            runtime: Runtime::new()?,
            seen: Mutex::new(HashMap::new()),
        })
    }

    fn store_error(&self, e: object_store::Error) -> RegistryError {
        RegistryError::Store {
            location: self.url.clone(),
            reason: e.to_string(),
        }
    }

    fn kind_path(&self, kind: &str) -> ObjectPath {
        under(&self.prefix, kind)
    }

    fn version_path(&self, kind: &str, version: u64) -> ObjectPath {
        under(&self.kind_path(kind), &version.to_string())
    }

    fn active_path(&self, kind: &str) -> ObjectPath {
        under(&self.kind_path(kind), ACTIVE_OBJECT)
    }

    /// A path as messages show it.
    fn shown(&self, path: &ObjectPath) -> PathBuf {
        PathBuf::from(format!("{}/{}", self.url.trim_end_matches('/'), path))
    }

    fn get_bytes(&self, path: &ObjectPath) -> Result<Option<bytes::Bytes>, RegistryError> {
        self.runtime
            .block_on(async {
                match self.store.get(path).await {
                    Ok(r) => r.bytes().await.map(Some),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .map_err(|e| self.store_error(e))
    }

    /// `ACTIVE` as it is now, with the token to replace it.
    pub fn observe_active(&self, kind: &str) -> Result<ActiveSeen, RegistryError> {
        validate_kind(kind)?;
        let path = self.active_path(kind);
        let got = self
            .runtime
            .block_on(async {
                match self.store.get(&path).await {
                    Ok(r) => {
                        let token = UpdateVersion {
                            e_tag: r.meta.e_tag.clone(),
                            version: r.meta.version.clone(),
                        };
                        r.bytes().await.map(|b| Some((b, token)))
                    }
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .map_err(|e| self.store_error(e))?;
        Ok(match got {
            None => ActiveSeen {
                doc: None,
                token: None,
            },
            Some((bytes, token)) => ActiveSeen {
                // An unreadable pointer is replaced (with its token) by the next activation.
                doc: serde_json::from_slice(&bytes).ok(),
                token: Some(token),
            },
        })
    }

    /// Replaces `ACTIVE` with `doc` if it is still as `seen`: true when this write won,
    /// false when another writer changed it first (nothing is written then).
    pub fn compare_and_swap_active(
        &self,
        kind: &str,
        seen: &ActiveSeen,
        doc: &ActiveDoc,
    ) -> Result<bool, RegistryError> {
        let path = self.active_path(kind);
        let mode = match &seen.token {
            None => PutMode::Create,
            Some(token) => PutMode::Update(token.clone()),
        };
        let body = serde_json::to_vec_pretty(doc).map_err(|e| RegistryError::Corrupt {
            path: self.shown(&path),
            reason: format!("cannot encode the active pointer: {e}"),
        })?;
        self.put_if(&path, body, mode)
    }

    /// Every object below `path`, with its size.
    fn list_below(&self, path: &ObjectPath) -> Result<Vec<(ObjectPath, u64)>, RegistryError> {
        self.runtime
            .block_on(
                self.store
                    .list(Some(path))
                    .map_ok(|m| (m.location, m.size))
                    .try_collect::<Vec<_>>(),
            )
            .map_err(|e| self.store_error(e))
    }

    /// The part of `path` after `base`, with `/`.
    fn relative(base: &ObjectPath, path: &ObjectPath) -> Option<String> {
        let parts: Vec<String> = path
            .prefix_match(base)?
            .map(|p| p.as_ref().to_owned())
            .collect();
        (!parts.is_empty()).then(|| parts.join("/"))
    }

    fn next_version(&self, kind: &str) -> Result<u64, RegistryError> {
        let mut highest = 0;
        // Claimed numbers count too, published or not: a number is never handed out twice.
        for (path, _) in self.list_below(&self.kind_path(kind))? {
            if let Some(rel) = Self::relative(&self.kind_path(kind), &path)
                && let Some((first, _)) = rel.split_once('/')
                && let Some(v) = version_of_name(first)
            {
                highest = highest.max(v);
            }
        }
        if let Ok(seen) = self.observe_active(kind)
            && let Some(doc) = seen.doc
        {
            highest = highest.max(doc.version);
            for a in doc.history {
                highest = highest.max(a.version).max(a.previous.unwrap_or(0));
            }
        }
        Ok(highest + 1)
    }

    fn put_create(&self, path: &ObjectPath, body: Vec<u8>) -> Result<bool, RegistryError> {
        self.put_if(path, body, PutMode::Create)
    }

    /// Writes `body` under the precondition `mode`: true when written, false when the
    /// precondition failed (another writer was first).
    fn put_if(
        &self,
        path: &ObjectPath,
        body: Vec<u8>,
        mode: PutMode,
    ) -> Result<bool, RegistryError> {
        let put = self.runtime.block_on(self.store.put_opts(
            path,
            PutPayload::from(body),
            PutOptions::from(mode),
        ));
        match put {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(false),
            Err(e) => Err(self.store_error(e)),
        }
    }

    fn local_dir(&self, kind: &str, version: u64) -> PathBuf {
        self.cache.join(kind).join(version.to_string())
    }

    /// Whether every file of `manifest` is in `dir` with its size and sha256.
    fn cached_matches(dir: &Path, manifest: &Manifest) -> bool {
        manifest.files.iter().all(|(rel, entry)| {
            vitals_engine::registry::sha256_file(dir.join(rel))
                .is_ok_and(|(sha, bytes)| sha == entry.sha256 && bytes == entry.bytes)
        })
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
        move |source| RegistryError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl ModelRegistry for ObjectRegistry {
    fn location(&self) -> String {
        self.url.clone()
    }

    fn kinds(&self) -> Result<Vec<String>, RegistryError> {
        let listed = self
            .runtime
            .block_on(self.store.list_with_delimiter(Some(&self.prefix)))
            .map_err(|e| self.store_error(e))?;
        let mut kinds = Vec::new();
        for p in listed.common_prefixes {
            let Some(name) = p.filename() else { continue };
            if validate_kind(name).is_ok() && !self.versions(name)?.is_empty() {
                kinds.push(name.to_owned());
            }
        }
        kinds.sort();
        Ok(kinds)
    }

    fn versions(&self, kind: &str) -> Result<Vec<u64>, RegistryError> {
        validate_kind(kind)?;
        let base = self.kind_path(kind);
        let mut versions: Vec<u64> = self
            .list_below(&base)?
            .iter()
            .filter_map(|(path, _)| {
                let rel = Self::relative(&base, path)?;
                let (v, file) = rel.split_once('/')?;
                (file == MANIFEST_FILE)
                    .then(|| version_of_name(v))
                    .flatten()
            })
            .collect();
        versions.sort_unstable();
        versions.dedup();
        Ok(versions)
    }

    fn active(&self, kind: &str) -> Result<Option<u64>, RegistryError> {
        validate_kind(kind)?;
        let path = self.active_path(kind);
        let known = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(kind)
            .cloned();
        let options = GetOptions {
            if_none_match: known.as_ref().map(|(etag, _)| etag.clone()),
            ..GetOptions::default()
        };
        let got = self.runtime.block_on(async {
            match self.store.get_opts(&path, options).await {
                Ok(r) => {
                    let etag = r.meta.e_tag.clone();
                    r.bytes().await.map(|b| Ok((b, etag)))
                }
                Err(e) => Ok(Err(e)),
            }
        });
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match got {
            Ok(Ok((bytes, etag))) => {
                let doc: ActiveDoc =
                    serde_json::from_slice(&bytes).map_err(|e| RegistryError::Corrupt {
                        path: self.shown(&path),
                        reason: format!(
                            "not an active pointer: {e}; activate a version to rewrite it"
                        ),
                    })?;
                match etag {
                    Some(etag) => seen.insert(kind.to_owned(), (etag, Some(doc.version))),
                    None => seen.remove(kind),
                };
                Ok(Some(doc.version))
            }
            Ok(Err(object_store::Error::NotModified { .. })) => {
                Ok(known.and_then(|(_, version)| version))
            }
            Ok(Err(object_store::Error::NotFound { .. })) => {
                seen.remove(kind);
                Ok(None)
            }
            Ok(Err(e)) | Err(e) => Err(self.store_error(e)),
        }
    }

    fn manifest(&self, kind: &str, version: u64) -> Result<Manifest, RegistryError> {
        validate_kind(kind)?;
        let path = under(&self.version_path(kind, version), MANIFEST_FILE);
        let Some(bytes) = (version > 0)
            .then(|| self.get_bytes(&path))
            .transpose()?
            .flatten()
        else {
            let published = self.versions(kind)?;
            return Err(RegistryError::NotFound(format!(
                "version {version} of model kind `{kind}` does not exist in {} (published versions: {})",
                self.url,
                join_versions(&published)
            )));
        };
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::Corrupt {
            path: self.shown(&path),
            reason: format!("not a valid manifest: {e}"),
        })
    }

    fn verified(&self, kind: &str, version: u64) -> Result<(Manifest, PathBuf), RegistryError> {
        let manifest = self.manifest(kind, version)?;
        let base = self.version_path(kind, version);
        let manifest_path = self.shown(&under(&base, MANIFEST_FILE));
        let corrupt = |reason: String| RegistryError::Corrupt {
            path: manifest_path.clone(),
            reason,
        };
        if manifest.format_version != MANIFEST_FORMAT_VERSION {
            return Err(corrupt(format!(
                "format version {} is not {MANIFEST_FORMAT_VERSION}, the one this build reads",
                manifest.format_version
            )));
        }
        if manifest.kind != kind || manifest.version != version {
            return Err(corrupt(format!(
                "it describes {} version {}, not {kind} version {version}",
                manifest.kind, manifest.version
            )));
        }
        // In the bucket: every listed file with its size, nothing unlisted.
        let stored: HashMap<String, u64> = self
            .list_below(&base)?
            .into_iter()
            .filter_map(|(path, size)| Some((Self::relative(&base, &path)?, size)))
            .filter(|(rel, _)| rel != MANIFEST_FILE && rel != CLAIM_FILE)
            .collect();
        for (rel, entry) in &manifest.files {
            let shown = self.shown(&under(&base, rel));
            if !is_safe_relative(rel) {
                return Err(corrupt(format!(
                    "lists `{rel}`, which is not a plain relative path"
                )));
            }
            match stored.get(rel) {
                None => {
                    return Err(RegistryError::Integrity {
                        path: shown,
                        reason: "listed in the manifest but missing".into(),
                    });
                }
                Some(&size) if size != entry.bytes => {
                    return Err(RegistryError::Integrity {
                        path: shown,
                        reason: format!("{size} bytes, the manifest says {}", entry.bytes),
                    });
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = stored.keys().find(|rel| !manifest.files.contains_key(*rel)) {
            return Err(RegistryError::Integrity {
                path: self.shown(&under(&base, extra)),
                reason: "present in the version but not listed in the manifest".into(),
            });
        }
        // On this machine: a copy whose every byte matched the manifest.
        let dir = self.local_dir(kind, version);
        if dir.is_dir() && Self::cached_matches(&dir, &manifest) {
            return Ok((manifest, dir));
        }
        let tmp = self
            .cache
            .join(kind)
            .join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
        let fetched = (|| {
            for (rel, entry) in &manifest.files {
                let path = under(&base, rel);
                let Some(bytes) = self.get_bytes(&path)? else {
                    return Err(RegistryError::Integrity {
                        path: self.shown(&path),
                        reason: "listed in the manifest but missing".into(),
                    });
                };
                let sha = hex::encode(Sha256::digest(&bytes));
                if sha != entry.sha256 || bytes.len() as u64 != entry.bytes {
                    return Err(RegistryError::Integrity {
                        path: self.shown(&path),
                        reason: format!(
                            "sha256 {sha} ({} bytes), the manifest says {} ({} bytes)",
                            bytes.len(),
                            entry.sha256,
                            entry.bytes
                        ),
                    });
                }
                let to = tmp.join(rel);
                if let Some(parent) = to.parent() {
                    fs::create_dir_all(parent).map_err(Self::io(parent))?;
                }
                fs::write(&to, &bytes).map_err(Self::io(&to))?;
            }
            fs::create_dir_all(&tmp).map_err(Self::io(&tmp))?;
            let manifest_json =
                serde_json::to_vec_pretty(&manifest).map_err(|e| corrupt(e.to_string()))?;
            fs::write(tmp.join(MANIFEST_FILE), manifest_json).map_err(Self::io(&tmp))?;
            if dir.exists() {
                // A stale or partial copy from before: replaced by the checked one.
                fs::remove_dir_all(&dir).map_err(Self::io(&dir))?;
            }
            fs::rename(&tmp, &dir).map_err(Self::io(&dir))
        })();
        if fetched.is_err() {
            let _ = fs::remove_dir_all(&tmp);
            // Another thread may have put a good copy in place meanwhile.
            if dir.is_dir() && Self::cached_matches(&dir, &manifest) {
                return Ok((manifest, dir));
            }
        }
        fetched.map(|()| (manifest, dir))
    }

    fn publish(
        &self,
        kind: &str,
        dir: &Path,
        mut manifest: Manifest,
    ) -> Result<Published, RegistryError> {
        validate_kind(kind)?;
        if manifest.kind.is_empty() {
            manifest.kind = kind.to_owned();
        } else if manifest.kind != kind {
            return Err(RegistryError::Corrupt {
                path: dir.join(MANIFEST_FILE),
                reason: format!(
                    "the manifest's kind `{}` does not match the published kind `{kind}`",
                    manifest.kind
                ),
            });
        }
        let files = files_to_publish(dir)?;
        manifest.format_version = MANIFEST_FORMAT_VERSION;
        manifest.created = now_timestamp();
        manifest.files = files
            .iter()
            .map(|(rel, _, entry)| (rel.clone(), entry.clone()))
            .collect();

        // Claim a number nobody has used: the create-only write fails for all but one.
        let mut candidate = self.next_version(kind)?;
        let mut claimed = false;
        for _ in 0..MAX_PUBLISH_ATTEMPTS {
            let claim = under(&self.version_path(kind, candidate), CLAIM_FILE);
            if self.put_create(&claim, now_timestamp().into_bytes())? {
                claimed = true;
                break;
            }
            candidate += 1;
        }
        if !claimed {
            return Err(RegistryError::Race(format!(
                "gave up publishing model kind `{kind}` after {MAX_PUBLISH_ATTEMPTS} attempts: other publishers kept taking the next version number in {}; retry the publish",
                self.url
            )));
        }
        manifest.version = candidate;
        let base = self.version_path(kind, candidate);
        for (rel, path, _) in &files {
            let bytes = fs::read(path).map_err(Self::io(path))?;
            self.runtime
                .block_on(self.store.put(&under(&base, rel), PutPayload::from(bytes)))
                .map_err(|e| self.store_error(e))?;
        }
        let body = serde_json::to_vec_pretty(&manifest).map_err(|e| RegistryError::Corrupt {
            path: self.shown(&under(&base, MANIFEST_FILE)),
            reason: format!("cannot encode the manifest: {e}"),
        })?;
        // Last: until it exists, the version does not.
        if !self.put_create(&under(&base, MANIFEST_FILE), body)? {
            return Err(RegistryError::Race(format!(
                "version {candidate} of `{kind}` got a manifest from another writer in {}; publish again",
                self.url
            )));
        }
        let (_, local) = self.verified(kind, candidate)?;
        Ok(Published {
            version: candidate,
            dir: local,
        })
    }

    fn activate(
        &self,
        kind: &str,
        version: u64,
        actor: &str,
        reason: &str,
    ) -> Result<Option<u64>, RegistryError> {
        self.verified(kind, version)?;
        for _ in 0..MAX_ACTIVATE_ATTEMPTS {
            let seen = self.observe_active(kind)?;
            let previous = seen.doc.as_ref().map(|d| d.version);
            let mut history = seen
                .doc
                .as_ref()
                .map(|d| d.history.clone())
                .unwrap_or_default();
            history.push(Activation {
                version,
                previous,
                time: now_timestamp(),
                actor: actor.to_owned(),
                reason: reason.to_owned(),
            });
            if self.compare_and_swap_active(kind, &seen, &ActiveDoc { version, history })? {
                return Ok(previous);
            }
        }
        Err(RegistryError::Race(format!(
            "gave up activating version {version} of `{kind}` after {MAX_ACTIVATE_ATTEMPTS} attempts: other activations kept changing {}/{kind}/{ACTIVE_OBJECT}; retry",
            self.url
        )))
    }

    fn history(&self, kind: &str) -> Result<Vec<Activation>, RegistryError> {
        Ok(self
            .observe_active(kind)?
            .doc
            .map(|d| d.history)
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;

    use super::*;
    use crate::conformance;

    fn in_memory(cache: &Path) -> ObjectRegistry {
        ObjectRegistry::with_store(
            Arc::new(InMemory::new()),
            ObjectPath::from("models"),
            "memory://models",
            cache,
        )
        .expect("registry")
    }

    #[test]
    fn the_conformance_suite_passes_in_memory() {
        let tmp = tempfile::tempdir().expect("tmp");
        let registry = Arc::new(in_memory(&tmp.path().join("cache")));
        conformance::versions_publish_activate_and_roll_back(&registry, tmp.path());
        conformance::bad_versions_are_refused(&registry, tmp.path());
        conformance::concurrent_publishers_get_distinct_versions(&registry, tmp.path());
        conformance::one_activator_wins_each_round(&registry, 8, 10);
    }

    #[test]
    fn locations_name_a_registry_or_are_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let cache = tmp.path().join("cache");
        let dir = tmp.path().join("models");
        let plain = open(dir.to_str().expect("utf-8"), &cache).expect("a directory");
        assert_eq!(plain.location(), dir.display().to_string());
        let file = open(&format!("file://{}", dir.display()), &cache).expect("file://");
        assert_eq!(file.location(), dir.display().to_string());
        for bad in ["ftp://host/models", "s4://bucket/x", "s3://"] {
            let e = open(bad, &cache).expect_err(bad).to_string();
            assert!(e.contains(bad), "{e}");
        }
        let unknown = open("ftp://host/models", &cache)
            .expect_err("ftp")
            .to_string();
        assert!(unknown.contains("unknown scheme `ftp://`"), "{unknown}");
    }
}
