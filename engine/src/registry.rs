//! The filesystem model registry: the trainer publishes versions into it, the server
//! loads the active version from it and watches it for changes.
//!
//! Layout (as Triton does it):
//!
//! ```text
//! <root>/<kind>/<version>/manifest.json + model files   (version: positive integer, never reused)
//! <root>/<kind>/ACTIVE                                  (the active version number + newline,
//!                                                        replaced atomically by write-temp-then-rename)
//! <root>/<kind>/history.jsonl                           (append-only, one JSON line per activation)
//! <root>/<kind>/.tmp-<uuid>/                            (in-progress publishes; ignored by readers)
//! ```
//!
//! Publishing writes every file into a private `.tmp-<uuid>` directory, fsyncs it and then
//! renames the complete directory to its version number, so a reader never sees half a model.
//! Two concurrent publishers never share a version: a rename onto a directory that already
//! exists fails, and the loser retries with the next number.
//!
//! Activation (`activate`, `rollback`) is expected to be done by one operator or trainer at a
//! time; the `ACTIVE` pointer itself is always replaced atomically, so a reader always sees
//! either the old or the new version.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;
/// Name of the manifest inside a version directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Name of the pointer file holding the active version of a kind.
pub const ACTIVE_FILE: &str = "ACTIVE";
/// Name of the append-only activation log of a kind.
pub const HISTORY_FILE: &str = "history.jsonl";
/// Prefix of in-progress publish directories (and of temporary `ACTIVE` files).
pub const TEMP_PREFIX: &str = ".tmp-";

/// How many version numbers a publisher tries before giving up with [`RegistryError::Race`].
const MAX_PUBLISH_ATTEMPTS: usize = 64;
/// Buffer size for streaming hashes.
const HASH_BUFFER: usize = 64 * 1024;
/// The longest `ACTIVE` file we are willing to read.
const MAX_ACTIVE_BYTES: u64 = 64;

/// Everything that can go wrong with the registry. Every message names the path or the kind
/// and says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A filesystem operation failed.
    #[error(
        "model registry I/O error at {}: {source}; check that the registry directory exists and is writable by this process",
        .path.display()
    )]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A kind, version or spec that does not exist; the message lists what does.
    #[error("{0}")]
    NotFound(String),
    /// A registry file that cannot be read as what it should be.
    #[error("corrupt model registry file {}: {reason}; fix or remove it", .path.display())]
    Corrupt {
        /// The file that is corrupt.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A published version whose files no longer match its manifest.
    #[error(
        "integrity check failed for {}: {reason}; the version was modified after it was published: restore it or publish a new version",
        .path.display()
    )]
    Integrity {
        /// The file (or version directory) that does not match.
        path: PathBuf,
        /// What does not match.
        reason: String,
    },
    /// A kind name that is not a lower-case identifier.
    #[error(
        "invalid model kind `{0}`: expected a lower-case identifier matching [a-z][a-z0-9_-]{{0,31}}, e.g. `churn`, `segments` or `ltv`"
    )]
    InvalidKind(String),
    /// Publishing lost too many races for a version number.
    #[error("{0}")]
    Race(String),
    /// A registry location that names no registry this build can open (an unknown URL
    /// scheme, a bucket-less URL).
    #[error("{0}")]
    Location(String),
    /// The object store holding the registry failed or could not be reached.
    #[error(
        "the model registry at {location} failed: {reason}; check the endpoint, the credentials (AWS_*, GOOGLE_*, AZURE_* variables) and that the bucket exists"
    )]
    Store {
        /// The registry's URL.
        location: String,
        /// What the store said.
        reason: String,
    },
}

fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> RegistryError {
    let path = path.into();
    move |source| RegistryError::Io { path, source }
}

/// Size and hash of one model file, as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Lower-case hex sha256 of the file's bytes.
    pub sha256: String,
    /// The file's size in bytes.
    pub bytes: u64,
}

/// `manifest.json` of a published version.
///
/// The caller fills everything but `version`, `created` and `files`, which
/// [`Staged::publish`] sets (it also sets `format_version` to [`MANIFEST_FORMAT_VERSION`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT_VERSION`] for manifests written by this build.
    pub format_version: u32,
    /// The model kind, e.g. `churn`; equals the kind directory.
    pub kind: String,
    /// The version number; equals the version directory.
    pub version: u64,
    /// When the version was published (RFC 3339, UTC).
    pub created: String,
    /// The algorithm, e.g. `logistic_regression`.
    pub algorithm: String,
    /// Training window, cutoffs, horizon, row counts: free-form.
    #[serde(default)]
    pub training: serde_json::Value,
    /// Fingerprint of the data the model was trained on.
    #[serde(default)]
    pub data_fingerprint: String,
    /// Feature schema with normalisation and vocabularies.
    #[serde(default)]
    pub feature_schema: serde_json::Value,
    /// Validation metrics.
    #[serde(default)]
    pub metrics: serde_json::Value,
    /// Every model file in the version directory (relative path with `/`), except the manifest.
    #[serde(default)]
    pub files: BTreeMap<String, FileEntry>,
    /// Model-specific metadata, e.g. report paths.
    #[serde(default)]
    pub extra: serde_json::Value,
}

impl Manifest {
    /// A manifest for `kind` trained with `algorithm`, with empty free-form fields; publish
    /// fills in `version`, `created` and `files`.
    pub fn new(kind: impl Into<String>, algorithm: impl Into<String>) -> Self {
        Self {
            format_version: MANIFEST_FORMAT_VERSION,
            kind: kind.into(),
            version: 0,
            created: String::new(),
            algorithm: algorithm.into(),
            training: serde_json::Value::Null,
            data_fingerprint: String::new(),
            feature_schema: serde_json::Value::Null,
            metrics: serde_json::Value::Null,
            files: BTreeMap::new(),
            extra: serde_json::Value::Null,
        }
    }
}

/// One line of `history.jsonl`: an activation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activation {
    /// The version that became active.
    pub version: u64,
    /// The version that was active before, if any.
    pub previous: Option<u64>,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// Who did it (user, `trainer`, ...).
    pub actor: String,
    /// Why: `activate`, `rollback`, `train --activate`, ...
    pub reason: String,
}

/// A published version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The version number it got.
    pub version: u64,
    /// Its directory, `<root>/<kind>/<version>`.
    pub dir: PathBuf,
}

/// Checks that `kind` is a lower-case identifier: `[a-z][a-z0-9_-]{0,31}`.
pub fn validate_kind(kind: &str) -> Result<(), RegistryError> {
    let bytes = kind.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 32
        && bytes[0].is_ascii_lowercase()
        && bytes[1..]
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(RegistryError::InvalidKind(kind.to_string()))
    }
}

