//! Routing tables compiled into a snapshot: host + base path → API (longest prefix at a
//! segment boundary, host-specific before any-host), then, as a separate step taken only
//! after the caller is authenticated, method + remaining path → operation.
//!
//! Lookups allocate nothing: the API step hashes at most one candidate prefix per path
//! segment, and the operation step compares only templates with the request's segment
//! count, most specific first.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use http::Method;
use http::header::HeaderValue;
use tollgate_core::path_template::{PathTemplate, Segment};

use crate::snapshot::{CompiledApi, RouteApi, RouteOperation};

/// Maps keyed by operator-configured strings (hosts, base paths). Requests only look
/// keys up and cannot add any, so hash flooding cannot lengthen a probe sequence; a
/// fast unkeyed hash then beats SipHash, which was a tenth of the routing cost.
type FastMap<V> = HashMap<Box<str>, V, BuildHasherDefault<FxHasher>>;

/// The multiply-rotate hash of rustc (`rustc-hash`), word at a time.
#[derive(Debug, Default, Clone, Copy)]
struct FxHasher(u64);

impl FxHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Host + base path → index of the API in the snapshot.
#[derive(Debug, Default)]
pub(crate) struct RouteTable {
    by_host: FastMap<BaseTable>,
    any_host: BaseTable,
}

/// Base path → API index, for one host (or for any host).
#[derive(Debug, Default)]
struct BaseTable {
    by_base: FastMap<usize>,
    /// Segments of the deepest base path: longer request paths are cut to this depth
    /// before probing, so a deep path costs no more lookups than the deepest API.
    max_depth: usize,
}

impl RouteTable {
    /// Registers an API under `host` (`None` = any host), replacing any previous one;
    /// callers check for clashes with [`RouteTable::get`] first.
    pub(crate) fn insert(&mut self, host: Option<&str>, base_path: &str, index: usize) {
        let table = match host {
            Some(h) => self.by_host.entry(h.into()).or_default(),
            None => &mut self.any_host,
        };
        table.by_base.insert(base_path.into(), index);
        table.max_depth = table.max_depth.max(count_slashes(base_path));
    }

    /// The API registered for exactly this host and base path.
    pub(crate) fn get(&self, host: Option<&str>, base_path: &str) -> Option<usize> {
        let table = match host {
            Some(h) => self.by_host.get(h)?,
            None => &self.any_host,
        };
        table.by_base.get(base_path).copied()
    }

    /// The API for this host and path, with the path remainder after its base path.
    /// A host-specific API wins over any-host APIs even when their base path is longer:
    /// the host picks the set of APIs first, as a web server picks a virtual host.
    pub(crate) fn lookup<'p>(&self, host: &str, path: &'p str) -> Option<(usize, &'p str)> {
        if let Some(table) = self.by_host.get(host)
            && let Some(hit) = table.longest_prefix(path)
        {
            return Some(hit);
        }
        self.any_host.longest_prefix(path)
    }
}

impl BaseTable {
    fn longest_prefix<'p>(&self, path: &'p str) -> Option<(usize, &'p str)> {
        if self.by_base.is_empty() || !path.starts_with('/') {
            return None;
        }
        let mut candidate = cut_to_depth(path, self.max_depth);
        loop {
            if let Some(&index) = self.by_base.get(candidate) {
                return Some((index, &path[candidate.len()..]));
            }
            match candidate.as_bytes().iter().rposition(|&b| b == b'/') {
                Some(pos) if pos > 0 => candidate = &candidate[..pos],
                _ => return None,
            }
        }
    }
}

/// `path` cut before its `depth + 1`-th `/`, i.e. to at most `depth` segments.
fn cut_to_depth(path: &str, depth: usize) -> &str {
    // Byte loops: paths are short, and `str` pattern searchers cost more to set up than
    // the scan itself.
    match path
        .bytes()
        .enumerate()
        .filter(|&(_, b)| b == b'/')
        .nth(depth)
    {
        Some((pos, _)) => &path[..pos],
        None => path,
    }
}

