//! The immutable routing snapshot (DESIGN.md §4) and the handle through which it is
//! swapped atomically: a request loads it once, takes no lock, and sees either the old
//! or the new snapshot whole.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::{ArcSwap, Guard};
use http::header::HeaderValue;
use http::uri::{Authority, Scheme};
use http::{Method, Uri};
use time::OffsetDateTime;
use time::macros::format_description;
use tollgate_core::model::ApiStatus;
use tollgate_core::path_template::PathTemplate;
use tollgate_core::{ApiId, OrgId};

use crate::access::Access;
use crate::router::{ApiMatch, OperationTable, RouteTable};

/// An API as the gateway routes it, compiled by the control plane from the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteApi {
    pub api_id: ApiId,
    pub org_id: OrgId,
    /// Path prefix on the gateway, e.g. `/weather/v1`: starts with `/`, no trailing `/`.
    pub base_path: String,
    /// Host names it answers on (without port); empty means any host.
    pub hosts: Vec<String>,
    /// Upstream base URLs (`http://host:port/optional/prefix`), used round robin.
    pub upstreams: Vec<String>,
    /// Where test-mode calls go; empty: test calls are answered by the example mock.
    pub sandbox_upstreams: Vec<String>,
    /// Only `Published` and `Deprecated` APIs are routed.
    pub status: ApiStatus,
    /// When a deprecated API stops being served: sent as the `Sunset` header (RFC 8594).
    pub sunset: Option<OffsetDateTime>,
    /// When the API was deprecated: sent as the `Deprecation` header (RFC 9745). The
    /// header is omitted when unknown, since the RFC gives it no value for "unknown".
    pub deprecated_at: Option<OffsetDateTime>,
    pub operations: Vec<RouteOperation>,
}

/// One operation of an API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteOperation {
    /// The OpenAPI `operationId` (or the id the importer assigned).
    pub operation_id: String,
    pub method: Method,
    /// Path template relative to the API's base path.
    pub template: PathTemplate,
}

/// Why a snapshot could not be built. The control plane keeps serving the previous
/// snapshot when this happens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error(
        "api {api}: base path {base_path:?} must start with '/', have no trailing '/' or empty segment, and not be '/' or under /_tollgate"
    )]
    BadBasePath { api: ApiId, base_path: String },
    #[error("api {api}: host {host:?} is not a host name")]
    BadHost { api: ApiId, host: String },
    #[error("api {api}: base path {base_path} on {host} is already routed to api {other}")]
    DuplicateRoute {
        api: ApiId,
        other: ApiId,
        host: String,
        base_path: String,
    },
    #[error("api {api}: has no upstream")]
    NoUpstream { api: ApiId },
    #[error("api {api}: upstream {url:?} is not an absolute URL with a host and no query")]
    BadUpstream { api: ApiId, url: String },
    #[error(
        "api {api}: upstream {url:?} uses https, which the gateway does not speak to upstreams yet"
    )]
    UnsupportedUpstreamScheme { api: ApiId, url: String },
    #[error("api {api}: operations {first:?} and {second:?} both route {method} {template}")]
    DuplicateOperation {
        api: ApiId,
        first: String,
        second: String,
        method: Method,
        template: String,
    },
}

/// An upstream base URL, pre-parsed so the request path pays no URL parsing.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    pub(crate) scheme: Scheme,
    pub(crate) authority: Authority,
    /// Path of the base URL without trailing `/` (empty for the root).
    pub(crate) path_prefix: Box<str>,
}

/// A routed API with everything the request path needs precomputed.
#[derive(Debug)]
pub(crate) struct CompiledApi {
    pub(crate) route: RouteApi,
    pub(crate) upstreams: Box<[Upstream]>,
    /// Test-mode upstreams (may be empty).
    pub(crate) sandbox: Box<[Upstream]>,
    /// Round-robin cursor. Restarting at 0 on each snapshot swap is harmless.
    next_upstream: AtomicUsize,
    pub(crate) operations: OperationTable,
    pub(crate) sunset: Option<HeaderValue>,
    pub(crate) deprecation: Option<HeaderValue>,
}

impl CompiledApi {
    /// The next upstream, round robin. Never empty: `Snapshot::build` rejects APIs
    /// without upstreams.
    pub(crate) fn pick_upstream(&self) -> &Upstream {
        if self.upstreams.len() == 1 {
            return &self.upstreams[0];
        }
        let i = self.next_upstream.fetch_add(1, Ordering::Relaxed);
        &self.upstreams[i % self.upstreams.len()]
    }