/// The lower-case hex sha256 and the size of a file, read in 64 KiB chunks.
pub fn sha256_file(path: impl AsRef<Path>) -> Result<(String, u64), RegistryError> {
    let path = path.as_ref();
    let mut file = File::open(path).map_err(io_err(path))?;
    hash_reader(&mut file, path)
}

/// The files a publish takes from a directory (recursively, every regular file except a
/// top-level `manifest.json`, which publishing writes): relative path with `/`, absolute
/// path, size and sha256. A symbolic link or special file is refused.
pub fn files_to_publish(dir: &Path) -> Result<Vec<(String, PathBuf, FileEntry)>, RegistryError> {
    let mut out = Vec::new();
    for (rel, path) in walk_files(dir)?.files {
        if rel == MANIFEST_FILE {
            continue;
        }
        let (sha256, bytes) = sha256_file(&path)?;
        out.push((rel, path, FileEntry { sha256, bytes }));
    }
    Ok(out)
}

/// Checks that a manifest's file name is a plain relative path (no `..`, no absolute path,
/// no empty component): what a registry may write below a version.
pub fn is_safe_relative(rel: &str) -> bool {
    safe_relative(rel)
}

/// A canonical positive version number from a name (`"7"`, not `"07"` or `"0"`).
pub fn version_of_name(name: &str) -> Option<u64> {
    parse_version_name(name)
}

/// The current time as the manifests and history write it (RFC 3339, UTC).
pub fn now_timestamp() -> String {
    now_rfc3339()
}