fn count_slashes(s: &str) -> usize {
    s.bytes().filter(|&b| b == b'/').count()
}

/// Splits at `/` without `str::split`'s pattern machinery.
fn segments(s: &str) -> impl Iterator<Item = &str> {
    s.as_bytes().split(|&b| b == b'/').map(|seg| {
        // Splitting valid UTF-8 at an ASCII byte leaves valid UTF-8.
        std::str::from_utf8(seg).unwrap_or_default()
    })
}

/// An API's operations, grouped into path items (templates of one shape) and bucketed
/// by segment count.
#[derive(Debug, Default)]
pub(crate) struct OperationTable {
    /// Sorted by segment count, then most specific first.
    items: Vec<PathItem>,
    /// `by_len[n]` is the range of `items` whose templates have `n` segments.
    by_len: Vec<(usize, usize)>,
}

#[derive(Debug)]
struct PathItem {
    /// `Some(literal)` or `None` for a parameter.
    segments: Box<[Option<Box<str>>]>,
    /// Method → index into `RouteApi::operations`.
    methods: Box<[(Method, usize)]>,
    allowed: AllowedMethods,
}

/// The methods a path accepts, for the `Allow` header of a 405.
#[derive(Debug, Clone)]
pub struct AllowedMethods {
    methods: Box<[Method]>,
    header: HeaderValue,
}

impl AllowedMethods {
    /// The methods, in a stable order (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, …).
    pub fn methods(&self) -> &[Method] {
        &self.methods
    }

    /// Precomputed `Allow` header value.
    pub fn header(&self) -> &HeaderValue {
        &self.header
    }
}

/// Two operations of one API route the same method and path shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DuplicateOperation {
    pub(crate) first: usize,
    pub(crate) second: usize,
}

impl OperationTable {
    pub(crate) fn build(operations: &[RouteOperation]) -> Result<Self, DuplicateOperation> {
        let mut grouped: Vec<(&PathTemplate, Vec<(Method, usize)>)> = Vec::new();
        for (index, op) in operations.iter().enumerate() {
            let group = match grouped.iter().position(|(t, _)| t.same_shape(&op.template)) {
                Some(g) => g,
                None => {
                    grouped.push((&op.template, Vec::new()));
                    grouped.len() - 1
                }
            };
            let methods = &mut grouped[group].1;
            if let Some(&(_, first)) = methods.iter().find(|(m, _)| *m == op.method) {
                return Err(DuplicateOperation {
                    first,
                    second: index,
                });
            }
            methods.push((op.method.clone(), index));
        }
        grouped.sort_by(|(a, _), (b, _)| {
            a.segments()
                .len()
                .cmp(&b.segments().len())
                .then_with(|| more_specific_first(a, b))
        });

        let max_len = grouped.iter().map(|(t, _)| t.segments().len()).max();
        let mut by_len = vec![(0, 0); max_len.map_or(0, |m| m + 1)];
        let mut items = Vec::with_capacity(grouped.len());
        for (i, (template, methods)) in grouped.into_iter().enumerate() {
            let len = template.segments().len();
            if by_len[len] == (0, 0) {
                by_len[len].0 = i;
            }
            by_len[len].1 = i + 1;
            items.push(PathItem {
                segments: template
                    .segments()
                    .iter()
                    .map(|s| match s {
                        Segment::Literal(l) => Some(l.as_str().into()),
                        Segment::Param(_) => None,
                    })
                    .collect(),
                allowed: AllowedMethods::new(methods.iter().map(|(m, _)| m.clone())),
                methods: methods.into_boxed_slice(),
            });
        }
        Ok(Self { items, by_len })
    }