    /// The next test-mode upstream, round robin; `None` when the API has none (the
    /// mock answers then).
    pub(crate) fn pick_sandbox(&self) -> Option<&Upstream> {
        if self.sandbox.is_empty() {
            return None;
        }
        let i = self.next_upstream.fetch_add(1, Ordering::Relaxed);
        Some(&self.sandbox[i % self.sandbox.len()])
    }

    /// The route-table keys of this API: each host, or `None` (any host).
    fn host_keys(&self) -> impl Iterator<Item = Option<&str>> {
        let any = self.route.hosts.is_empty().then_some(None);
        self.route.hosts.iter().map(|h| Some(h.as_str())).chain(any)
    }

    /// The `Sunset` and `Deprecation` headers every response of this API carries.
    pub(crate) fn lifecycle_headers(
        &self,
    ) -> impl Iterator<Item = (http::HeaderName, &HeaderValue)> {
        let sunset = self
            .sunset
            .as_ref()
            .map(|v| (http::HeaderName::from_static("sunset"), v));
        let deprecation = self
            .deprecation
            .as_ref()
            .map(|v| (http::HeaderName::from_static("deprecation"), v));
        sunset.into_iter().chain(deprecation)
    }
}

/// An immutable, versioned routing configuration.
#[derive(Debug)]
pub struct Snapshot {
    version: u64,
    apis: Vec<CompiledApi>,
    routes: RouteTable,
    /// Credentials, subscriptions and compiled policies.
    access: Access,
    /// Test-mode answers from each API's OpenAPI examples.
    mocks: std::collections::HashMap<ApiId, Arc<tollgate_openapi::MockTable>>,
}

impl Snapshot {
    /// The snapshot a gateway starts with: version 0, no routes.
    pub fn empty() -> Self {
        Self {
            version: 0,
            apis: Vec::new(),
            routes: RouteTable::default(),
            access: Access::default(),
            mocks: Default::default(),
        }
    }

    /// Compiles the routing tables, strictly: any invalid routed API fails the whole
    /// build (the first problem is returned). APIs that are neither published nor
    /// deprecated are left out and not validated. See [`Snapshot::build_lenient`] for
    /// the variant that keeps the valid APIs.
    pub fn build(version: u64, apis: Vec<RouteApi>) -> Result<Self, SnapshotError> {
        let (snapshot, mut problems) = Self::build_lenient(version, apis);
        match problems.is_empty() {
            true => Ok(snapshot),
            false => Err(problems.swap_remove(0)),
        }
    }

    /// Compiles the routing tables, leaving out each invalid API and reporting why.
    /// One tenant's broken API (say, an `https://` upstream, which the gateway cannot
    /// reach yet) then cannot stop every other API's changes from going live. On a route
    /// clash the API listed first keeps the route.
    pub fn build_lenient(version: u64, apis: Vec<RouteApi>) -> (Self, Vec<SnapshotError>) {
        let mut compiled: Vec<CompiledApi> = Vec::with_capacity(apis.len());
        let mut routes = RouteTable::default();
        let mut problems = Vec::new();
        for api in apis.into_iter().filter(|a| is_routed(a.status)) {
            let result = compile_api(api).and_then(|api| {
                // Check every host before inserting any, so a clash leaves no trace.
                for host in api.host_keys() {
                    if let Some(other) = routes.get(host, &api.route.base_path) {
                        return Err(SnapshotError::DuplicateRoute {
                            api: api.route.api_id,
                            other: compiled[other].route.api_id,
                            host: host.unwrap_or("any host").to_owned(),
                            base_path: api.route.base_path.clone(),
                        });
                    }
                }
                Ok(api)
            });
            match result {
                Ok(api) => {
                    for host in api.host_keys() {
                        routes.insert(host, &api.route.base_path, compiled.len());
                    }
                    compiled.push(api);
                }
                Err(problem) => problems.push(problem),
            }
        }
        (
            Self {
                version,
                apis: compiled,
                routes,
                access: Access::default(),
                mocks: Default::default(),
            },
            problems,
        )
    }

    /// The same snapshot with this credential and subscription index.
    pub fn with_access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// The same snapshot with these test-mode mocks (by API).
    pub fn with_mocks(
        mut self,
        mocks: std::collections::HashMap<ApiId, Arc<tollgate_openapi::MockTable>>,
    ) -> Self {
        self.mocks = mocks;
        self
    }

    /// The test-mode mock of an API.
    pub fn mock(&self, api: ApiId) -> Option<&tollgate_openapi::MockTable> {
        self.mocks.get(&api).map(|m| &**m)
    }

