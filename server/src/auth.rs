//! Who may call what: API keys sent as `authorization: Bearer <key>`, stored only as
//! SHA-256 hashes, each with roles; checked by one tower layer in front of every service.
//!
//! Roles: `reader` (customers with PII masked, events, evaluations, models, schemes),
//! `pii-reader` (a reader who also sees names, e-mails, phones and comments), `writer`
//! (customers and events, refreshing snapshots), `admin` (everything: models, schemes,
//! erasure). Health and reflection are open. A method this table does not know needs
//! `admin`, so a new RPC is closed until someone decides who may call it.
//!
//! With no keys configured every caller is anonymous with every role; the server then
//! listens on loopback only unless told `--insecure` (see `settings.rs`).
//!
//! The keys come from a file ([`KeyRing`]) that is re-read without a restart: on SIGHUP
//! and whenever its content changes (checked every registry poll). A file that no longer
//! parses, or that lists no key, is refused and the keys in force stay: a typo must not
//! lock everyone out, and a server started with keys never becomes open to everyone.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use http::{Request, Response};
use vitals_domain::time::now_micros;
use vitals_store::AuditEntry;

use crate::audit::{AuditRecord, AuditSink, audited};
use crate::error::ApiError;
use sha2::{Digest, Sha256};
use tonic::Status;

/// The caller's name when no keys are configured. Key names are single words, so no key
/// can take this name.
const ANONYMOUS: &str = "anonymous (no API keys configured)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Reader,
    PiiReader,
    Writer,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Self::Reader, Self::PiiReader, Self::Writer, Self::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reader => "reader",
            Self::PiiReader => "pii-reader",
            Self::Writer => "writer",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The response header naming the caller's roles (`Caller::roles_header`).
pub const ROLES_HEADER: &str = "x-vitals-roles";

/// The authenticated caller, put in every request's extensions for the services (PII
/// masking, the actor of a change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    roles: BTreeSet<Role>,
}

impl Caller {
    pub fn new(name: impl Into<String>, roles: impl IntoIterator<Item = Role>) -> Self {
        Self {
            name: name.into(),
            roles: roles.into_iter().collect(),
        }
    }

    /// `admin` may do anything; `pii-reader` includes `reader`.
    pub fn can(&self, role: Role) -> bool {
        self.roles.contains(&Role::Admin)
            || self.roles.contains(&role)
            || (role == Role::Reader && self.roles.contains(&Role::PiiReader))
    }

    /// The caller of a request; anonymous with every role when none was attached (a
    /// service called without the layer, as in unit tests).
    pub fn of<T>(request: &tonic::Request<T>) -> Caller {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .unwrap_or_else(Caller::anonymous)
    }

    fn anonymous() -> Caller {
        Caller::new(ANONYMOUS, Role::ALL)
    }

    /// Every role the caller may act in (what `admin` and `pii-reader` imply included),
    /// comma-separated: the `x-vitals-roles` response header, so that a front end offers
    /// only what this caller may do. It grants nothing: each call is still checked.
    pub fn roles_header(&self) -> String {
        Role::ALL
            .into_iter()
            .filter(|r| self.can(*r))
            .map(Role::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// True when no keys are configured (or the layer was not in front of the service).
    pub fn is_anonymous(&self) -> bool {
        self.name == ANONYMOUS
    }
}

/// The configured keys, by the hex SHA-256 of the key.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    by_hash: HashMap<String, Caller>,
}

/// The hex SHA-256 of a key: what the keys file stores.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl ApiKeys {
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Adds a key by its hash.
    pub fn insert(&mut self, sha256_hex: &str, caller: Caller) {
        self.by_hash.insert(sha256_hex.to_ascii_lowercase(), caller);
    }