    /// Finds the operation for `method` and `remainder` (the path after the base path:
    /// empty or starting with `/`). Returns the operation index, or why there is none.
    fn find<'p>(&self, method: &Method, remainder: &'p str) -> Found<'_, 'p> {
        // Same normalisation as `PathTemplate::matches`: the leading `/` is implied and a
        // trailing `/` is insignificant.
        let rest = remainder.strip_prefix('/').unwrap_or(remainder);
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let count = if rest.is_empty() {
            0
        } else {
            count_slashes(rest) + 1
        };
        let Some(&(start, end)) = self.by_len.get(count) else {
            return Found::None;
        };
        for item in &self.items[start..end] {
            if item.matches(rest) {
                return match item.select(method) {
                    Some(index) => Found::Operation(index, rest),
                    None => Found::WrongMethod(&item.allowed),
                };
            }
        }
        Found::None
    }
}

enum Found<'s, 'p> {
    Operation(usize, &'p str),
    WrongMethod(&'s AllowedMethods),
    None,
}

/// Orders templates of equal length: more literal segments first, then the one whose
/// first differing position is a literal (`/a/{x}` before `/{y}/b`).
fn more_specific_first(a: &PathTemplate, b: &PathTemplate) -> std::cmp::Ordering {
    b.literal_count().cmp(&a.literal_count()).then_with(|| {
        let literal = |s: &Segment| matches!(s, Segment::Literal(_));
        a.segments()
            .iter()
            .zip(b.segments())
            .find(|(x, y)| literal(x) != literal(y))
            .map_or(std::cmp::Ordering::Equal, |(x, _)| {
                if literal(x) {
                    std::cmp::Ordering::Less
                } else {
                    std::cmp::Ordering::Greater
                }
            })
    })
}

impl PathItem {
    /// `rest` has exactly as many segments as this item (the bucket guarantees it).
    fn matches(&self, rest: &str) -> bool {
        let parts = rest.as_bytes().split(|&b| b == b'/');
        parts
            .zip(self.segments.iter())
            .all(|(part, seg)| match seg {
                Some(literal) => literal.as_bytes() == part,
                None => !part.is_empty(),
            })
    }

    fn select(&self, method: &Method) -> Option<usize> {
        let find = |m: &Method| self.methods.iter().find(|(x, _)| x == m).map(|&(_, i)| i);
        find(method).or_else(|| {
            if *method == Method::HEAD {
                find(&Method::GET)
            } else {
                None
            }
        })
    }
}

impl AllowedMethods {
    fn new(declared: impl Iterator<Item = Method>) -> Self {
        let mut methods: Vec<Method> = declared.collect();
        // HEAD is served wherever GET is (RFC 9110 §9.3.2), so `Allow` says so.
        if methods.contains(&Method::GET) && !methods.contains(&Method::HEAD) {
            methods.push(Method::HEAD);
        }
        methods.sort_by(|a, b| {
            method_rank(a)
                .cmp(&method_rank(b))
                .then(a.as_str().cmp(b.as_str()))
        });
        let text = methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let header = HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""));
        Self {
            methods: methods.into_boxed_slice(),
            header,
        }
    }
}

fn method_rank(m: &Method) -> u8 {
    const ORDER: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::TRACE,
        Method::CONNECT,
    ];
    ORDER
        .iter()
        .position(|x| x == m)
        .map_or(u8::MAX, |p| p as u8)
}

/// An API found for a request, before its operation is known. The gateway
/// authenticates the caller for this API before asking for the operation, so that an
/// unauthenticated caller learns nothing about the API's shape.
#[derive(Debug, Clone, Copy)]
pub struct ApiMatch<'s, 'p> {
    pub(crate) api: &'s CompiledApi,
    remainder: &'p str,
}

impl<'s, 'p> ApiMatch<'s, 'p> {
    pub(crate) fn new(api: &'s CompiledApi, remainder: &'p str) -> Self {
        Self { api, remainder }
    }