    /// The credential and subscription index.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// The version; rises with every configuration change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The routed APIs.
    pub fn apis(&self) -> impl ExactSizeIterator<Item = &RouteApi> {
        self.apis.iter().map(|a| &a.route)
    }

    /// Finds the API for a request. `host` is the request's host without port; it is
    /// compared case-insensitively (callers pass it lowercased to avoid the copy).
    /// `path` is the raw request path.
    pub fn route<'s, 'p>(&'s self, host: &str, path: &'p str) -> Option<ApiMatch<'s, 'p>> {
        let (index, remainder) = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            self.routes.lookup(&host.to_ascii_lowercase(), path)?
        } else {
            self.routes.lookup(host, path)?
        };
        Some(ApiMatch::new(&self.apis[index], remainder))
    }

    /// The compiled APIs, for the upstream health checks and failover (`upstream.rs`).
    pub(crate) fn compiled_apis(&self) -> &[CompiledApi] {
        &self.apis
    }
}

/// Validates one API and precomputes what its requests need.
fn compile_api(mut api: RouteApi) -> Result<CompiledApi, SnapshotError> {
    let id = api.api_id;
    if !valid_base_path(&api.base_path) {
        return Err(SnapshotError::BadBasePath {
            api: id,
            base_path: api.base_path,
        });
    }
    for host in &mut api.hosts {
        *host = normalize_host(host).ok_or_else(|| SnapshotError::BadHost {
            api: id,
            host: host.clone(),
        })?;
    }
    api.hosts.sort_unstable();
    api.hosts.dedup();

    if api.upstreams.is_empty() {
        return Err(SnapshotError::NoUpstream { api: id });
    }
    let upstreams = api
        .upstreams
        .iter()
        .map(|url| parse_upstream(id, url))
        .collect::<Result<Box<[_]>, _>>()?;
    let sandbox = api
        .sandbox_upstreams
        .iter()
        .map(|url| parse_upstream(id, url))
        .collect::<Result<Box<[_]>, _>>()?;

    let operations = OperationTable::build(&api.operations).map_err(|d| {
        let (first, second) = (&api.operations[d.first], &api.operations[d.second]);
        SnapshotError::DuplicateOperation {
            api: id,
            first: first.operation_id.clone(),
            second: second.operation_id.clone(),
            method: second.method.clone(),
            template: second.template.to_string(),
        }
    })?;

    let deprecated = api.status == ApiStatus::Deprecated;
    let sunset = api.sunset.filter(|_| deprecated).and_then(http_date);
    let deprecation = api
        .deprecated_at
        .filter(|_| deprecated)
        .and_then(|t| HeaderValue::try_from(format!("@{}", t.unix_timestamp())).ok());

    Ok(CompiledApi {
        route: api,
        upstreams,
        sandbox,
        next_upstream: AtomicUsize::new(0),
        operations,
        sunset,
        deprecation,
    })
}

fn is_routed(status: ApiStatus) -> bool {
    matches!(status, ApiStatus::Published | ApiStatus::Deprecated)
}

fn valid_base_path(p: &str) -> bool {
    p.len() > 1
        && p.starts_with('/')
        && !p.ends_with('/')
        && !p[1..].split('/').any(str::is_empty)
        && !p
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'?' || b == b'#')
        && p != "/_tollgate"
        && !p.starts_with("/_tollgate/")
}

/// Lowercases a host name and drops a trailing root dot; `None` when it is not one.
pub(crate) fn normalize_host(host: &str) -> Option<String> {
    let host = host.strip_suffix('.').unwrap_or(host);
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    ok.then(|| host.to_ascii_lowercase())
}

fn parse_upstream(api: ApiId, url: &str) -> Result<Upstream, SnapshotError> {
    let bad = || SnapshotError::BadUpstream {
        api,
        url: url.to_owned(),
    };
    let uri: Uri = url.parse().map_err(|_| bad())?;
    let parts = uri.into_parts();
    let (Some(scheme), Some(authority)) = (parts.scheme, parts.authority) else {
        return Err(bad());
    };
    if scheme == Scheme::HTTPS {
        return Err(SnapshotError::UnsupportedUpstreamScheme {
            api,
            url: url.to_owned(),
        });
    }
    if scheme != Scheme::HTTP || authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(bad());
    }
    let path = match parts.path_and_query {
        Some(pq) if pq.query().is_some() => return Err(bad()),
        Some(pq) => pq.path().trim_end_matches('/').into(),
        None => "".into(),
    };
    Ok(Upstream {
        scheme,
        authority,
        path_prefix: path,
    })
}