    /// Parses a keys file: one key per line, `NAME ROLE[,ROLE...] SHA256HEX`; blank lines
    /// and `#` comments are skipped. Any bad line refuses the whole file (a typo must not
    /// silently drop a key or widen a role).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys = Self::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| format!("line {}: {why}", n + 1);
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, roles, hash] = fields.as_slice() else {
                return Err(bad("expected `NAME ROLE[,ROLE...] SHA256HEX`"));
            };
            let roles = roles
                .split(',')
                .map(|r| {
                    Role::parse(r).ok_or_else(|| {
                        bad(&format!(
                            "unknown role {r:?}; roles are reader, pii-reader, writer, admin"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad("the key's hash must be 64 hex digits (SHA-256)"));
            }
            keys.insert(hash, Caller::new(*name, roles));
        }
        Ok(keys)
    }

    /// The caller for a request's headers, or why not.
    fn authenticate(&self, headers: &http::HeaderMap) -> Result<Caller, Status> {
        if self.is_empty() {
            return Ok(Caller::anonymous());
        }
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return Err(ApiError::Unauthenticated(
                "missing `authorization: Bearer <API key>` metadata".into(),
            )
            .into());
        };
        let key = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                Status::from(ApiError::Unauthenticated(
                    "authorization must be `Bearer <API key>`".into(),
                ))
            })?;
        self.by_hash
            .get(&hash_key(key))
            .cloned()
            .ok_or_else(|| ApiError::Unauthenticated("unknown API key".into()).into())
    }
}

/// The keys in force and the file they come from, swapped whole on a reload so a request
/// sees either the old keys or the new ones, never a mix.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    inner: Arc<KeyRingInner>,
}

#[derive(Debug, Default)]
struct KeyRingInner {
    keys: ArcSwap<ApiKeys>,
    /// `None`: keys given in code (tests) or none at all; nothing to reload.
    file: Option<PathBuf>,
    /// SHA-256 of the file text last loaded, so an unchanged file is not re-parsed or
    /// logged every poll.
    loaded: Mutex<[u8; 32]>,
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// No keys file, or its content is what is in force.
    Unchanged,
    /// The file changed and its keys are now in force.
    Loaded { keys: usize },
}

impl KeyRing {
    /// Keys fixed for the server's life (tests; an empty set means no authentication).
    pub fn fixed(keys: ApiKeys) -> Self {
        Self {
            inner: Arc::new(KeyRingInner {
                keys: ArcSwap::from_pointee(keys),
                file: None,
                loaded: Mutex::new([0; 32]),
            }),
        }
    }

    /// Loads a keys file. A file with no key is refused: given a keys file, the operator
    /// means to authenticate, and an empty one would let everyone in.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let (keys, digest) = read_keys(path)?;
        Ok(Self {
            inner: Arc::new(KeyRingInner {
                keys: ArcSwap::from_pointee(keys),
                file: Some(path.to_path_buf()),
                loaded: Mutex::new(digest),
            }),
        })
    }

    /// The keys in force now. A guard, not a clone of the `Arc`: every request reads
    /// the keys, and bumping one shared reference count from every core would cost more
    /// than the lookup.
    pub fn current(&self) -> arc_swap::Guard<Arc<ApiKeys>> {
        self.inner.keys.load()
    }

    /// True when no key is configured at all: every caller is anonymous with every role.
    pub fn is_open(&self) -> bool {
        self.inner.file.is_none() && self.inner.keys.load().is_empty()
    }

    pub fn file(&self) -> Option<&Path> {
        self.inner.file.as_deref()
    }

    /// Re-reads the keys file if its content changed. On an error the keys in force
    /// stay and the error says why the file was refused.
    pub fn reload(&self) -> Result<Reload, String> {
        let Some(path) = &self.inner.file else {
            return Ok(Reload::Unchanged);
        };
        let mut loaded = self.inner.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let text = std::fs::read(path)
            .map_err(|e| format!("cannot read the API keys file {}: {e}", path.display()))?;
        let digest: [u8; 32] = Sha256::digest(&text).into();
        if digest == *loaded {
            return Ok(Reload::Unchanged);
        }
        let (keys, digest) = parse_keys(path, &text)?;
        let count = keys.len();
        self.inner.keys.store(Arc::new(keys));
        *loaded = digest;
        Ok(Reload::Loaded { keys: count })
    }
}