    /// The API.
    pub fn api(&self) -> &'s RouteApi {
        &self.api.route
    }

    /// The request path after the API's base path: empty or starting with `/`.
    pub fn remainder(&self) -> &'p str {
        self.remainder
    }

    /// Matches the operation.
    pub fn match_operation(&self, method: &Method) -> OperationMatch<'s, 'p> {
        match self.api.operations.find(method, self.remainder) {
            Found::Operation(index, rest) => {
                let op = &self.api.route.operations[index];
                OperationMatch::Matched(
                    op,
                    Params {
                        template: &op.template,
                        rest,
                    },
                )
            }
            Found::WrongMethod(allowed) => OperationMatch::MethodNotAllowed(allowed),
            Found::None => OperationMatch::NoOperation,
        }
    }
}

/// Result of matching an operation under a known API.
#[derive(Debug, Clone, Copy)]
pub enum OperationMatch<'s, 'p> {
    /// The operation and its path parameters.
    Matched(&'s RouteOperation, Params<'s, 'p>),
    /// The path exists but not with this method.
    MethodNotAllowed(&'s AllowedMethods),
    /// No operation of the API has this path.
    NoOperation,
}

/// Path parameters of a matched operation, borrowed from the request path and read
/// lazily, so matching allocates nothing.
#[derive(Debug, Clone, Copy)]
pub struct Params<'s, 'p> {
    template: &'s PathTemplate,
    /// The remainder without its leading and trailing `/`.
    rest: &'p str,
}

impl<'s, 'p> Params<'s, 'p> {
    /// `(name, raw value)` pairs in template order. Values are not percent-decoded.
    pub fn iter(&self) -> impl Iterator<Item = (&'s str, &'p str)> + use<'s, 'p> {
        self.template
            .segments()
            .iter()
            .zip(segments(self.rest))
            .filter_map(|(seg, part)| match seg {
                Segment::Param(name) => Some((name.as_str(), part)),
                Segment::Literal(_) => None,
            })
    }

    /// The raw value of one parameter.
    pub fn get(&self, name: &str) -> Option<&'p str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{RouteApi, Snapshot};
    use tollgate_core::model::ApiStatus;
    use tollgate_core::{ApiId, OrgId};

    fn api(base: &str, hosts: &[&str], ops: &[(&str, &str)]) -> RouteApi {
        RouteApi {
            api_id: ApiId::new(),
            org_id: OrgId::new(),
            base_path: base.into(),
            hosts: hosts.iter().map(|h| (*h).into()).collect(),
            upstreams: vec!["http://127.0.0.1:9".into()],
            sandbox_upstreams: vec![],
            status: ApiStatus::Published,
            sunset: None,
            deprecated_at: None,
            operations: ops
                .iter()
                .enumerate()
                .map(|(i, (method, template))| RouteOperation {
                    operation_id: format!("op{i}"),
                    method: method.parse().unwrap(),
                    template: PathTemplate::parse(template).unwrap(),
                })
                .collect(),
        }
    }

    /// Routes `host` + `path`; expects `Some((base_path, remainder))` or `None`.
    fn check_api(snapshot: &Snapshot, host: &str, path: &str, expected: Option<(&str, &str)>) {
        let got = snapshot
            .route(host, path)
            .map(|m| (m.api().base_path.as_str(), m.remainder()));
        assert_eq!(got, expected, "{host} {path}");
    }

    #[test]
    fn base_path_is_longest_prefix_at_a_segment_boundary() {
        let s = Snapshot::build(
            1,
            vec![
                api("/weather", &[], &[]),
                api("/weather/v1", &[], &[]),
                api("/weather/v1/beta/x", &[], &[]),
            ],
        )
        .unwrap();
        check_api(&s, "h", "/weather/v1", Some(("/weather/v1", "")));
        check_api(&s, "h", "/weather/v1/", Some(("/weather/v1", "/")));
        check_api(
            &s,
            "h",
            "/weather/v1/today",
            Some(("/weather/v1", "/today")),
        );
        check_api(&s, "h", "/weather/v10", Some(("/weather", "/v10")));
        check_api(&s, "h", "/weather/v1/beta", Some(("/weather/v1", "/beta")));
        check_api(
            &s,
            "h",
            "/weather/v1/beta/x/y/z",
            Some(("/weather/v1/beta/x", "/y/z")),
        );
        check_api(&s, "h", "/weatherman", None);
        check_api(&s, "h", "/", None);
        check_api(&s, "h", "", None);
        check_api(&s, "h", "*", None);
        check_api(&s, "h", "/other/weather/v1", None);
    }

    #[test]
    fn host_specific_apis_win() {
        let s = Snapshot::build(
            1,
            vec![
                api("/a", &["api.example.com"], &[]),
                api("/a/b", &[], &[]),
                api("/a", &[], &[]),
                api("/c", &["API.Example.com", "other.example.com"], &[]),
            ],
        )
        .unwrap();
        // The host's own APIs are searched first, even if an any-host one is longer.
        check_api(&s, "api.example.com", "/a/b/c", Some(("/a", "/b/c")));
        check_api(&s, "elsewhere", "/a/b/c", Some(("/a/b", "/c")));
        // No host-specific match: any-host APIs still answer on that host.
        check_api(&s, "other.example.com", "/a/b", Some(("/a/b", "")));
        // Hosts are compared lowercased.
        check_api(&s, "api.example.com", "/c", Some(("/c", "")));
        check_api(&s, "elsewhere", "/c", None);
        let hosts = |host: &str, path: &str| s.route(host, path).map(|m| m.api().hosts.clone());
        assert_eq!(
            hosts("api.example.com", "/a"),
            Some(vec!["api.example.com".to_string()])
        );
        assert_eq!(hosts("x", "/a"), Some(vec![]));
    }

    /// Matches `method path` under an API with `ops`; `expected` is the matched
    /// operation's template and params, `"405 <Allow>"` or `"404"`.
    fn check(ops: &[(&str, &str)], method: &str, path: &str, expected: &str) {
        let s = Snapshot::build(1, vec![api("/api", &[], ops)]).unwrap();
        let m = s.route("h", path).unwrap();
        let got = match m.match_operation(&method.parse().unwrap()) {
            OperationMatch::Matched(op, params) => {
                let params: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{} {} {}", op.method, op.template, params.join(","))
                    .trim_end()
                    .to_owned()
            }
            OperationMatch::MethodNotAllowed(allowed) => {
                format!("405 {}", allowed.header().to_str().unwrap())
            }
            OperationMatch::NoOperation => "404".to_owned(),
        };
        assert_eq!(got, expected, "{method} {path}");
    }

    #[test]
    fn operations() {
        let pets = &[
            ("GET", "/pets"),
            ("POST", "/pets"),
            ("GET", "/pets/{id}"),
            ("DELETE", "/pets/{petId}"),
            ("GET", "/pets/mine"),
            ("GET", "/pets/{id}/toys/{toy}"),
            ("GET", "/"),
        ];
        check(pets, "GET", "/api/pets", "GET /pets");
        check(pets, "GET", "/api/pets/", "GET /pets");
        check(pets, "POST", "/api/pets", "POST /pets");
        check(pets, "GET", "/api/pets/42", "GET /pets/{id} id=42");
        check(
            pets,
            "DELETE",
            "/api/pets/42",
            "DELETE /pets/{petId} petId=42",
        );
        check(pets, "GET", "/api/pets/mine", "GET /pets/mine");
        check(
            pets,
            "GET",
            "/api/pets/1/toys/ball",
            "GET /pets/{id}/toys/{toy} id=1,toy=ball",
        );
        check(pets, "GET", "/api", "GET /");
        check(pets, "GET", "/api/", "GET /");
        // HEAD falls back to GET.
        check(pets, "HEAD", "/api/pets/7", "GET /pets/{id} id=7");
        // Wrong method: the most specific matching path decides, and says what it allows.
        check(pets, "PUT", "/api/pets", "405 GET, HEAD, POST");
        check(pets, "DELETE", "/api/pets/mine", "405 GET, HEAD");
        check(pets, "POST", "/api/pets/1", "405 GET, HEAD, DELETE");
        check(pets, "GET", "/api/pets/1/toys", "404");
        check(pets, "GET", "/api/pets//", "404");
        check(pets, "GET", "/api/pets/1/toys/ball/x", "404");
        check(pets, "GET", "/api/cats", "404");
    }

    #[test]
    fn specificity_prefers_more_literals_then_earlier_literals() {
        let ops = &[
            ("GET", "/{a}/{b}"),
            ("GET", "/{a}/y"),
            ("GET", "/x/{b}"),
            ("GET", "/x/y"),
        ];
        check(ops, "GET", "/api/x/y", "GET /x/y");
        check(ops, "GET", "/api/x/z", "GET /x/{b} b=z");
        check(ops, "GET", "/api/w/y", "GET /{a}/y a=w");
        check(ops, "GET", "/api/w/z", "GET /{a}/{b} a=w,b=z");
        // Declaration order does not matter.
        let reversed = &[
            ("GET", "/x/y"),
            ("GET", "/x/{b}"),
            ("GET", "/{a}/y"),
            ("GET", "/{a}/{b}"),
        ];
        check(reversed, "GET", "/api/x/z", "GET /x/{b} b=z");
        check(reversed, "GET", "/api/w/y", "GET /{a}/y a=w");
        // HEAD declared explicitly wins over the GET fallback.
        check(
            &[("GET", "/r"), ("HEAD", "/r")],
            "HEAD",
            "/api/r",
            "HEAD /r",
        );
    }

    #[test]
    fn api_without_operations_matches_nothing() {
        check(&[], "GET", "/api", "404");
        check(&[], "GET", "/api/x", "404");
    }

    #[test]
    fn agrees_with_path_template_matches() {
        // Differential check against the core's reference matcher.
        let templates = ["/", "/a", "/a/{x}", "/{x}", "/a/{x}/c", "/{x}/{y}/{z}"];
        let paths = [
            "", "/", "//", "/a", "/a/", "/a/b", "/a//", "/a/b/c", "/a/b/c/", "/x/y/z", "/a//c",
        ];
        for t in templates {
            let ops = [("GET", t)];
            let s = Snapshot::build(1, vec![api("/api", &[], &ops)]).unwrap();
            let template = PathTemplate::parse(t).unwrap();
            for p in paths {
                let reference = template.matches(if p.is_empty() { "/" } else { p });
                let full = format!("/api{p}");
                let m = s.route("h", &full).unwrap();
                let ours = match m.match_operation(&Method::GET) {
                    OperationMatch::Matched(_, params) => Some(params.iter().collect::<Vec<_>>()),
                    _ => None,
                };
                assert_eq!(ours, reference, "template {t} path {p:?}");
            }
        }
    }

    #[test]
    fn params_get() {
        let s =
            Snapshot::build(1, vec![api("/api", &[], &[("GET", "/u/{user}/r/{repo}")])]).unwrap();
        let m = s.route("h", "/api/u/ann/r/tollgate/").unwrap();
        let OperationMatch::Matched(op, params) = m.match_operation(&Method::GET) else {
            panic!("no match");
        };
        assert_eq!(op.operation_id, "op0");
        assert_eq!(params.get("user"), Some("ann"));
        assert_eq!(params.get("repo"), Some("tollgate"));
        assert_eq!(params.get("nope"), None);
    }

    #[test]
    fn cut_to_depth_cases() {
        assert_eq!(cut_to_depth("/a/b/c", 0), "");
        assert_eq!(cut_to_depth("/a/b/c", 1), "/a");
        assert_eq!(cut_to_depth("/a/b/c", 2), "/a/b");
        assert_eq!(cut_to_depth("/a/b/c", 3), "/a/b/c");
        assert_eq!(cut_to_depth("/a/b/", 2), "/a/b");
    }
}