fn hash_reader(reader: &mut impl Read, path: &Path) -> Result<(String, u64), RegistryError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; HASH_BUFFER];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(path)(e)),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// Fsyncs a directory so that renames and creations in it are durable.
fn sync_dir(path: &Path) -> Result<(), RegistryError> {
    #[cfg(unix)]
    {
        File::open(path)
            .and_then(|d| d.sync_all())
            .map_err(io_err(path))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A canonical positive version number from a directory name (`"7"`, not `"07"` or `"0"`).
fn parse_version_name(name: &str) -> Option<u64> {
    let v: u64 = name.parse().ok()?;
    (v > 0 && v.to_string() == name).then_some(v)
}

/// Versions as a message lists them: "1, 2, 5", or "none".
pub fn join_versions(versions: &[u64]) -> String {
    if versions.is_empty() {
        "none".to_string()
    } else {
        versions
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What a walk of a version (or staged) directory found.
struct Walk {
    /// Regular files: relative path with `/` -> absolute path.
    files: BTreeMap<String, PathBuf>,
}

/// Lists the regular files under `dir` recursively, without following symbolic links; a
/// symbolic link or special file is an integrity error, as is a name that is not UTF-8.
fn walk_files(dir: &Path) -> Result<Walk, RegistryError> {
    let mut walk = Walk {
        files: BTreeMap::new(),
    };
    walk_into(dir, "", &mut walk)?;
    Ok(walk)
}

fn walk_into(dir: &Path, prefix: &str, walk: &mut Walk) -> Result<(), RegistryError> {
    let entries = fs::read_dir(dir).map_err(io_err(dir))?;
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(RegistryError::Integrity {
                path,
                reason: "file name is not valid UTF-8; rename it".to_string(),
            });
        };
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let file_type = entry.file_type().map_err(io_err(&path))?;
        if file_type.is_dir() {
            walk_into(&path, &rel, walk)?;
        } else if file_type.is_file() {
            walk.files.insert(rel, path);
        } else {
            return Err(RegistryError::Integrity {
                path,
                reason: "not a regular file or directory (symbolic links and special files are not allowed in a model version; copy the file instead)".to_string(),
            });
        }
    }
    Ok(())
}

/// Checks that a file name from a manifest is a plain relative path inside the version
/// directory (no `..`, no absolute path, no empty component).
fn safe_relative(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.contains('\\')
        && rel.split('/').all(|c| !c.is_empty())
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// What serving and training need of a registry, whatever holds it: list and read
/// versions, fetch one verified against its manifest, publish a new one, move the active
/// pointer, read the activation history. [`Registry`] keeps them in a directory;
/// `vitals-object-registry` on an object store (S3, GCS, Azure).
pub trait ModelRegistry: std::fmt::Debug + Send + Sync {
    /// Where the versions are, for logs and messages: a directory or a URL.
    fn location(&self) -> String;
    /// The kinds with at least one version, sorted.
    fn kinds(&self) -> Result<Vec<String>, RegistryError>;
    /// The published versions of `kind`, ascending.
    fn versions(&self, kind: &str) -> Result<Vec<u64>, RegistryError>;
    /// The active version of `kind`, if one was ever activated.
    fn active(&self, kind: &str) -> Result<Option<u64>, RegistryError>;
    /// One version's manifest, as stored (not checked against its files).
    fn manifest(&self, kind: &str, version: u64) -> Result<Manifest, RegistryError>;
    /// One version checked against its manifest (every file present with its size and
    /// sha256, nothing else), and a local directory holding its files for the loaders.
    fn verified(&self, kind: &str, version: u64) -> Result<(Manifest, PathBuf), RegistryError>;
    /// Publishes the files in `dir` (see [`files_to_publish`]) as the next version of
    /// `kind`, never reusing a number, the manifest written last so that no reader sees
    /// half a version. The manifest's `version`, `created`, `files` and `format_version`
    /// are set here. `dir` stays the caller's.
    fn publish(
        &self,
        kind: &str,
        dir: &Path,
        manifest: Manifest,
    ) -> Result<Published, RegistryError>;
    /// Makes a verified `version` the active one; returns the one active before.
    fn activate(
        &self,
        kind: &str,
        version: u64,
        actor: &str,
        reason: &str,
    ) -> Result<Option<u64>, RegistryError>;
    /// The activations of `kind`, oldest first.
    fn history(&self, kind: &str) -> Result<Vec<Activation>, RegistryError>;

    /// Removes what publishes killed midway left behind, untouched for `older_than`;
    /// returns how many. Readers ignore such leftovers either way.
    fn sweep_abandoned(&self, _older_than: Duration) -> Result<usize, RegistryError> {
        Ok(0)
    }

    /// Re-activates the version that was active before the current one, according to the
    /// history; returns it. Fails if nothing is active or the history has no earlier version.
    fn rollback(&self, kind: &str, actor: &str) -> Result<u64, RegistryError> {
        let Some(current) = self.active(kind)? else {
            return Err(RegistryError::NotFound(format!(
                "model kind `{kind}` has no active version, so there is nothing to roll back"
            )));
        };
        let target = self
            .history(kind)?
            .iter()
            .rev()
            .find(|a| a.version == current && a.previous.is_some_and(|p| p != current))
            .and_then(|a| a.previous);
        let Some(target) = target else {
            return Err(RegistryError::NotFound(format!(
                "cannot roll back model kind `{kind}`: the history in {} records no version that was active before version {current}; activate a version explicitly",
                self.location()
            )));
        };
        self.activate(kind, target, actor, "rollback")?;
        Ok(target)
    }

    /// Resolves a version spec: a number, `active` or `latest`.
    fn resolve(&self, kind: &str, spec: &str) -> Result<u64, RegistryError> {
        validate_kind(kind)?;
        let versions = self.versions(kind)?;
        let published = join_versions(&versions);
        let location = self.location();
        match spec.trim() {
            "active" => match self.active(kind)? {
                Some(v) if versions.contains(&v) => Ok(v),
                Some(v) => Err(RegistryError::NotFound(format!(
                    "the active version {v} of model kind `{kind}` does not exist in {location} (published versions: {published}); activate an existing version"
                ))),
                None => Err(RegistryError::NotFound(format!(
                    "model kind `{kind}` has no active version (published versions: {published}); activate one, e.g. with `train --activate`"
                ))),
            },
            "latest" => versions.last().copied().ok_or_else(|| {
                RegistryError::NotFound(format!(
                    "no versions of model kind `{kind}` have been published in {location}; train one first"
                ))
            }),
            spec => match spec.parse::<u64>() {
                Ok(v) if v > 0 && versions.contains(&v) => Ok(v),
                Ok(v) => Err(RegistryError::NotFound(format!(
                    "version {v} of model kind `{kind}` does not exist (published versions: {published})"
                ))),
                Err(_) => Err(RegistryError::NotFound(format!(
                    "`{spec}` is not a model version: expected a positive number, `active` or `latest` (published versions of `{kind}`: {published})"
                ))),
            },
        }
    }
}

impl ModelRegistry for Registry {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn kinds(&self) -> Result<Vec<String>, RegistryError> {
        Registry::kinds(self)
    }

    fn versions(&self, kind: &str) -> Result<Vec<u64>, RegistryError> {
        Registry::versions(self, kind)
    }

    fn active(&self, kind: &str) -> Result<Option<u64>, RegistryError> {
        Registry::active(self, kind)
    }

    fn manifest(&self, kind: &str, version: u64) -> Result<Manifest, RegistryError> {
        Registry::manifest(self, kind, version)
    }

    fn verified(&self, kind: &str, version: u64) -> Result<(Manifest, PathBuf), RegistryError> {
        let manifest = self.verify(kind, version)?;
        Ok((manifest, self.version_dir(kind, version)))
    }

    fn publish(
        &self,
        kind: &str,
        dir: &Path,
        manifest: Manifest,
    ) -> Result<Published, RegistryError> {
        let staged = self.stage(kind)?;
        for (rel, from, _) in files_to_publish(dir)? {
            let to = staged.dir().join(&rel);
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            fs::copy(&from, &to).map_err(io_err(&to))?;
        }
        staged.publish(manifest)
    }

    fn sweep_abandoned(&self, older_than: Duration) -> Result<usize, RegistryError> {
        let mut removed = 0;
        for kind in Registry::kinds(self)? {
            removed += self.sweep_temp(&kind, older_than)?;
        }
        Ok(removed)
    }

    fn activate(
        &self,
        kind: &str,
        version: u64,
        actor: &str,
        reason: &str,
    ) -> Result<Option<u64>, RegistryError> {
        Registry::activate(self, kind, version, actor, reason)
    }

    fn history(&self, kind: &str) -> Result<Vec<Activation>, RegistryError> {
        Registry::history(self, kind)
    }
}

/// The filesystem model registry rooted at one directory.
#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
}

impl Registry {
    /// Opens the registry at `root`, creating the directory if it is missing. Whether it is
    /// writable is found out when publishing.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, RegistryError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(io_err(&root))?;
        Ok(Self { root })
    }

    /// The registry's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/<kind>` (the kind is not validated here).
    fn kind_dir(&self, kind: &str) -> PathBuf {
        self.root.join(kind)
    }

    /// `<root>/<kind>/<version>`.
    pub fn version_dir(&self, kind: &str, version: u64) -> PathBuf {
        self.kind_dir(kind).join(version.to_string())
    }

    /// The kinds that have a directory in the registry, sorted.
    pub fn kinds(&self) -> Result<Vec<String>, RegistryError> {
        let mut kinds = Vec::new();
        let entries = fs::read_dir(&self.root).map_err(io_err(&self.root))?;
        for entry in entries {
            let entry = entry.map_err(io_err(&self.root))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if validate_kind(&name).is_err() {
                continue;
            }
            if entry.file_type().map_err(io_err(entry.path()))?.is_dir() {
                kinds.push(name);
            }
        }
        kinds.sort();
        Ok(kinds)
    }

    /// The published versions of `kind`, sorted; empty if none (or the kind is unknown).
    /// In-progress publishes (`.tmp-*`) and anything not a canonical positive number are
    /// ignored.
    pub fn versions(&self, kind: &str) -> Result<Vec<u64>, RegistryError> {
        validate_kind(kind)?;
        let dir = self.kind_dir(kind);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        let mut versions = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&dir))?;
            let Some(version) = entry.file_name().to_str().and_then(parse_version_name) else {
                continue;
            };
            if entry.file_type().map_err(io_err(entry.path()))?.is_dir() {
                versions.push(version);
            }
        }
        versions.sort_unstable();
        Ok(versions)
    }

    /// The highest published version of `kind`, if any.
    pub fn latest(&self, kind: &str) -> Result<Option<u64>, RegistryError> {
        Ok(self.versions(kind)?.last().copied())
    }

    /// The active version of `kind` from its `ACTIVE` file; `None` if there is none yet.
    pub fn active(&self, kind: &str) -> Result<Option<u64>, RegistryError> {
        validate_kind(kind)?;
        let path = self.kind_dir(kind).join(ACTIVE_FILE);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let mut raw = Vec::new();
        file.take(MAX_ACTIVE_BYTES + 1)
            .read_to_end(&mut raw)
            .map_err(io_err(&path))?;
        let corrupt = |reason: String| RegistryError::Corrupt {
            path: path.clone(),
            reason,
        };
        if raw.len() as u64 > MAX_ACTIVE_BYTES {
            return Err(corrupt(format!(
                "longer than {MAX_ACTIVE_BYTES} bytes; expected a version number and a newline"
            )));
        }
        let text = std::str::from_utf8(&raw)
            .map_err(|_| corrupt("not UTF-8; expected a version number and a newline".into()))?;
        let trimmed = text.trim();
        match parse_version_name(trimmed) {
            Some(v) => Ok(Some(v)),
            None => Err(corrupt(format!(
                "expected a positive version number and a newline, found {trimmed:?}; re-activate a version to rewrite it"
            ))),
        }
    }

    /// A `NotFound` for a version that has no directory, listing the versions that exist.
    fn missing_version(&self, kind: &str, version: u64) -> RegistryError {
        let published = self
            .versions(kind)
            .map(|v| join_versions(&v))
            .unwrap_or_else(|_| "unknown".to_string());
        RegistryError::NotFound(format!(
            "version {version} of model kind `{kind}` does not exist in {} (published versions: {published})",
            self.kind_dir(kind).display()
        ))
    }

    /// Reads the manifest of a published version (without checking the files).
    pub fn manifest(&self, kind: &str, version: u64) -> Result<Manifest, RegistryError> {
        validate_kind(kind)?;
        let dir = self.version_dir(kind, version);
        if version == 0 || !dir.is_dir() {
            return Err(self.missing_version(kind, version));
        }
        let path = dir.join(MANIFEST_FILE);
        let raw = match fs::read(&path) {
            Ok(raw) => raw,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RegistryError::Corrupt {
                    path,
                    reason: "the version directory has no manifest.json".to_string(),
                });
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        serde_json::from_slice(&raw).map_err(|e| RegistryError::Corrupt {
            path,
            reason: format!("not a valid manifest: {e}"),
        })
    }

    /// Checks a published version: its manifest names this kind and version, every listed file
    /// exists with the recorded size and sha256, and no unlisted file is present. This is what
    /// the server calls before swapping a version in.
    pub fn verify(&self, kind: &str, version: u64) -> Result<Manifest, RegistryError> {
        let manifest = self.manifest(kind, version)?;
        let dir = self.version_dir(kind, version);
        let manifest_path = dir.join(MANIFEST_FILE);
        if manifest.format_version != MANIFEST_FORMAT_VERSION {
            return Err(RegistryError::Corrupt {
                path: manifest_path,
                reason: format!(
                    "unsupported format_version {} (this build reads {MANIFEST_FORMAT_VERSION}); upgrade Vitals or republish the model",
                    manifest.format_version
                ),
            });
        }
        if manifest.kind != kind {
            return Err(RegistryError::Integrity {
                path: manifest_path,
                reason: format!(
                    "the manifest says kind `{}` but the version is filed under `{kind}`",
                    manifest.kind
                ),
            });
        }
        if manifest.version != version {
            return Err(RegistryError::Integrity {
                path: manifest_path,
                reason: format!(
                    "the manifest says version {} but the directory is version {version}",
                    manifest.version
                ),
            });
        }
        let walk = walk_files(&dir)?;
        for (rel, entry) in &manifest.files {
            if !safe_relative(rel) || rel == MANIFEST_FILE {
                return Err(RegistryError::Integrity {
                    path: manifest_path,
                    reason: format!("the manifest lists an invalid file name {rel:?}"),
                });
            }
            let Some(path) = walk.files.get(rel) else {
                return Err(RegistryError::Integrity {
                    path: dir.join(rel),
                    reason: "listed in the manifest but missing".to_string(),
                });
            };
            let meta = fs::metadata(path).map_err(io_err(path))?;
            if meta.len() != entry.bytes {
                return Err(RegistryError::Integrity {
                    path: path.clone(),
                    reason: format!(
                        "size is {} bytes, the manifest says {}",
                        meta.len(),
                        entry.bytes
                    ),
                });
            }
            let (sha, bytes) = sha256_file(path)?;
            if bytes != entry.bytes || !sha.eq_ignore_ascii_case(&entry.sha256) {
                return Err(RegistryError::Integrity {
                    path: path.clone(),
                    reason: format!("sha256 is {sha}, the manifest says {}", entry.sha256),
                });
            }
        }
        for (rel, path) in &walk.files {
            if rel != MANIFEST_FILE && !manifest.files.contains_key(rel) {
                return Err(RegistryError::Integrity {
                    path: path.clone(),
                    reason: "present in the version directory but not listed in the manifest"
                        .to_string(),
                });
            }
        }
        Ok(manifest)
    }

    /// Starts a publish: creates `<root>/<kind>/.tmp-<uuid>/` for the caller to write its model
    /// files into.
    pub fn stage(&self, kind: &str) -> Result<Staged, RegistryError> {
        validate_kind(kind)?;
        let kind_dir = self.kind_dir(kind);
        fs::create_dir_all(&kind_dir).map_err(io_err(&kind_dir))?;
        let dir = kind_dir.join(format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
        fs::create_dir(&dir).map_err(io_err(&dir))?;
        Ok(Staged {
            registry: self.clone(),
            kind: kind.to_string(),
            dir,
            done: false,
        })
    }

    /// The next version number that has never been used: one more than the highest of the
    /// version directories, and (read leniently) the history and `ACTIVE`, so that a deleted
    /// version's number is not handed out again.
    fn next_version(&self, kind: &str) -> Result<u64, RegistryError> {
        let mut highest = self.latest(kind)?.unwrap_or(0);
        if let Ok(Some(active)) = self.active(kind) {
            highest = highest.max(active);
        }
        if let Ok(raw) = fs::read_to_string(self.kind_dir(kind).join(HISTORY_FILE)) {
            for line in raw.lines() {
                if let Ok(a) = serde_json::from_str::<Activation>(line) {
                    highest = highest.max(a.version).max(a.previous.unwrap_or(0));
                }
            }
        }
        highest.checked_add(1).ok_or_else(|| {
            RegistryError::Race(format!(
                "model kind `{kind}` has run out of version numbers"
            ))
        })
    }

    /// Makes `version` the active version of `kind`, after verifying it; returns the version
    /// that was active before. A version that fails [`Registry::verify`] is refused and
    /// `ACTIVE` is left unchanged. An unreadable `ACTIVE` file is overwritten (the history
    /// then records no previous version).
    pub fn activate(
        &self,
        kind: &str,
        version: u64,
        actor: &str,
        reason: &str,
    ) -> Result<Option<u64>, RegistryError> {
        self.verify(kind, version)?;
        let previous = match self.active(kind) {
            Ok(previous) => previous,
            Err(RegistryError::Corrupt { .. }) => None,
            Err(e) => return Err(e),
        };
        let kind_dir = self.kind_dir(kind);
        let active_path = kind_dir.join(ACTIVE_FILE);
        let tmp = kind_dir.join(format!(
            "{ACTIVE_FILE}{TEMP_PREFIX}{}",
            uuid::Uuid::new_v4().simple()
        ));
        if let Err(e) = write_pointer(&tmp, &active_path, version) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(&kind_dir)?;

        let activation = Activation {
            version,
            previous,
            time: now_rfc3339(),
            actor: actor.to_string(),
            reason: reason.to_string(),
        };
        let history = kind_dir.join(HISTORY_FILE);
        let mut line = serde_json::to_string(&activation).map_err(|e| RegistryError::Corrupt {
            path: history.clone(),
            reason: format!("cannot encode the history line: {e}"),
        })?;
        line.push('\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&history)
            .map_err(io_err(&history))?;
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io_err(&history))?;
        Ok(previous)
    }

    /// The activations of `kind`, oldest first; empty if there have been none.
    pub fn history(&self, kind: &str) -> Result<Vec<Activation>, RegistryError> {
        validate_kind(kind)?;
        let path = self.kind_dir(kind).join(HISTORY_FILE);
        let raw = match fs::read_to_string(&path) {
            Ok(raw) => raw,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(RegistryError::Corrupt {
                    path,
                    reason: "not UTF-8 text".to_string(),
                });
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let mut out = Vec::new();
        for (i, line) in raw.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let activation = serde_json::from_str(line).map_err(|e| RegistryError::Corrupt {
                path: path.clone(),
                reason: format!("line {}: {e}", i + 1),
            })?;
            out.push(activation);
        }
        Ok(out)
    }

    /// Removes in-progress publishes (`.tmp-*` directories) and temporary `ACTIVE` files of
    /// `kind` that have not been modified for `older_than`, e.g. left by a killed trainer;
    /// returns how many were removed. With `Duration::ZERO` it also removes publishes in
    /// progress right now, so only do that when no trainer is running.
    pub fn sweep_temp(&self, kind: &str, older_than: Duration) -> Result<usize, RegistryError> {
        validate_kind(kind)?;
        let dir = self.kind_dir(kind);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        let active_tmp = format!("{ACTIVE_FILE}{TEMP_PREFIX}");
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(io_err(&dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = entry.path();
            let file_type = entry.file_type().map_err(io_err(&path))?;
            let is_stage = name.starts_with(TEMP_PREFIX) && file_type.is_dir();
            let is_active_tmp = name.starts_with(&active_tmp) && file_type.is_file();
            if !is_stage && !is_active_tmp {
                continue;
            }
            let newest = newest_mtime(&path);
            let age = newest
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or(Duration::ZERO);
            if age < older_than {
                continue;
            }
            let result = if is_stage {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match result {
                Ok(()) => removed += 1,
                // Removed by someone else meanwhile (a finishing publisher or another sweep).
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        Ok(removed)
    }
}

/// Writes `version` and a newline to `tmp`, fsyncs it and renames it over `target`.
fn write_pointer(tmp: &Path, target: &Path, version: u64) -> Result<(), RegistryError> {
    let mut file = File::create(tmp).map_err(io_err(tmp))?;
    file.write_all(format!("{version}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_err(tmp))?;
    fs::rename(tmp, target).map_err(io_err(target))
}

/// The most recent modification time of `path` and, for a directory, of anything in it, so a
/// publish that is still writing a large file is not taken for an abandoned one.
fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let meta = fs::symlink_metadata(path).ok()?;
    let mut newest = meta.modified().ok();
    if meta.is_dir()
        && let Ok(entries) = fs::read_dir(path)
    {
        for entry in entries.flatten() {
            if let Some(t) = newest_mtime(&entry.path()) {
                newest = Some(newest.map_or(t, |n| n.max(t)));
            }
        }
    }
    newest
}

/// An in-progress publish: a private directory under `<root>/<kind>/.tmp-<uuid>/` where the
/// caller writes its model files before [`Staged::publish`]. Dropping it without publishing
/// removes the directory.
#[derive(Debug)]
pub struct Staged {
    registry: Registry,
    kind: String,
    dir: PathBuf,
    done: bool,
}

impl Staged {
    /// The directory to write model files into (subdirectories are allowed).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The kind being published.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Publishes the staged files as the next version of the kind: hashes every file, writes
    /// `manifest.json` (setting `version`, `created`, `files` and `format_version`), fsyncs
    /// everything and renames the directory into place. The manifest's `kind` must be the
    /// staged kind (or empty, and then it is filled in); otherwise it is refused as
    /// [`RegistryError::Corrupt`].
    pub fn publish(mut self, mut manifest: Manifest) -> Result<Published, RegistryError> {
        if manifest.kind.is_empty() {
            manifest.kind = self.kind.clone();
        } else if manifest.kind != self.kind {
            return Err(RegistryError::Corrupt {
                path: self.dir.join(MANIFEST_FILE),
                reason: format!(
                    "the manifest's kind `{}` does not match the staged kind `{}`; set it to `{}` or stage under `{}`",
                    manifest.kind, self.kind, self.kind, manifest.kind
                ),
            });
        }
        manifest.format_version = MANIFEST_FORMAT_VERSION;
        manifest.created = now_rfc3339();
        manifest.files = self.hash_and_sync()?;

        let manifest_path = self.dir.join(MANIFEST_FILE);
        let kind_dir = self.registry.kind_dir(&self.kind);
        let mut candidate = self.registry.next_version(&self.kind)?;
        for _ in 0..MAX_PUBLISH_ATTEMPTS {
            manifest.version = candidate;
            self.write_manifest(&manifest, &manifest_path)?;
            let target = self.registry.version_dir(&self.kind, candidate);
            match fs::rename(&self.dir, &target) {
                Ok(()) => {
                    self.done = true;
                    sync_dir(&kind_dir)?;
                    return Ok(Published {
                        version: candidate,
                        dir: target,
                    });
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::AlreadyExists | io::ErrorKind::DirectoryNotEmpty
                    ) =>
                {
                    // Another publisher took this number; try the next free one.
                    let next = self.registry.next_version(&self.kind)?;
                    candidate = next.max(candidate.saturating_add(1));
                }
                Err(e) => return Err(io_err(&target)(e)),
            }
        }
        Err(RegistryError::Race(format!(
            "gave up publishing model kind `{}` after {MAX_PUBLISH_ATTEMPTS} attempts: other publishers kept taking the next version number in {}; retry the publish",
            self.kind,
            kind_dir.display()
        )))
    }

    /// Hashes and fsyncs every staged file (except a top-level manifest.json, which publish
    /// rewrites) and fsyncs the directories.
    fn hash_and_sync(&self) -> Result<BTreeMap<String, FileEntry>, RegistryError> {
        let walk = walk_files(&self.dir)?;
        let mut files = BTreeMap::new();
        let mut dirs = std::collections::BTreeSet::new();
        for (rel, path) in walk.files {
            if rel == MANIFEST_FILE {
                continue;
            }
            let mut file = File::open(&path).map_err(io_err(&path))?;
            let (sha256, bytes) = hash_reader(&mut file, &path)?;
            file.sync_all().map_err(io_err(&path))?;
            if let Some(parent) = path.parent() {
                dirs.insert(parent.to_path_buf());
            }
            files.insert(rel, FileEntry { sha256, bytes });
        }
        for dir in dirs {
            sync_dir(&dir)?;
        }
        Ok(files)
    }

    fn write_manifest(&self, manifest: &Manifest, path: &Path) -> Result<(), RegistryError> {
        let mut json = serde_json::to_vec_pretty(manifest).map_err(|e| RegistryError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("cannot encode the manifest: {e}"),
        })?;
        json.push(b'\n');
        let mut file = File::create(path).map_err(io_err(path))?;
        file.write_all(&json)
            .and_then(|()| file.sync_all())
            .map_err(io_err(path))?;
        sync_dir(&self.dir)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    fn registry() -> (tempfile::TempDir, Registry) {
        let tmp = tempfile::tempdir().unwrap();
        let reg = Registry::open(tmp.path().join("registry")).unwrap();
        (tmp, reg)
    }

    fn manifest(kind: &str) -> Manifest {
        let mut m = Manifest::new(kind, "logistic_regression");
        m.training = serde_json::json!({"window": ["2024-01-01", "2024-12-31"], "rows": 1200});
        m.data_fingerprint = "abc123".into();
        m.feature_schema = serde_json::json!({"features": ["recency", "frequency"]});
        m.metrics = serde_json::json!({"auc": 0.81});
        m.extra = serde_json::json!({"report": "report.html"});
        m
    }

    fn publish(reg: &Registry, kind: &str, weights: &[u8]) -> Published {
        let staged = reg.stage(kind).unwrap();
        fs::write(staged.dir().join("model.safetensors"), weights).unwrap();
        fs::create_dir(staged.dir().join("reports")).unwrap();
        fs::write(staged.dir().join("reports/summary.txt"), b"auc 0.81").unwrap();
        staged.publish(manifest(kind)).unwrap()
    }

    /// What the server sees through the trait: listing, a verified version with its local
    /// files, activation and history; a tampered file is refused.
    #[test]
    fn the_filesystem_registry_serves_through_the_model_registry_trait() {
        let (_tmp, reg) = registry();
        publish(&reg, "churn", b"weights one");
        let served: &dyn ModelRegistry = &reg;
        assert_eq!(served.kinds().unwrap(), vec!["churn".to_string()]);
        assert_eq!(served.versions("churn").unwrap(), vec![1]);
        let (m, dir) = served.verified("churn", 1).unwrap();
        assert_eq!((m.kind.as_str(), m.version), ("churn", 1));
        assert_eq!(
            fs::read(dir.join("model.safetensors")).unwrap(),
            b"weights one"
        );
        assert_eq!(served.activate("churn", 1, "ops", "test").unwrap(), None);
        assert_eq!(served.active("churn").unwrap(), Some(1));
        assert_eq!(served.history("churn").unwrap().len(), 1);
        fs::write(dir.join("model.safetensors"), b"tampered!!!").unwrap();
        assert!(
            served.verified("churn", 1).is_err(),
            "a changed file is refused"
        );
        assert!(served.location().ends_with("registry"));
    }

    #[test]
    fn publish_two_versions_hashes_files() {
        let (_tmp, reg) = registry();
        let p1 = publish(&reg, "churn", b"weights one");
        let p2 = publish(&reg, "churn", b"weights two");
        assert_eq!((p1.version, p2.version), (1, 2));
        assert_eq!(p2.dir, reg.version_dir("churn", 2));
        assert_eq!(reg.versions("churn").unwrap(), vec![1, 2]);
        assert_eq!(reg.latest("churn").unwrap(), Some(2));
        assert_eq!(reg.kinds().unwrap(), vec!["churn".to_string()]);

        let m = reg.manifest("churn", 1).unwrap();
        assert_eq!(m.version, 1);
        assert_eq!(m.kind, "churn");
        assert_eq!(m.files.len(), 2);
        let entry = &m.files["model.safetensors"];
        assert_eq!(entry.bytes, 11);
        let (sha, bytes) = sha256_file(p1.dir.join("model.safetensors")).unwrap();
        assert_eq!((sha.as_str(), bytes), (entry.sha256.as_str(), 11));
        assert_eq!(
            sha,
            hex::encode(Sha256::digest(b"weights one")),
            "streaming hash equals one-shot hash"
        );
        assert!(m.files.contains_key("reports/summary.txt"));
        assert!(!m.files.contains_key(MANIFEST_FILE));
        chrono::DateTime::parse_from_rfc3339(&m.created).unwrap();
        // No temp dirs are left behind.
        let leftovers: Vec<_> = fs::read_dir(reg.root().join("churn"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(TEMP_PREFIX))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn manifest_round_trip() {
        let (_tmp, reg) = registry();
        let p = publish(&reg, "segments", b"centroids");
        let m = reg.manifest("segments", p.version).unwrap();
        let json = serde_json::to_string_pretty(&m).unwrap();
        let back: Manifest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        assert_eq!(m.metrics, serde_json::json!({"auc": 0.81}));
        assert_eq!(m.extra, serde_json::json!({"report": "report.html"}));
        assert_eq!(m.format_version, MANIFEST_FORMAT_VERSION);
        // The file on disk is pretty JSON.
        let raw = fs::read_to_string(p.dir.join(MANIFEST_FILE)).unwrap();
        assert!(raw.contains("\n  \"kind\": \"segments\""));
    }

    #[test]
    fn manifest_parse_error_is_corrupt() {
        let (_tmp, reg) = registry();
        let p = publish(&reg, "churn", b"w");
        fs::write(p.dir.join(MANIFEST_FILE), b"{not json").unwrap();
        match reg.manifest("churn", 1) {
            Err(RegistryError::Corrupt { path, .. }) => assert!(path.ends_with("1/manifest.json")),
            other => panic!("expected Corrupt, got {other:?}"),
        }
        assert!(matches!(
            reg.manifest("churn", 9),
            Err(RegistryError::NotFound(_))
        ));
    }

    #[test]
    fn verify_detects_tampering() {
        let (_tmp, reg) = registry();
        let p = publish(&reg, "churn", b"0123456789");
        let model = p.dir.join("model.safetensors");
        reg.verify("churn", 1).unwrap();

        // Flip one byte: same size, different hash.
        let mut bytes = fs::read(&model).unwrap();
        bytes[3] ^= 0x01;
        fs::write(&model, &bytes).unwrap();
        match reg.verify("churn", 1) {
            Err(RegistryError::Integrity { path, reason }) => {
                assert_eq!(path, model);
                assert!(reason.contains("sha256"), "{reason}");
            }
            other => panic!("expected Integrity, got {other:?}"),
        }

        // Truncate.
        fs::write(&model, b"01234").unwrap();
        match reg.verify("churn", 1) {
            Err(RegistryError::Integrity { path, reason }) => {
                assert_eq!(path, model);
                assert!(reason.contains("size"), "{reason}");
            }
            other => panic!("expected Integrity, got {other:?}"),
        }

        // Restore, then add an unlisted file.
        fs::write(&model, b"0123456789").unwrap();
        reg.verify("churn", 1).unwrap();
        let extra = p.dir.join("reports/extra.bin");
        fs::write(&extra, b"sneaky").unwrap();
        match reg.verify("churn", 1) {
            Err(RegistryError::Integrity { path, .. }) => assert_eq!(path, extra),
            other => panic!("expected Integrity, got {other:?}"),
        }
        fs::remove_file(&extra).unwrap();

        // A missing file.
        fs::remove_file(p.dir.join("reports/summary.txt")).unwrap();
        assert!(matches!(
            reg.verify("churn", 1),
            Err(RegistryError::Integrity { .. })
        ));
    }

    #[test]
    fn verify_checks_manifest_identity_and_paths() {
        let (_tmp, reg) = registry();
        let p = publish(&reg, "churn", b"w");
        let path = p.dir.join(MANIFEST_FILE);
        let good = reg.manifest("churn", 1).unwrap();

        let mut m = good.clone();
        m.version = 7;
        fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
        assert!(matches!(
            reg.verify("churn", 1),
            Err(RegistryError::Integrity { .. })
        ));

        let mut m = good.clone();
        m.kind = "ltv".into();
        fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
        assert!(matches!(
            reg.verify("churn", 1),
            Err(RegistryError::Integrity { .. })
        ));

        let mut m = good.clone();
        m.files.insert(
            "../../outside".into(),
            FileEntry {
                sha256: String::new(),
                bytes: 0,
            },
        );
        fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
        assert!(matches!(
            reg.verify("churn", 1),
            Err(RegistryError::Integrity { .. })
        ));

        fs::write(&path, serde_json::to_vec(&good).unwrap()).unwrap();
        reg.verify("churn", 1).unwrap();
    }

    #[test]
    fn activate_refuses_tampered_version() {
        let (_tmp, reg) = registry();
        publish(&reg, "churn", b"good");
        let p2 = publish(&reg, "churn", b"will be tampered");
        assert_eq!(reg.active("churn").unwrap(), None);
        assert_eq!(reg.activate("churn", 1, "alice", "activate").unwrap(), None);
        fs::write(p2.dir.join("model.safetensors"), b"will be tamperex").unwrap();
        assert!(matches!(
            reg.activate("churn", 2, "alice", "activate"),
            Err(RegistryError::Integrity { .. })
        ));
        assert_eq!(reg.active("churn").unwrap(), Some(1));
        assert_eq!(reg.history("churn").unwrap().len(), 1);
        assert!(matches!(
            reg.activate("churn", 5, "alice", "activate"),
            Err(RegistryError::NotFound(_))
        ));
        assert_eq!(reg.active("churn").unwrap(), Some(1));
    }

    #[test]
    fn activate_rollback_history() {
        let (_tmp, reg) = registry();
        publish(&reg, "churn", b"one");
        publish(&reg, "churn", b"two");
        assert!(matches!(
            reg.rollback("churn", "bob"),
            Err(RegistryError::NotFound(_))
        ));
        assert_eq!(reg.activate("churn", 1, "bob", "activate").unwrap(), None);
        assert!(
            matches!(
                reg.rollback("churn", "bob"),
                Err(RegistryError::NotFound(_))
            ),
            "nothing before the first activation"
        );
        assert_eq!(
            reg.activate("churn", 2, "trainer", "train --activate")
                .unwrap(),
            Some(1)
        );
        assert_eq!(reg.active("churn").unwrap(), Some(2));
        assert_eq!(
            fs::read_to_string(reg.root().join("churn").join(ACTIVE_FILE)).unwrap(),
            "2\n"
        );
        assert_eq!(reg.rollback("churn", "bob").unwrap(), 1);
        assert_eq!(reg.active("churn").unwrap(), Some(1));

        let history = reg.history("churn").unwrap();
        assert_eq!(history.len(), 3);
        assert_eq!(
            history
                .iter()
                .map(|a| (a.version, a.previous, a.actor.as_str(), a.reason.as_str()))
                .collect::<Vec<_>>(),
            vec![
                (1, None, "bob", "activate"),
                (2, Some(1), "trainer", "train --activate"),
                (1, Some(2), "bob", "rollback"),
            ]
        );
        for a in &history {
            chrono::DateTime::parse_from_rfc3339(&a.time).unwrap();
        }
        // No temporary ACTIVE files are left behind.
        assert!(
            fs::read_dir(reg.root().join("churn"))
                .unwrap()
                .flatten()
                .all(|e| !e.file_name().to_string_lossy().starts_with("ACTIVE.tmp"))
        );

        // Blank lines are skipped; a corrupt line is an error naming the file.
        let hist = reg.root().join("churn").join(HISTORY_FILE);
        let mut f = OpenOptions::new().append(true).open(&hist).unwrap();
        f.write_all(b"\n   \n").unwrap();
        assert_eq!(reg.history("churn").unwrap().len(), 3);
        f.write_all(b"{\"version\":\n").unwrap();
        match reg.history("churn") {
            Err(RegistryError::Corrupt { path, reason }) => {
                assert_eq!(path, hist);
                assert!(reason.starts_with("line 6"), "{reason}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn garbage_active_is_corrupt() {
        let (_tmp, reg) = registry();
        publish(&reg, "churn", b"one");
        let active = reg.root().join("churn").join(ACTIVE_FILE);
        fs::write(&active, b"banana\n").unwrap();
        match reg.active("churn") {
            Err(RegistryError::Corrupt { path, .. }) => assert_eq!(path, active),
            other => panic!("expected Corrupt, got {other:?}"),
        }
        // Activating repairs it.
        assert_eq!(reg.activate("churn", 1, "ops", "activate").unwrap(), None);
        assert_eq!(reg.active("churn").unwrap(), Some(1));
    }

    #[test]
    fn leftover_temp_dirs_are_ignored_and_swept() {
        let (_tmp, reg) = registry();
        publish(&reg, "churn", b"one");
        // A trainer killed mid-publish.
        let leftover = reg.root().join("churn").join(".tmp-x");
        fs::create_dir_all(leftover.join("sub")).unwrap();
        fs::write(leftover.join("model.safetensors"), b"half").unwrap();
        fs::write(leftover.join("sub/part"), b"half").unwrap();
        // Other junk that is not a version.
        fs::create_dir(reg.root().join("churn").join("07")).unwrap();
        fs::write(reg.root().join("churn").join("3"), b"a file, not a dir").unwrap();

        assert_eq!(reg.versions("churn").unwrap(), vec![1]);
        assert_eq!(reg.latest("churn").unwrap(), Some(1));
        // A fresh leftover survives a sweep with a long threshold.
        assert_eq!(
            reg.sweep_temp("churn", Duration::from_secs(3600)).unwrap(),
            0
        );
        assert!(leftover.exists());
        assert_eq!(reg.sweep_temp("churn", Duration::ZERO).unwrap(), 1);
        assert!(!leftover.exists());
        assert!(reg.version_dir("churn", 1).exists());
        assert_eq!(reg.sweep_temp("ltv", Duration::ZERO).unwrap(), 0);
    }

    #[test]
    fn dropping_staged_removes_temp_dir() {
        let (_tmp, reg) = registry();
        let staged = reg.stage("ltv").unwrap();
        let dir = staged.dir().to_path_buf();
        fs::write(dir.join("params.json"), b"{}").unwrap();
        assert!(dir.exists());
        drop(staged);
        assert!(!dir.exists());
        assert!(reg.versions("ltv").unwrap().is_empty());
    }

    #[test]
    fn publish_rejects_mismatched_kind() {
        let (_tmp, reg) = registry();
        let staged = reg.stage("churn").unwrap();
        let dir = staged.dir().to_path_buf();
        assert!(matches!(
            staged.publish(manifest("ltv")),
            Err(RegistryError::Corrupt { .. })
        ));
        assert!(!dir.exists(), "a failed publish cleans up");
        // An empty kind is filled in.
        let staged = reg.stage("churn").unwrap();
        let p = staged.publish(Manifest::new("", "kmeans")).unwrap();
        assert_eq!(reg.verify("churn", p.version).unwrap().kind, "churn");
    }

    #[test]
    fn versions_are_never_reused() {
        let (_tmp, reg) = registry();
        publish(&reg, "churn", b"one");
        publish(&reg, "churn", b"two");
        reg.activate("churn", 2, "ops", "activate").unwrap();
        fs::remove_dir_all(reg.version_dir("churn", 2)).unwrap();
        assert_eq!(publish(&reg, "churn", b"three").version, 3);
    }

    #[test]
    fn concurrent_publishers_get_distinct_versions() {
        let (_tmp, reg) = registry();
        let threads = 8;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let reg = reg.clone();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let staged = reg.stage("churn").unwrap();
                    fs::write(
                        staged.dir().join("model.safetensors"),
                        format!("weights of publisher {i}"),
                    )
                    .unwrap();
                    barrier.wait();
                    staged.publish(manifest("churn")).unwrap().version
                })
            })
            .collect();
        let mut versions: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        versions.sort_unstable();
        assert_eq!(versions, (1..=8).collect::<Vec<u64>>());
        assert_eq!(reg.versions("churn").unwrap(), versions);
        let mut contents = std::collections::BTreeSet::new();
        for v in versions {
            let m = reg.verify("churn", v).unwrap();
            assert_eq!(m.version, v);
            contents.insert(m.files["model.safetensors"].sha256.clone());
        }
        assert_eq!(contents.len(), 8, "every publisher's files survived");
    }

    #[test]
    fn resolve_specs() {
        let (_tmp, reg) = registry();
        let err = reg.resolve("churn", "latest").unwrap_err();
        assert!(matches!(err, RegistryError::NotFound(_)));
        for _ in 0..3 {
            publish(&reg, "churn", b"w");
        }
        let err = reg.resolve("churn", "active").unwrap_err();
        assert!(
            matches!(&err, RegistryError::NotFound(m) if m.contains("1, 2, 3")),
            "{err}"
        );
        reg.activate("churn", 2, "ops", "activate").unwrap();
        assert_eq!(reg.resolve("churn", "active").unwrap(), 2);
        assert_eq!(reg.resolve("churn", "latest").unwrap(), 3);
        assert_eq!(reg.resolve("churn", "3").unwrap(), 3);
        assert_eq!(reg.resolve("churn", " 1 ").unwrap(), 1);
        for bad in ["x", "4", "0", "-1", ""] {
            let err = reg.resolve("churn", bad).unwrap_err();
            assert!(
                matches!(&err, RegistryError::NotFound(m) if m.contains("1, 2, 3")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn invalid_kinds_are_refused() {
        let (_tmp, reg) = registry();
        for bad in [
            "",
            "Churn",
            "1churn",
            "_churn",
            "churn/../x",
            "..",
            ".tmp-x",
            "ch urn",
            "chürn",
            "a".repeat(33).as_str(),
        ] {
            assert!(
                matches!(reg.stage(bad), Err(RegistryError::InvalidKind(_))),
                "{bad:?}"
            );
            assert!(
                matches!(reg.versions(bad), Err(RegistryError::InvalidKind(_))),
                "{bad:?}"
            );
            assert!(
                matches!(
                    reg.resolve(bad, "latest"),
                    Err(RegistryError::InvalidKind(_))
                ),
                "{bad:?}"
            );
        }
        for good in [
            "churn",
            "segments",
            "ltv",
            "a",
            "churn_v2-b",
            "a".repeat(32).as_str(),
        ] {
            validate_kind(good).unwrap();
        }
        let err = RegistryError::InvalidKind("Churn".into()).to_string();
        assert!(err.contains("`Churn`") && err.contains("[a-z]"), "{err}");
    }

    #[test]
    fn error_messages_name_the_path() {
        let err = RegistryError::Integrity {
            path: PathBuf::from("/reg/churn/1/model.safetensors"),
            reason: "sha256 differs".into(),
        }
        .to_string();
        assert!(err.contains("/reg/churn/1/model.safetensors"), "{err}");
        let err = RegistryError::Io {
            path: PathBuf::from("/reg"),
            source: io::Error::other("denied"),
        }
        .to_string();
        assert!(err.contains("/reg") && err.contains("writable"), "{err}");
    }
}