fn read_keys(path: &Path) -> Result<(ApiKeys, [u8; 32]), String> {
    let text = std::fs::read(path)
        .map_err(|e| format!("cannot read the API keys file {}: {e}", path.display()))?;
    parse_keys(path, &text)
}

fn parse_keys(path: &Path, text: &[u8]) -> Result<(ApiKeys, [u8; 32]), String> {
    let digest: [u8; 32] = Sha256::digest(text).into();
    let text = std::str::from_utf8(text)
        .map_err(|_| format!("{}: the API keys file is not UTF-8 text", path.display()))?;
    let keys = ApiKeys::parse(text).map_err(|e| format!("{}: {e}", path.display()))?;
    if keys.is_empty() {
        return Err(format!(
            "{}: the API keys file lists no key (add one with `vitals-server new-key`); \
             without keys every caller could do everything",
            path.display()
        ));
    }
    Ok((keys, digest))
}

/// The role a method needs; `None` for the open services (health, reflection).
pub fn required_role(path: &str) -> Option<Role> {
    let path = path.trim_start_matches('/');
    if path.starts_with("grpc.health.") || path.starts_with("grpc.reflection.") {
        return None;
    }
    let (service, method) = path.split_once('/').unwrap_or((path, ""));
    Some(match (service, method) {
        ("vitals.v1.CustomerService", "GetCustomer" | "ListCustomers") => Role::Reader,
        ("vitals.v1.CustomerService", "CreateCustomer" | "UpdateCustomer" | "ImportCustomers") => {
            Role::Writer
        }
        ("vitals.v1.EventService", "ListCustomerEvents" | "ListComments") => Role::Reader,
        ("vitals.v1.EventService", "RecordEvents" | "StreamEvents") => Role::Writer,
        ("vitals.v1.EvaluationService", "RefreshEvaluations") => Role::Writer,
        ("vitals.v1.EvaluationService", "UpdateScoringScheme") => Role::Admin,
        ("vitals.v1.EvaluationService", _) => Role::Reader,
        ("vitals.v1.ModelService", "ListModels" | "GetModel" | "ListActivations") => Role::Reader,
        (
            "vitals.v1.FollowUpService",
            "ListFollowUps"
            | "GetFollowUp"
            | "GetFollowUpRules"
            | "GetCampaign"
            | "ListCampaigns"
            | "ListCampaignMembers"
            | "ReviewCampaign",
        ) => Role::Reader,
        (
            "vitals.v1.FollowUpService",
            "UpdateFollowUp" | "RecordRetentionAction" | "CreateCampaign",
        ) => Role::Writer,
        ("vitals.v1.PortfolioService", "GetPortfolioMetrics") => Role::Reader,
        // DeleteCustomer (erasure), ActivateModel, ReloadModels, UpdateFollowUpRules, and
        // anything unknown.
        _ => Role::Admin,
    })
}

/// The tower layer that authenticates and authorizes every request, and records the
/// audited ones (writes, PII reads; refused attempts included) with their outcome.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    keys: KeyRing,
    audit: Option<AuditSink>,
}

impl AuthLayer {
    pub fn new(keys: KeyRing, audit: Option<AuditSink>) -> Self {
        Self { keys, audit }
    }
}

/// The outcome of a call as the audit trail names it: the gRPC status of a refused or
/// failed call (it travels in the headers then), else `Ok`.
fn outcome(headers: &http::HeaderMap) -> String {
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0);
    format!("{:?}", tonic::Code::from_i32(code))
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            keys: self.keys.clone(),
            audit: self.audit.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    keys: KeyRing,
    audit: Option<AuditSink>,
}