/// RFC 9110 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(t: OffsetDateTime) -> Option<HeaderValue> {
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let text = t.to_offset(time::UtcOffset::UTC).format(&format).ok()?;
    HeaderValue::try_from(text).ok()
}

/// Shared, atomically swappable snapshot. Cloning shares the same slot.
#[derive(Debug, Clone)]
pub struct SnapshotHandle(Arc<ArcSwap<Snapshot>>);

impl SnapshotHandle {
    /// A handle holding `snapshot`.
    pub fn new(snapshot: Snapshot) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(snapshot)))
    }

    /// The current snapshot: one atomic load, no lock, no reference-count traffic in
    /// the common case. Hold the guard briefly (not across awaits): long-held guards use
    /// up arc-swap's per-thread fast slots.
    pub fn load(&self) -> Guard<Arc<Snapshot>> {
        self.0.load()
    }

    /// The current snapshot as an owned `Arc`, for holding across awaits.
    pub fn load_full(&self) -> Arc<Snapshot> {
        self.0.load_full()
    }

    /// Replaces the snapshot; the very next `load` sees it. Returns the previous one.
    pub fn store(&self, snapshot: Snapshot) -> Arc<Snapshot> {
        let version = snapshot.version;
        let previous = self.0.swap(Arc::new(snapshot));
        if version <= previous.version {
            // Versions are meant to rise; a step back usually means two writers race.
            tracing::warn!(
                from = previous.version,
                to = version,
                "gateway snapshot version did not rise"
            );
        }
        tracing::debug!(
            from = previous.version,
            to = version,
            "gateway snapshot swapped"
        );
        previous
    }
}