impl<S, B, R> tower::Service<Request<B>> for Auth<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let method = request.uri().path().trim_start_matches('/').to_owned();
        // The caller, or the refusal and who was refused.
        let decision = match required_role(&method) {
            None => Ok(None),
            Some(role) => match self.keys.current().authenticate(request.headers()) {
                Err(status) => Err((status, "unauthenticated".to_owned())),
                Ok(caller) if caller.can(role) => Ok(Some(caller)),
                Ok(caller) => Err((
                    ApiError::PermissionDenied(format!(
                        "{method} needs the {} role; key {:?} does not have it",
                        role.as_str(),
                        caller.name
                    ))
                    .into(),
                    caller.name,
                )),
            },
        };
        match decision {
            Ok(caller) => {
                let audit = self.audit.clone().filter(|_| {
                    required_role(&method).is_some() && audited(&method, caller.as_ref())
                });
                let actor = caller.as_ref().map(|c| c.name.clone()).unwrap_or_default();
                let roles = caller.as_ref().map(Caller::roles_header);
                if let Some(caller) = caller {
                    request.extensions_mut().insert(caller);
                }
                let call = self.inner.call(request);
                Box::pin(async move {
                    let mut response = call.await?;
                    if let Some(value) = roles.and_then(|r| http::HeaderValue::from_str(&r).ok()) {
                        response.headers_mut().insert(ROLES_HEADER, value);
                    }
                    if let Some(audit) = audit {
                        let record = response
                            .extensions()
                            .get::<AuditRecord>()
                            .map(|r| r.0.clone())
                            .unwrap_or_default();
                        let outcome = outcome(response.headers());
                        audit
                            .record(AuditEntry::new(
                                now_micros(),
                                actor,
                                method,
                                record,
                                outcome,
                            ))
                            .await;
                    }
                    Ok(response)
                })
            }
            Err((status, actor)) => {
                tracing::info!(%method, code = ?status.code(), "refused");
                let audit = self.audit.clone().filter(|_| audited(&method, None));
                Box::pin(async move {
                    if let Some(audit) = audit {
                        let outcome = format!("{:?}", status.code());
                        audit
                            .record(AuditEntry::new(now_micros(), actor, method, "", outcome))
                            .await;
                    }
                    Ok(status.into_http())
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_policy() {
        let reader = Caller::new("r", [Role::Reader]);
        let pii = Caller::new("p", [Role::PiiReader]);
        let admin = Caller::new("a", [Role::Admin]);
        assert!(pii.can(Role::Reader) && !reader.can(Role::PiiReader));
        assert!(admin.can(Role::Writer) && admin.can(Role::PiiReader));
        assert_eq!(
            required_role("/vitals.v1.CustomerService/DeleteCustomer"),
            Some(Role::Admin)
        );
        assert_eq!(
            required_role("/vitals.v1.EvaluationService/EvaluateCustomer"),
            Some(Role::Reader)
        );
        assert_eq!(
            required_role("/vitals.v1.NewService/Anything"),
            Some(Role::Admin),
            "closed by default"
        );
        assert_eq!(required_role("/grpc.health.v1.Health/Check"), None);
    }

    #[test]
    fn keys_file_parses_and_refuses_bad_lines() {
        let hash = hash_key("secret");
        let keys = ApiKeys::parse(&format!("# crm\ncrm reader,writer {hash}\n")).expect("parse");
        assert_eq!(keys.len(), 1);
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer secret"),
        );
        let caller = keys.authenticate(&headers).expect("known key");
        assert_eq!(caller.name, "crm");
        assert!(caller.can(Role::Writer) && !caller.can(Role::Admin));
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer wrong"),
        );
        assert_eq!(
            keys.authenticate(&headers).map_err(|s| s.code()),
            Err(tonic::Code::Unauthenticated)
        );
        assert!(ApiKeys::parse(&format!("crm superuser {hash}")).is_err());
        assert!(ApiKeys::parse("crm reader abc").is_err());
        assert!(ApiKeys::parse("crm reader").is_err());
    }
}