impl Default for SnapshotHandle {
    fn default() -> Self {
        Self::new(Snapshot::empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn api(base: &str) -> RouteApi {
        RouteApi {
            api_id: ApiId::new(),
            org_id: OrgId::new(),
            base_path: base.into(),
            hosts: vec![],
            upstreams: vec!["http://127.0.0.1:8080/svc/".into()],
            sandbox_upstreams: vec![],
            status: ApiStatus::Published,
            sunset: None,
            deprecated_at: None,
            operations: vec![],
        }
    }

    #[test]
    fn only_published_and_deprecated_apis_are_routed() {
        let mut apis = vec![];
        for (i, status) in [
            ApiStatus::Draft,
            ApiStatus::Published,
            ApiStatus::Deprecated,
            ApiStatus::Retired,
        ]
        .into_iter()
        .enumerate()
        {
            let mut a = api(&format!("/a{i}"));
            a.status = status;
            apis.push(a);
        }
        // A broken draft does not break the build: it is not routed.
        apis[0].upstreams.clear();
        let s = Snapshot::build(7, apis).unwrap();
        assert_eq!(s.version(), 7);
        assert_eq!(
            s.apis().map(|a| a.base_path.as_str()).collect::<Vec<_>>(),
            ["/a1", "/a2"]
        );
        assert!(s.route("h", "/a0").is_none());
        assert!(s.route("h", "/a1").is_some());
        assert!(s.route("h", "/a2").is_some());
        assert!(s.route("h", "/a3").is_none());
    }

    #[test]
    fn invalid_input_is_rejected() {
        let check = |edit: &dyn Fn(&mut RouteApi), expected: &str| {
            let mut a = api("/ok");
            edit(&mut a);
            let err = Snapshot::build(1, vec![a]).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        };
        check(&|a| a.base_path = "/".into(), "base path");
        check(&|a| a.base_path = "/x/".into(), "base path");
        check(&|a| a.base_path = "x".into(), "base path");
        check(&|a| a.base_path = "/a//b".into(), "base path");
        check(&|a| a.base_path = "/_tollgate/x".into(), "base path");
        check(&|a| a.hosts = vec!["bad host".into()], "host");
        check(&|a| a.upstreams.clear(), "no upstream");
        check(&|a| a.upstreams = vec!["https://u.example".into()], "https");
        check(
            &|a| a.upstreams = vec!["ftp://u.example".into()],
            "not an absolute URL",
        );
        check(
            &|a| a.upstreams = vec!["/relative".into()],
            "not an absolute URL",
        );
        check(
            &|a| a.upstreams = vec!["http://u.example/?q=1".into()],
            "not an absolute URL",
        );
        check(
            &|a| a.upstreams = vec!["http://user@u.example/".into()],
            "not an absolute URL",
        );
        check(
            &|a| {
                let op = |id: &str, t: &str| RouteOperation {
                    operation_id: id.into(),
                    method: Method::GET,
                    template: PathTemplate::parse(t).unwrap(),
                };
                a.operations = vec![op("one", "/p/{a}"), op("two", "/p/{b}")];
            },
            "operations \"one\" and \"two\" both route GET /p/{b}",
        );
    }

    #[test]
    fn duplicate_routes_are_rejected_per_host() {
        let mut a = api("/x");
        let mut b = api("/x");
        assert!(Snapshot::build(1, vec![a.clone(), b.clone()]).is_err());
        a.hosts = vec!["a.example".into()];
        b.hosts = vec!["b.example".into()];
        assert!(Snapshot::build(1, vec![a.clone(), b.clone()]).is_ok());
        b.hosts = vec!["A.example.".into()];
        let err = Snapshot::build(1, vec![a, b]).unwrap_err();
        assert!(
            matches!(err, SnapshotError::DuplicateRoute { ref host, .. } if host == "a.example")
        );
    }

    #[test]
    fn lenient_build_keeps_the_valid_apis() {
        let good = api("/good");
        let mut https = api("/tls");
        https.upstreams = vec!["https://u.example".into()];
        let mut clash = api("/good");
        clash.hosts = vec![];
        let mut partly = api("/partly");
        partly.hosts = vec!["a.example".into(), "b.example".into()];
        let mut partly_clash = api("/partly");
        partly_clash.hosts = vec!["c.example".into(), "b.example".into()];
        let (s, problems) =
            Snapshot::build_lenient(3, vec![good.clone(), https, clash, partly, partly_clash]);
        assert_eq!(
            s.apis().map(|a| a.base_path.as_str()).collect::<Vec<_>>(),
            ["/good", "/partly"]
        );
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(matches!(
            problems[0],
            SnapshotError::UnsupportedUpstreamScheme { .. }
        ));
        assert!(
            matches!(problems[1], SnapshotError::DuplicateRoute { ref other, .. } if *other == good.api_id)
        );
        // A clash on one host leaves none of that API's hosts routed.
        assert!(s.route("c.example", "/partly").is_none());
        assert!(s.route("a.example", "/partly").is_some());
        // The strict build reports the first problem.
        let err = Snapshot::build(
            3,
            vec![good, api("/x"), {
                let mut a = api("/y");
                a.upstreams.clear();
                a
            }],
        )
        .unwrap_err();
        assert!(matches!(err, SnapshotError::NoUpstream { .. }));
    }

    #[test]
    fn upstreams_are_preparsed_and_round_robin() {
        let mut a = api("/x");
        a.upstreams = vec!["http://one:1/svc/".into(), "http://two:2".into()];
        let s = Snapshot::build(1, vec![a]).unwrap();
        let compiled = &s.apis[0];
        assert_eq!(&*compiled.upstreams[0].path_prefix, "/svc");
        assert_eq!(&*compiled.upstreams[1].path_prefix, "");
        let picks: Vec<&str> = (0..4)
            .map(|_| compiled.pick_upstream().authority.as_str())
            .collect();
        assert_eq!(picks, ["one:1", "two:2", "one:1", "two:2"]);
    }

    #[test]
    fn lifecycle_headers_only_when_deprecated() {
        let mut a = api("/x");
        a.sunset = Some(datetime!(2027-01-31 23:59:59 +01:00));
        a.deprecated_at = Some(datetime!(2026-06-01 00:00:00 UTC));
        let published = Snapshot::build(1, vec![a.clone()]).unwrap();
        assert_eq!(published.apis[0].lifecycle_headers().count(), 0);
        a.status = ApiStatus::Deprecated;
        let s = Snapshot::build(1, vec![a]).unwrap();
        let headers: Vec<(String, String)> = s.apis[0]
            .lifecycle_headers()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        assert_eq!(
            headers,
            [
                (
                    "sunset".to_owned(),
                    "Sun, 31 Jan 2027 22:59:59 GMT".to_owned()
                ),
                ("deprecation".to_owned(), "@1780272000".to_owned()),
            ]
        );
    }

    #[test]
    fn handle_swaps_atomically() {
        let handle = SnapshotHandle::default();
        assert_eq!(handle.load().version(), 0);
        let previous = handle.store(Snapshot::build(2, vec![api("/x")]).unwrap());
        assert_eq!(previous.version(), 0);
        assert_eq!(handle.clone().load().version(), 2);
        assert!(handle.load_full().route("h", "/x").is_some());
    }
}
